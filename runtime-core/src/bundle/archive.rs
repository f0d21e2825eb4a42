//! `bundle.tar.zst`: a tar archive, then zstd.
//!
//! [`pack_dir`] builds one from an extension's folder, byte-for-byte
//! reproducibly, because the bundle's identity is the sha256 of these bytes.
//! [`unpack`] reads untrusted bytes into memory only (nothing touches the
//! filesystem) and refuses anything but plain relative files and folders,
//! under hard size and count limits that hold while decompressing, not after.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

/// The zstd level [`pack_dir`] uses; output is reproducible for a given zstd version and level.
pub const COMPRESSION_LEVEL: i32 = 12;

/// The longest entry path accepted, in bytes.
// Paths become blob-store keys and URL paths later; S3 caps keys at 1024 bytes.
pub const MAX_PATH_BYTES: usize = 1024;

/// The files at the bundle root, with whether each is required; everything else in a source folder stays out.
const TOP_LEVEL_FILES: [(&str, bool); 2] = [("manifest.json", true), ("sbom.spdx.json", false)];

/// The folders at the bundle root that are packed when present.
// `precompiled/` is deliberately absent: we never ship or accept tenant-compiled code.
const TOP_LEVEL_DIRS: [&str; 3] = ["dist", "ui", "wit"];

/// Size and count limits for packing and unpacking a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Largest `bundle.tar.zst`, in bytes (default 64 MiB).
    pub max_compressed_bytes: u64,
    /// Largest decompressed tar stream, headers included, in bytes (default 256 MiB).
    pub max_uncompressed_bytes: u64,
    /// Most tar entries, directories included (default 2000).
    pub max_entries: usize,
    /// Largest single file, in bytes (default 64 MiB).
    pub max_file_bytes: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        const MIB: u64 = 1024 * 1024;
        ArchiveLimits {
            max_compressed_bytes: 64 * MIB,
            max_uncompressed_bytes: 256 * MIB,
            max_entries: 2000,
            max_file_bytes: 64 * MIB,
        }
    }
}

/// Why a bundle could not be packed or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The compressed bundle is over `max_compressed_bytes`.
    #[error("bundle is {size} bytes compressed; at most {limit} bytes are accepted")]
    CompressedTooLarge {
        /// The bundle's compressed size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The decompressed tar stream grew past `max_uncompressed_bytes`.
    #[error(
        "bundle expands past {limit} bytes uncompressed (at entry {entry:?}); \
         at most {limit} bytes are accepted"
    )]
    UncompressedTooLarge {
        /// The entry being read when the limit was crossed.
        entry: String,
        /// The limit.
        limit: u64,
    },
    /// One file is over `max_file_bytes`.
    #[error("entry {entry:?} is {size} bytes; a file may be at most {limit} bytes")]
    FileTooLarge {
        /// The entry.
        entry: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// More entries than `max_entries`.
    #[error("entry {entry:?} is past the limit of {limit} entries per bundle")]
    TooManyEntries {
        /// The first entry over the limit.
        entry: String,
        /// The limit.
        limit: usize,
    },
    /// An absolute path.
    #[error("entry {entry:?} is an absolute path; paths must be relative to the bundle root")]
    AbsolutePath {
        /// The entry as written in the archive.
        entry: String,
    },
    /// A `..` segment.
    #[error("entry {entry:?} contains a `..` segment; paths must stay inside the bundle")]
    ParentDir {
        /// The entry as written in the archive.
        entry: String,
    },
    /// A segment starting with `.`.
    #[error(
        "entry {entry:?} has the hidden segment {segment:?}; no path segment may start with `.`"
    )]
    HiddenSegment {
        /// The entry as written in the archive.
        entry: String,
        /// The offending segment.
        segment: String,
    },
    /// A path that is not UTF-8, has a backslash or control character, is empty or too long.
    #[error("entry {entry:?} {reason}")]
    InvalidPath {
        /// The entry as written in the archive.
        entry: String,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// A symbolic or hard link.
    #[error("entry {entry:?} is a {kind}; bundles hold only regular files and directories")]
    Link {
        /// The entry as written in the archive.
        entry: String,
        /// `symbolic link` or `hard link`.
        kind: &'static str,
    },
    /// A device, FIFO, socket, sparse file or other non-regular entry.
    #[error("entry {entry:?} is a {kind}; bundles hold only regular files and directories")]
    SpecialFile {
        /// The entry as written in the archive.
        entry: String,
        /// What it is.
        kind: String,
    },
    /// The same path twice (after normalizing `./` and repeated `/`).
    #[error("entry {entry:?} repeats the path {path:?}; each path may appear once")]
    DuplicateEntry {
        /// The entry as written in the archive.
        entry: String,
        /// The normalized path it repeats.
        path: String,
    },
    /// A path used both as a file and as a directory.
    #[error(
        "entry {entry:?} conflicts with {other:?}; a path cannot be both a file and a directory"
    )]
    PathConflict {
        /// The entry as written in the archive.
        entry: String,
        /// The earlier path it conflicts with.
        other: String,
    },
    /// The source folder has no `manifest.json`.
    #[error("{dir} has no manifest.json; a bundle needs one at its root")]
    MissingManifest {
        /// The folder being packed.
        dir: PathBuf,
    },
    /// Not valid zstd or tar.
    #[error("bundle is not a valid tar.zst archive: {0}")]
    Corrupt(String),
    /// Reading the source folder failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

