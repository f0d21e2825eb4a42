//! `bundle.tar.zst`: the archive reader on untrusted bytes.

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::{Result, Unstructured};
use runtime_core::bundle::archive::{self, ArchiveLimits, BundleFiles, MAX_PATH_BYTES};
use tar::{EntryType, Header};

/// Path pieces the structured mode builds entry paths from.
const PIECES: &[&str] = &[
    "manifest.json",
    "dist",
    "main.wasm",
    "ui",
    "index.html",
    "a",
    "b",
    ".",
    "..",
    "",
    ".hidden",
    "x\\y",
    "/",
    "é",
    "\u{7}",
    "a\u{0}b",
    "sbom.spdx.json",
    "wit",
];

/// Entry kinds the structured mode writes.
const KINDS: &[EntryType] = &[
    EntryType::Regular,
    EntryType::Regular,
    EntryType::Directory,
    EntryType::Symlink,
    EntryType::Link,
    EntryType::Fifo,
    EntryType::Char,
];

/// The first input byte picks the mode: 0 the rest is a `bundle.tar.zst`; 1 the
/// rest is a tar stream, compressed here; otherwise the rest chooses entries
/// (paths from traversal-prone pieces, kinds, data) and limits, written as a tar
/// with hand-made headers (the `tar` crate's builder refuses `..`). Whatever is
/// accepted holds only normalised relative paths within the limits; in the
/// structured mode an oracle says exactly which archives are accepted and what
/// they hold.
pub fn bundle_archive(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0 => {
            if let Ok(files) = archive::unpack(rest, &ArchiveLimits::default()) {
                check_files(&files, &ArchiveLimits::default());
            }
        }
        1 => {
            let compressed = zstd::encode_all(rest, 1).expect("compressing in memory");
            if let Ok(files) = archive::unpack(&compressed, &ArchiveLimits::default()) {
                check_files(&files, &ArchiveLimits::default());
            }
        }
        _ => {
            if let Ok((entries, limits)) = structured(&mut Unstructured::new(rest)) {
                check_structured(&entries, &limits);
            }
        }
    }
}

/// Invariants of any accepted bundle.
fn check_files(files: &BundleFiles, limits: &ArchiveLimits) {
    assert!(files.len() <= limits.max_entries);
    let mut total = 0u64;
    for (path, bytes) in files.iter() {
        assert!(
            normalized(path.as_bytes()).as_deref() == Some(path),
            "{path:?}"
        );
        assert!(bytes.len() as u64 <= limits.max_file_bytes, "{path:?}");
        total += bytes.len() as u64;
        let mut depth = 0usize;
        for c in std::path::Path::new(path).components() {
            assert!(
                matches!(c, std::path::Component::Normal(_)),
                "{path:?} has a {c:?} component"
            );
            depth += 1;
        }
        assert!(depth > 0);
        // No file is also a folder of another file.
        for (i, _) in path.match_indices('/') {
            assert!(!files.contains(&path[..i]), "{path:?} under a file");
        }
    }
    assert!(total <= limits.max_uncompressed_bytes);
    assert_eq!(total, files.total_bytes());
}

/// The oracle's path rule: UTF-8, at most `MAX_PATH_BYTES`, no `\` or control
/// character, relative, no `..` and no segment starting with a dot except `.`;
/// `.` and empty segments are dropped. `None` also for the bundle root.
fn normalized(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    if raw.len() > MAX_PATH_BYTES
        || text.contains('\\')
        || text.chars().any(char::is_control)
        || text.starts_with('/')
    {
        return None;
    }
    let mut segments = Vec::new();
    for s in text.split('/') {
        match s {
            "" | "." => {}
            s if s.starts_with('.') => return None,
            s => segments.push(s),
        }
    }
    (!segments.is_empty()).then(|| segments.join("/"))
}

/// One entry to write.
#[derive(Debug)]
struct Entry {
    path: Vec<u8>,
    kind: EntryType,
    data: Vec<u8>,
}