impl ArchiveError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        use ArchiveError::*;
        match self {
            CompressedTooLarge { .. } | UncompressedTooLarge { .. } | FileTooLarge { .. } => {
                "too_large"
            }
            TooManyEntries { .. } => "too_many_entries",
            AbsolutePath { .. } => "absolute_path",
            ParentDir { .. } => "parent_dir",
            HiddenSegment { .. } => "hidden_segment",
            InvalidPath { .. } => "invalid_path",
            Link { .. } => "link",
            SpecialFile { .. } => "special_file",
            DuplicateEntry { .. } => "duplicate_entry",
            PathConflict { .. } => "path_conflict",
            MissingManifest { .. } => "missing_manifest",
            Corrupt(_) => "corrupt",
            Io { .. } => "io",
        }
    }
}

/// The regular files of an unpacked bundle, by normalized relative path (`dist/main.wasm`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleFiles {
    files: BTreeMap<String, Vec<u8>>,
}

impl BundleFiles {
    /// The contents of the file at `path`, if the bundle has it.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    /// Whether the bundle has a file at `path`.
    pub fn contains(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    /// Every file as (path, contents), in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files.iter().map(|(p, b)| (p.as_str(), b.as_slice()))
    }

    /// Every file path, in order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// The number of files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there are no files.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The total size of all files, in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.files.values().map(|b| b.len() as u64).sum()
    }

    /// Files below the folder `prefix` (`ui` or `ui/`), as (full path, contents), in order.
    pub fn under<'a>(
        &'a self,
        prefix: &str,
    ) -> impl Iterator<Item = (&'a str, &'a [u8])> + use<'a> {
        let mut dir = prefix.trim_end_matches('/').to_owned();
        dir.push('/');
        self.files
            .range(dir.clone()..)
            .take_while(move |(p, _)| p.starts_with(&dir))
            .map(|(p, b)| (p.as_str(), b.as_slice()))
    }

    /// The files as a map, by path.
    pub fn into_map(self) -> BTreeMap<String, Vec<u8>> {
        self.files
    }
}

/// Validates an entry path and normalizes it (drops `.` segments and repeated `/`).
///
/// `Ok(None)` is the bundle root itself (`./`), which only a directory entry may name.
fn normalize_path(raw: &[u8]) -> Result<Option<String>, ArchiveError> {
    let entry = String::from_utf8_lossy(raw).into_owned();
    let invalid = |reason: &str| ArchiveError::InvalidPath {
        entry: entry.clone(),
        reason: reason.to_owned(),
    };
    let Ok(text) = std::str::from_utf8(raw) else {
        return Err(invalid("is not valid UTF-8; paths must be UTF-8"));
    };
    if raw.len() > MAX_PATH_BYTES {
        return Err(invalid(&format!(
            "is {} bytes long; paths may be at most {MAX_PATH_BYTES} bytes",
            raw.len()
        )));
    }
    if text.contains('\\') {
        return Err(invalid("contains a backslash; separate segments with `/`"));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid(
            "contains a NUL or control character; paths must be printable",
        ));
    }
    if text.starts_with('/') {
        return Err(ArchiveError::AbsolutePath { entry });
    }
    let mut segments = Vec::new();
    for segment in text.split('/') {
        match segment {
            "" | "." => continue,
            ".." => return Err(ArchiveError::ParentDir { entry }),
            s if s.starts_with('.') => {
                return Err(ArchiveError::HiddenSegment {
                    segment: s.to_owned(),
                    entry,
                });
            }
            s => segments.push(s),
        }
    }
    Ok((!segments.is_empty()).then(|| segments.join("/")))
}

/// What a tar entry type is, for messages about refused entries.
fn describe(ty: EntryType) -> String {
    match ty {
        EntryType::Char => "character device".into(),
        EntryType::Block => "block device".into(),
        EntryType::Fifo => "FIFO".into(),
        EntryType::Continuous => "contiguous file".into(),
        EntryType::GNUSparse => "sparse file".into(),
        EntryType::XGlobalHeader => "pax global header".into(),
        other => format!("tar entry of type {:?}", other.as_byte() as char),
    }
}

/// Whether a path seen so far was a file or (explicitly or as a parent) a directory.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Seen {
    File,
    Dir { explicit: bool },
}

/// Records paths as they appear and refuses duplicates and file/directory clashes.
#[derive(Default)]
struct PathSet {
    seen: BTreeMap<String, Seen>,
}

impl PathSet {
    fn add(&mut self, entry: &str, path: &str, is_dir: bool) -> Result<(), ArchiveError> {
        for (i, _) in path.match_indices('/') {
            let parent = &path[..i];
            match self.seen.get(parent) {
                Some(Seen::File) => {
                    return Err(ArchiveError::PathConflict {
                        entry: entry.to_owned(),
                        other: parent.to_owned(),
                    });
                }
                Some(Seen::Dir { .. }) => {}
                None => {
                    self.seen
                        .insert(parent.to_owned(), Seen::Dir { explicit: false });
                }
            }
        }
        let duplicate = || ArchiveError::DuplicateEntry {
            entry: entry.to_owned(),
            path: path.to_owned(),
        };
        match (self.seen.get(path).copied(), is_dir) {
            (None, _) => {}
            // A folder first implied by a file inside it may still get its own entry.
            (Some(Seen::Dir { explicit: false }), true) => {}
            (Some(Seen::File), false) | (Some(Seen::Dir { explicit: true }), true) => {
                return Err(duplicate());
            }
            (Some(_), _) => {
                return Err(ArchiveError::PathConflict {
                    entry: entry.to_owned(),
                    other: path.to_owned(),
                });
            }
        }
        let kind = if is_dir {
            Seen::Dir { explicit: true }
        } else {
            Seen::File
        };
        self.seen.insert(path.to_owned(), kind);
        Ok(())
    }
}

/// Counts every decompressed byte and fails once there are more than `limit`.
// The count lives outside the reader because tar owns the reader while entries
// are read, and tar wraps our io::Error so its kind alone cannot be trusted.
struct CappedReader<'a, R> {
    inner: R,
    read: &'a Cell<u64>,
    limit: u64,
}

impl<R: Read> Read for CappedReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let so_far = self.read.get();
        if so_far > self.limit {
            return Err(io::Error::other("uncompressed size limit exceeded"));
        }
        // Never decompress more than one byte past the limit.
        let room = (self.limit - so_far).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.read.set(so_far + n as u64);
        if self.read.get() > self.limit {
            return Err(io::Error::other("uncompressed size limit exceeded"));
        }
        Ok(n)
    }
}

/// Unpacks an untrusted `bundle.tar.zst` into memory, enforcing `limits` while decompressing.
pub fn unpack(bytes: &[u8], limits: &ArchiveLimits) -> Result<BundleFiles, ArchiveError> {
    let size = bytes.len() as u64;
    if size > limits.max_compressed_bytes {
        return Err(ArchiveError::CompressedTooLarge {
            size,
            limit: limits.max_compressed_bytes,
        });
    }
    if bytes.is_empty() {
        return Err(ArchiveError::Corrupt("the bundle is empty".into()));
    }
    let decoder = zstd::stream::read::Decoder::with_buffer(bytes)
        .map_err(|e| ArchiveError::Corrupt(format!("zstd: {e}")))?;
    let counted = Cell::new(0u64);
    let limit = limits.max_uncompressed_bytes;
    let mut archive = tar::Archive::new(CappedReader {
        inner: decoder,
        read: &counted,
        limit,
    });

    let mut last_entry = String::from("<first entry>");
    let stream_error = |e: io::Error, entry: &str| {
        if counted.get() > limit {
            ArchiveError::UncompressedTooLarge {
                entry: entry.to_owned(),
                limit,
            }
        } else {
            ArchiveError::Corrupt(format!("{e} (at entry {entry:?})"))
        }
    };

    let mut files = BTreeMap::new();
    let mut paths = PathSet::default();
    let mut entries_seen = 0usize;
    let mut declared_total = 0u64;
    let entries = archive
        .entries()
        .map_err(|e| stream_error(e, &last_entry))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| stream_error(e, &last_entry))?;
        let raw_path = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw_path).into_owned();
        last_entry.clone_from(&name);

        entries_seen += 1;
        if entries_seen > limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                entry: name,
                limit: limits.max_entries,
            });
        }
        let normalized = normalize_path(&raw_path)?;
        let ty = entry.header().entry_type();
        match ty {
            EntryType::Directory => {
                if let Some(path) = normalized {
                    paths.add(&name, &path, true)?;
                }
                continue;
            }
            EntryType::Regular => {}
            EntryType::Symlink => {
                return Err(ArchiveError::Link {
                    entry: name,
                    kind: "symbolic link",
                });
            }
            EntryType::Link => {
                return Err(ArchiveError::Link {
                    entry: name,
                    kind: "hard link",
                });
            }
            other => {
                return Err(ArchiveError::SpecialFile {
                    entry: name,
                    kind: describe(other),
                });
            }
        }
        let Some(path) = normalized else {
            return Err(ArchiveError::InvalidPath {
                entry: name,
                reason: "names no file; a file needs a path below the bundle root".into(),
            });
        };
        paths.add(&name, &path, false)?;

        // Refuse on the declared size, before reading a byte of the data.
        let size = entry.size();
        if size > limits.max_file_bytes {
            return Err(ArchiveError::FileTooLarge {
                entry: name,
                size,
                limit: limits.max_file_bytes,
            });
        }
        declared_total = declared_total.saturating_add(size);
        if declared_total > limit {
            return Err(ArchiveError::UncompressedTooLarge { entry: name, limit });
        }
        let mut data = Vec::with_capacity(size.min(1 << 20) as usize);
        entry
            .read_to_end(&mut data)
            .map_err(|e| stream_error(e, &name))?;
        if data.len() as u64 != size {
            return Err(ArchiveError::Corrupt(format!(
                "entry {name:?} is truncated: {} of {size} bytes",
                data.len()
            )));
        }
        files.insert(path, data);
    }

    // Read to the end so a broken zstd tail is noticed and padding counts toward the limit.
    let mut rest = archive.into_inner();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match rest.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(stream_error(e, "<after the last entry>")),
        }
    }
    Ok(BundleFiles { files })
}