fn structured(u: &mut Unstructured<'_>) -> Result<(Vec<Entry>, ArchiveLimits)> {
    let limits = ArchiveLimits {
        max_entries: u.int_in_range(1..=8)?,
        max_file_bytes: u.int_in_range(0..=64)?,
        ..ArchiveLimits::default()
    };
    let n = u.int_in_range(0..=8)?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        let kind = *u.choose(KINDS)?;
        let path = if u.ratio(1, 8)? {
            u.arbitrary::<Vec<u8>>()?
        } else if u.ratio(1, 16)? {
            // Around the path length limit (a GNU long name).
            let len = MAX_PATH_BYTES - 2 + u.int_in_range(0..=4)?;
            let mut p = b"dist/".to_vec();
            p.resize(len, b'a');
            p
        } else {
            let pieces = u.int_in_range(1..=4)?;
            let mut p = String::new();
            for i in 0..pieces {
                if i > 0 {
                    p.push('/');
                }
                p.push_str(u.choose(PIECES)?);
            }
            if kind == EntryType::Directory && u.ratio(1, 2)? {
                p.push('/');
            }
            p.into_bytes()
        };
        let data = if kind == EntryType::Regular {
            let len = u.int_in_range(0..=80)?;
            u.bytes(len)?.to_vec()
        } else {
            Vec::new()
        };
        entries.push(Entry { path, kind, data });
    }
    Ok((entries, limits))
}

/// A 512-byte GNU header (checksum set) for `name` (at most 100 bytes).
fn header(name: &[u8], kind: EntryType, size: u64) -> [u8; 512] {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    let field = &mut h.as_old_mut().name;
    field[..name.len()].copy_from_slice(name);
    h.set_cksum();
    *h.as_bytes()
}

fn push_padded(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(512), 0);
}

/// The tar stream of `entries`: names over 100 bytes as GNU long names.
fn write_tar(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        if e.path.len() > 100 {
            let mut long = e.path.clone();
            long.push(0);
            out.extend_from_slice(&header(
                b"././@LongLink",
                EntryType::GNULongName,
                long.len() as u64,
            ));
            push_padded(&mut out, &long);
            out.extend_from_slice(&header(&e.path[..100], e.kind, e.data.len() as u64));
        } else {
            out.extend_from_slice(&header(&e.path, e.kind, e.data.len() as u64));
        }
        push_padded(&mut out, &e.data);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

/// The path the reader sees: a short name ends at its first NUL.
fn seen_path(e: &Entry) -> &[u8] {
    if e.path.len() > 100 {
        return &e.path;
    }
    let end = e.path.iter().position(|b| *b == 0).unwrap_or(e.path.len());
    &e.path[..end]
}

/// What the reader must answer for `entries`: the files, or `None` for a refusal.
fn expected(entries: &[Entry], limits: &ArchiveLimits) -> Option<BTreeMap<String, Vec<u8>>> {
    if entries.len() > limits.max_entries {
        return None;
    }
    let mut files = BTreeMap::new();
    let mut explicit_dirs = BTreeSet::new();
    let mut implied_dirs = BTreeSet::new();
    for e in entries {
        let raw = seen_path(e);
        let path = normalized(raw);
        if path.is_none() {
            // Only the root itself (`./`, `/`-free) may fail to name a path, and only as a folder.
            let root = std::str::from_utf8(raw)
                .is_ok_and(|t| t.split('/').all(|s| s.is_empty() || s == "."))
                && !raw.starts_with(b"/");
            if !(root && e.kind == EntryType::Directory) {
                return None;
            }
            continue;
        }
        let path = path.unwrap();
        if e.kind != EntryType::Regular && e.kind != EntryType::Directory {
            return None;
        }
        for (i, _) in path.match_indices('/') {
            let parent = &path[..i];
            if files.contains_key(parent) {
                return None;
            }
            implied_dirs.insert(parent.to_string());
        }
        if e.kind == EntryType::Directory {
            if files.contains_key(&path) || !explicit_dirs.insert(path) {
                return None;
            }
        } else {
            if files.contains_key(&path)
                || explicit_dirs.contains(&path)
                || implied_dirs.contains(&path)
                || e.data.len() as u64 > limits.max_file_bytes
            {
                return None;
            }
            files.insert(path, e.data.clone());
        }
    }
    Some(files)
}

fn check_structured(entries: &[Entry], limits: &ArchiveLimits) {
    let tar = write_tar(entries);
    let compressed = zstd::encode_all(&tar[..], 1).expect("compressing in memory");
    let got = archive::unpack(&compressed, limits);
    if let Ok(files) = &got {
        check_files(files, limits);
    }
    let want = expected(entries, limits);
    match (got, want) {
        (Ok(files), Some(want)) => assert_eq!(files.into_map(), want, "{entries:?}"),
        (Err(_), None) => {}
        (got, want) => panic!(
            "reader answered {:?}, the oracle {:?}, for {entries:?}",
            got.map(BundleFiles::into_map),
            want
        ),
    }
}