/// One item to pack: its bundle path and, for files, where it is on disk.
struct Item {
    path: String,
    source: Option<PathBuf>,
}

/// Why a source item is not a plain file or folder, if it is not.
fn refuse_kind(path: &str, meta: &fs::Metadata) -> Result<(), ArchiveError> {
    let ty = meta.file_type();
    if ty.is_symlink() {
        return Err(ArchiveError::Link {
            entry: path.to_owned(),
            kind: "symbolic link",
        });
    }
    if ty.is_file() || ty.is_dir() {
        return Ok(());
    }
    Err(ArchiveError::SpecialFile {
        entry: path.to_owned(),
        kind: "special file (device, FIFO or socket)".into(),
    })
}

/// Collects `dir` (bundle path `rel`) and everything below it.
fn walk(dir: &Path, rel: &str, out: &mut Vec<Item>) -> Result<(), ArchiveError> {
    let io_err = |path: &Path, source| ArchiveError::Io {
        path: path.to_owned(),
        source,
    };
    out.push(Item {
        path: rel.to_owned(),
        source: None,
    });
    for child in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let child = child.map_err(|e| io_err(dir, e))?;
        let disk = child.path();
        let name = child.file_name();
        let Some(name) = name.to_str() else {
            return Err(ArchiveError::InvalidPath {
                entry: format!("{rel}/{}", name.to_string_lossy()),
                reason: "is not valid UTF-8; paths must be UTF-8".into(),
            });
        };
        let path = format!("{rel}/{name}");
        // Refuse names unpack would refuse, so a packed bundle always unpacks.
        normalize_path(path.as_bytes())?;
        let meta = fs::symlink_metadata(&disk).map_err(|e| io_err(&disk, e))?;
        refuse_kind(&path, &meta)?;
        if meta.is_dir() {
            walk(&disk, &path, out)?;
        } else {
            out.push(Item {
                path,
                source: Some(disk),
            });
        }
    }
    Ok(())
}

/// Lists what goes into the bundle from `dir`, sorted by path.
fn collect(dir: &Path) -> Result<Vec<Item>, ArchiveError> {
    let mut items = Vec::new();
    for (name, required) in TOP_LEVEL_FILES {
        let disk = dir.join(name);
        let meta = match fs::symlink_metadata(&disk) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !required => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ArchiveError::MissingManifest {
                    dir: dir.to_owned(),
                });
            }
            Err(source) => return Err(ArchiveError::Io { path: disk, source }),
        };
        refuse_kind(name, &meta)?;
        if !meta.is_file() {
            return Err(ArchiveError::InvalidPath {
                entry: name.to_owned(),
                reason: "is a directory; expected a regular file".into(),
            });
        }
        items.push(Item {
            path: name.to_owned(),
            source: Some(disk),
        });
    }
    for name in TOP_LEVEL_DIRS {
        let disk = dir.join(name);
        let meta = match fs::symlink_metadata(&disk) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(ArchiveError::Io { path: disk, source }),
        };
        refuse_kind(name, &meta)?;
        if !meta.is_dir() {
            return Err(ArchiveError::InvalidPath {
                entry: name.to_owned(),
                reason: "is a file; expected a directory".into(),
            });
        }
        walk(&disk, name, &mut items)?;
    }
    items.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(items)
}

/// A header with every field that varies between machines or runs fixed.
fn fixed_header(ty: EntryType, size: u64, mode: u32) -> Result<Header, io::Error> {
    let mut header = Header::new_gnu();
    header.set_entry_type(ty);
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_username("")?;
    header.set_groupname("")?;
    Ok(header)
}

/// Reads a file to pack, refusing it if it is (or grows) over `max`.
fn read_capped(path: &str, disk: &Path, max: u64) -> Result<Vec<u8>, ArchiveError> {
    let io_err = |source| ArchiveError::Io {
        path: disk.to_owned(),
        source,
    };
    let file = fs::File::open(disk).map_err(io_err)?;
    let mut data = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(io_err)?;
    if data.len() as u64 > max {
        return Err(ArchiveError::FileTooLarge {
            entry: path.to_owned(),
            size: data.len() as u64,
            limit: max,
        });
    }
    Ok(data)
}

/// Packs `manifest.json`, `dist/`, `ui/`, `wit/` and `sbom.spdx.json` from `dir` into a reproducible `bundle.tar.zst`.
pub fn pack_dir(dir: &Path, limits: &ArchiveLimits) -> Result<Vec<u8>, ArchiveError> {
    let items = collect(dir)?;
    if let Some(item) = items.get(limits.max_entries) {
        return Err(ArchiveError::TooManyEntries {
            entry: item.path.clone(),
            limit: limits.max_entries,
        });
    }

    let corrupt = |e: io::Error| ArchiveError::Corrupt(format!("writing the archive: {e}"));
    let mut builder = tar::Builder::new(Vec::new());
    let mut total = 0u64;
    for item in &items {
        match &item.source {
            None => {
                let mut header = fixed_header(EntryType::Directory, 0, 0o755).map_err(corrupt)?;
                builder
                    .append_data(&mut header, format!("{}/", item.path), io::empty())
                    .map_err(corrupt)?;
            }
            Some(disk) => {
                let data = read_capped(&item.path, disk, limits.max_file_bytes)?;
                total += data.len() as u64;
                if total > limits.max_uncompressed_bytes {
                    return Err(ArchiveError::UncompressedTooLarge {
                        entry: item.path.clone(),
                        limit: limits.max_uncompressed_bytes,
                    });
                }
                let mut header =
                    fixed_header(EntryType::Regular, data.len() as u64, 0o644).map_err(corrupt)?;
                builder
                    .append_data(&mut header, &item.path, data.as_slice())
                    .map_err(corrupt)?;
            }
        }
    }
    let tar = builder.into_inner().map_err(corrupt)?;
    if tar.len() as u64 > limits.max_uncompressed_bytes {
        return Err(ArchiveError::UncompressedTooLarge {
            entry: "<whole bundle>".into(),
            limit: limits.max_uncompressed_bytes,
        });
    }

    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), COMPRESSION_LEVEL)
        .map_err(|e| ArchiveError::Corrupt(format!("zstd: {e}")))?;
    // A frame checksum turns silent corruption in storage into a `corrupt` error on unpack.
    encoder
        .include_checksum(true)
        .and_then(|()| encoder.write_all(&tar))
        .map_err(|e| ArchiveError::Corrupt(format!("zstd: {e}")))?;
    let compressed = encoder
        .finish()
        .map_err(|e| ArchiveError::Corrupt(format!("zstd: {e}")))?;
    if compressed.len() as u64 > limits.max_compressed_bytes {
        return Err(ArchiveError::CompressedTooLarge {
            size: compressed.len() as u64,
            limit: limits.max_compressed_bytes,
        });
    }
    Ok(compressed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;
    use std::time::{Duration, Instant, SystemTime};

    const GIB: u64 = 1 << 30;

    /// A header whose name bytes are written as-is, bypassing the builder's path checks.
    fn raw_header(name: &[u8], ty: EntryType, size: u64) -> Header {
        let mut header = Header::new_gnu();
        header.set_entry_type(ty);
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_cksum();
        header
    }

    fn compress(tar: &[u8]) -> Vec<u8> {
        zstd::stream::encode_all(tar, 3).unwrap()
    }

    /// A tar.zst of regular files with raw names.
    fn bundle_of(entries: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let header = raw_header(name, EntryType::Regular, data.len() as u64);
            builder.append(&header, *data).unwrap();
        }
        compress(&builder.into_inner().unwrap())
    }

    /// A tar.zst with one entry of type `ty` (and a link target for links).
    fn bundle_with(name: &str, ty: EntryType, link: Option<&str>) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let ok = raw_header(b"manifest.json", EntryType::Regular, 2);
        builder.append(&ok, &b"{}"[..]).unwrap();
        let mut header = raw_header(name.as_bytes(), ty, 0);
        if let Some(target) = link {
            header.set_link_name(target).unwrap();
        }
        if ty == EntryType::Char {
            header.set_device_major(1).unwrap();
            header.set_device_minor(3).unwrap();
        }
        header.set_cksum();
        builder.append(&header, io::empty()).unwrap();
        compress(&builder.into_inner().unwrap())
    }

    fn refuse(bytes: &[u8]) -> ArchiveError {
        unpack(bytes, &ArchiveLimits::default()).expect_err("the bundle must be refused")
    }

    /// One `dist/main.wasm` of 1 GiB of zeros: about 40 KiB compressed.
    fn zstd_bomb() -> &'static [u8] {
        static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
        BOMB.get_or_init(|| {
            let encoder = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
            let mut builder = tar::Builder::new(encoder);
            let header = raw_header(b"dist/main.wasm", EntryType::Regular, GIB);
            builder.append(&header, io::repeat(0).take(GIB)).unwrap();
            builder.into_inner().unwrap().finish().unwrap()
        })
    }

    #[test]
    fn refuses_parent_dir() {
        let err = refuse(&bundle_of(&[(b"../x", b"x")]));
        assert!(
            matches!(&err, ArchiveError::ParentDir { entry } if entry == "../x"),
            "{err}"
        );
        assert_eq!(err.code(), "parent_dir");
        assert!(err.to_string().contains("\"../x\""), "{err}");

        let err = refuse(&bundle_of(&[(b"a/../../b", b"x")]));
        assert!(
            matches!(&err, ArchiveError::ParentDir { entry } if entry == "a/../../b"),
            "{err}"
        );
    }

    #[test]
    fn refuses_absolute_path() {
        for name in ["/abs", "/etc/passwd"] {
            let err = refuse(&bundle_of(&[(name.as_bytes(), b"x")]));
            assert!(
                matches!(&err, ArchiveError::AbsolutePath { entry } if entry == name),
                "{err}"
            );
            assert_eq!(err.code(), "absolute_path");
        }
    }

    #[test]
    fn refuses_hidden_segment() {
        let err = refuse(&bundle_of(&[(b".hidden/x", b"x")]));
        assert!(
            matches!(&err, ArchiveError::HiddenSegment { entry, segment }
                if entry == ".hidden/x" && segment == ".hidden"),
            "{err}"
        );
        assert_eq!(err.code(), "hidden_segment");
        let err = refuse(&bundle_of(&[(b"ui/.env", b"x")]));
        assert_eq!(err.code(), "hidden_segment", "{err}");
    }

    #[test]
    fn refuses_odd_characters() {
        for name in [&b"ui\\index.html"[..], b"ui/a\x07b", b"ui/\xff"] {
            let err = refuse(&bundle_of(&[(name, b"x")]));
            assert!(matches!(err, ArchiveError::InvalidPath { .. }), "{err}");
            assert_eq!(err.code(), "invalid_path");
        }
    }

    #[test]
    fn refuses_links() {
        let err = refuse(&bundle_with(
            "ui/x",
            EntryType::Symlink,
            Some("../../etc/passwd"),
        ));
        assert!(
            matches!(&err, ArchiveError::Link { entry, kind: "symbolic link" } if entry == "ui/x"),
            "{err}"
        );
        assert_eq!(err.code(), "link");

        let err = refuse(&bundle_with("ui/y", EntryType::Link, Some("manifest.json")));
        assert!(
            matches!(&err, ArchiveError::Link { entry, kind: "hard link" } if entry == "ui/y"),
            "{err}"
        );
    }

    #[test]
    fn refuses_special_files() {
        for (ty, kind) in [
            (EntryType::Char, "character device"),
            (EntryType::Block, "block device"),
            (EntryType::Fifo, "FIFO"),
            (EntryType::XGlobalHeader, "pax global header"),
        ] {
            let err = refuse(&bundle_with("dev/null", ty, None));
            assert!(
                matches!(&err, ArchiveError::SpecialFile { entry, kind: k }
                    if entry == "dev/null" && k == kind),
                "{err}"
            );
            assert_eq!(err.code(), "special_file");
        }
    }

    #[test]
    fn refuses_duplicates_after_normalizing() {
        let err = refuse(&bundle_of(&[(b"ui/a.js", b"1"), (b"./ui//a.js", b"2")]));
        assert!(
            matches!(&err, ArchiveError::DuplicateEntry { entry, path }
                if entry == "./ui//a.js" && path == "ui/a.js"),
            "{err}"
        );
        assert_eq!(err.code(), "duplicate_entry");
    }

    #[test]
    fn refuses_file_directory_clash() {
        let err = refuse(&bundle_of(&[(b"ui", b"1"), (b"ui/a.js", b"2")]));
        assert!(
            matches!(&err, ArchiveError::PathConflict { entry, other }
                if entry == "ui/a.js" && other == "ui"),
            "{err}"
        );
    }

    #[test]
    fn refuses_too_many_entries() {
        let mut builder = tar::Builder::new(Vec::new());
        for i in 0..10_000 {
            let header = raw_header(format!("f{i:05}").as_bytes(), EntryType::Regular, 1);
            builder.append(&header, &b"x"[..]).unwrap();
        }
        let bytes = compress(&builder.into_inner().unwrap());
        let err = refuse(&bytes);
        assert!(
            matches!(&err, ArchiveError::TooManyEntries { entry, limit: 2000 } if entry == "f02000"),
            "{err}"
        );
        assert_eq!(err.code(), "too_many_entries");
    }

    #[test]
    fn refuses_zstd_bomb_by_file_size() {
        let bomb = zstd_bomb();
        assert!(bomb.len() < 1 << 20, "the bomb is {} bytes", bomb.len());
        let started = Instant::now();
        let err = refuse(bomb);
        assert!(
            matches!(&err, ArchiveError::FileTooLarge { entry, size, .. }
                if entry == "dist/main.wasm" && *size == GIB),
            "{err}"
        );
        assert_eq!(err.code(), "too_large");
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    }

    #[test]
    fn refuses_zstd_bomb_by_total_size() {
        let limits = ArchiveLimits {
            max_file_bytes: u64::MAX,
            ..ArchiveLimits::default()
        };
        let bomb = zstd_bomb();
        let started = Instant::now();
        let err = unpack(bomb, &limits).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::UncompressedTooLarge { entry, .. } if entry == "dist/main.wasm"),
            "{err}"
        );
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    }

    #[test]
    fn stops_decompressing_at_the_limit() {
        // Zeros after the tar's end marker are never described by a header, so
        // only the streaming count can stop them.
        let mut builder = tar::Builder::new(Vec::new());
        let header = raw_header(b"manifest.json", EntryType::Regular, 2);
        builder.append(&header, &b"{}"[..]).unwrap();
        let tar = builder.into_inner().unwrap();
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        encoder.write_all(&tar).unwrap();
        io::copy(&mut io::repeat(0).take(64 << 20), &mut encoder).unwrap();
        let bytes = encoder.finish().unwrap();

        let limits = ArchiveLimits {
            max_uncompressed_bytes: 1 << 20,
            ..ArchiveLimits::default()
        };
        let err = unpack(&bytes, &limits).unwrap_err();
        assert!(
            matches!(err, ArchiveError::UncompressedTooLarge { .. }),
            "{err}"
        );
        assert_eq!(err.code(), "too_large");
        // Under the limit the same bytes are fine: padding is not an error.
        let roomy = ArchiveLimits {
            max_uncompressed_bytes: 128 << 20,
            ..ArchiveLimits::default()
        };
        assert_eq!(unpack(&bytes, &roomy).unwrap().len(), 1);
    }

    #[test]
    fn refuses_compressed_size_over_cap() {
        let bytes = bundle_of(&[(b"manifest.json", b"{}")]);
        let limits = ArchiveLimits {
            max_compressed_bytes: 16,
            ..ArchiveLimits::default()
        };
        let err = unpack(&bytes, &limits).unwrap_err();
        assert!(
            matches!(err, ArchiveError::CompressedTooLarge { size, limit: 16 } if size == bytes.len() as u64),
            "{err}"
        );
        assert_eq!(err.code(), "too_large");
    }

    #[test]
    fn refuses_corrupt_bytes() {
        assert_eq!(refuse(b"not zstd at all").code(), "corrupt");
        assert_eq!(refuse(b"").code(), "corrupt");
        let good = bundle_of(&[(b"manifest.json", b"{}")]);
        assert_eq!(refuse(&good[..good.len() / 2]).code(), "corrupt");
        // Valid zstd around bytes that are not a tar.
        assert_eq!(refuse(&compress(&[7u8; 1024])).code(), "corrupt");
    }

    #[test]
    fn keeps_files_and_skips_directory_entries() {
        let mut builder = tar::Builder::new(Vec::new());
        builder
            .append(&raw_header(b"./", EntryType::Directory, 0), io::empty())
            .unwrap();
        builder
            .append(&raw_header(b"./ui/", EntryType::Directory, 0), io::empty())
            .unwrap();
        for (name, data) in [
            ("./manifest.json", "{}"),
            ("./ui/index.html", "<p>"),
            ("./ui/app.js", "1"),
        ] {
            let header = raw_header(name.as_bytes(), EntryType::Regular, data.len() as u64);
            builder.append(&header, data.as_bytes()).unwrap();
        }
        let files = unpack(
            &compress(&builder.into_inner().unwrap()),
            &ArchiveLimits::default(),
        )
        .unwrap();
        assert_eq!(
            files.paths().collect::<Vec<_>>(),
            ["manifest.json", "ui/app.js", "ui/index.html"]
        );
        assert_eq!(files.get("ui/index.html"), Some(&b"<p>"[..]));
        assert_eq!(files.total_bytes(), 6);
        let ui: Vec<_> = files.under("ui").map(|(p, _)| p).collect();
        assert_eq!(ui, ["ui/app.js", "ui/index.html"]);
        assert_eq!(files.under("ui/").count(), 2);
        assert_eq!(files.under("u").count(), 0);
    }

    fn write(path: &Path, data: &[u8]) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    }

    fn sample_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(&root.join("manifest.json"), br#"{"name":"hello"}"#);
        write(&root.join("dist/main.wasm"), b"\0asm\x0d\0\x01\0");
        write(&root.join("ui/index.html"), b"<!doctype html>");
        write(&root.join("node_modules/x/index.js"), b"module.exports = 1");
        write(&root.join("src/handler.js"), b"export {}");
        write(&root.join("precompiled/x86_64-linux.cwasm"), b"not ours");
        dir
    }

    #[test]
    fn pack_unpack_round_trip_is_deterministic() {
        let dir = sample_dir();
        let limits = ArchiveLimits::default();
        let first = pack_dir(dir.path(), &limits).unwrap();

        // Other mtimes must not change a byte.
        let wasm = fs::File::options()
            .write(true)
            .open(dir.path().join("dist/main.wasm"))
            .unwrap();
        wasm.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000))
            .unwrap();
        let second = pack_dir(dir.path(), &limits).unwrap();
        assert_eq!(first, second);

        let files = unpack(&first, &limits).unwrap();
        assert_eq!(
            files.paths().collect::<Vec<_>>(),
            ["dist/main.wasm", "manifest.json", "ui/index.html"]
        );
        assert_eq!(files.get("dist/main.wasm"), Some(&b"\0asm\x0d\0\x01\0"[..]));
        assert_eq!(
            files.get("manifest.json"),
            Some(&br#"{"name":"hello"}"#[..])
        );

        let tar = zstd::stream::decode_all(first.as_slice()).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(header.mtime().unwrap(), 0);
            assert_eq!(header.uid().unwrap(), 0);
            assert_eq!(header.gid().unwrap(), 0);
            assert_eq!(header.username_bytes(), Some(&b""[..]));
            assert_eq!(header.groupname_bytes(), Some(&b""[..]));
            let expected = if header.entry_type().is_dir() {
                0o755
            } else {
                0o644
            };
            assert_eq!(header.mode().unwrap(), expected);
            names.push(String::from_utf8(entry.path_bytes().into_owned()).unwrap());
        }
        assert_eq!(
            names,
            [
                "dist/",
                "dist/main.wasm",
                "manifest.json",
                "ui/",
                "ui/index.html"
            ]
        );
    }

    #[test]
    fn pack_needs_a_manifest() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("dist/main.wasm"), b"x");
        let err = pack_dir(dir.path(), &ArchiveLimits::default()).unwrap_err();
        assert_eq!(err.code(), "missing_manifest", "{err}");
    }

    #[test]
    fn pack_refuses_hidden_files() {
        let dir = sample_dir();
        write(&dir.path().join("ui/.DS_Store"), b"x");
        let err = pack_dir(dir.path(), &ArchiveLimits::default()).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::HiddenSegment { entry, .. } if entry == "ui/.DS_Store"),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn pack_refuses_symlinks() {
        let dir = sample_dir();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("ui/passwd")).unwrap();
        let err = pack_dir(dir.path(), &ArchiveLimits::default()).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::Link { entry, .. } if entry == "ui/passwd"),
            "{err}"
        );
        assert!(err.to_string().contains("ui/passwd"), "{err}");
    }

    #[test]
    fn pack_respects_limits() {
        let dir = sample_dir();
        let small_files = ArchiveLimits {
            max_file_bytes: 4,
            ..ArchiveLimits::default()
        };
        let err = pack_dir(dir.path(), &small_files).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::FileTooLarge { entry, .. } if entry == "dist/main.wasm"),
            "{err}"
        );
        let few_entries = ArchiveLimits {
            max_entries: 2,
            ..ArchiveLimits::default()
        };
        let err = pack_dir(dir.path(), &few_entries).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::TooManyEntries { entry, .. } if entry == "manifest.json"),
            "{err}"
        );
    }

    #[test]
    fn pack_handles_long_paths() {
        let dir = sample_dir();
        let long = format!("ui/{}/{}.js", "d".repeat(120), "f".repeat(90));
        write(&dir.path().join(&long), b"1");
        let bytes = pack_dir(dir.path(), &ArchiveLimits::default()).unwrap();
        let files = unpack(&bytes, &ArchiveLimits::default()).unwrap();
        assert_eq!(files.get(&long), Some(&b"1"[..]));
    }
}
