//! Trusting a cached artifact by its file identity instead of hashing it again.
//!
//! A file this process verified — wrote and hashed on the way, then renamed into
//! place, or hashed whole once — is remembered, process-wide, by (device, inode,
//! size, mtime, ctime; both times with nanoseconds) together with the sha256 it
//! hashed to. Any write to the file, any `utimes` (even one restoring the old
//! mtime) and any `chmod` moves its ctime, and a replacement is another inode, so
//! while all five are unchanged the file holds the bytes that were verified.
//! File times come from a coarse clock (a kernel tick, a few milliseconds; kernels
//! from 6.13 refine it once a time was read), so a change within the same tick as
//! the file's last change keeps its ctime. As `git` does with its "racily clean"
//! index entries, a file is therefore trusted only when the verification began
//! more than [`TICK`] after its ctime: any change after that began would carry a
//! later ctime. A freshly written file (the rename just moved its ctime) is hashed
//! once more by the next load that finds it, then trusted. What this cannot see is
//! a writer that sets the system clock back; the cache directory is private to
//! this user and its files are only ever replaced by rename, so such a writer is
//! already this user (or root), who could change this process's memory as well.
//!
//! The record is static so that a fresh [`ComponentLoader`](super::ComponentLoader)
//! in the same process (after its LRU dropped an entry, a second executor, the
//! cold bench) trusts what an earlier one verified.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

/// More than the kernel's file-timestamp tick (1–10 ms with HZ 1000–100).
pub(crate) const TICK: Duration = Duration::from_millis(20);

/// What identifies one version of a file's content on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FileIdentity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileIdentity {
    /// The identity of the regular file at `path` (a link is not followed); none
    /// when there is no such file, or where the platform cannot say (then every
    /// load hashes).
    pub(crate) fn of_path(path: &Path) -> Option<Self> {
        Self::of(&std::fs::symlink_metadata(path).ok()?)
    }

    /// The identity in `meta`, if it describes a regular file.
    pub(crate) fn of(meta: &std::fs::Metadata) -> Option<Self> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            meta.file_type().is_file().then(|| FileIdentity {
                dev: meta.dev(),
                ino: meta.ino(),
                size: meta.size(),
                mtime: (meta.mtime(), meta.mtime_nsec()),
                ctime: (meta.ctime(), meta.ctime_nsec()),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            None
        }
    }
}

struct Verified {
    sha256: [u8; 32],
    /// The verification began more than a tick after the file's ctime.
    settled: bool,
    /// When a load last used it: the eviction order for files this process
    /// trusts without touching them (a touch would change their identity).
    last_used: SystemTime,
}

/// Past this many files the record starts over: forgetting only costs a hash.
const MAX_ENTRIES: usize = 4096;

fn record() -> &'static Mutex<HashMap<FileIdentity, Verified>> {
    static RECORD: OnceLock<Mutex<HashMap<FileIdentity, Verified>>> = OnceLock::new();
    RECORD.get_or_init(Default::default)
}

impl FileIdentity {
    fn changed_at(&self) -> SystemTime {
        let (secs, nanos) = self.ctime;
        let since_epoch = Duration::new(secs.max(0) as u64, nanos.clamp(0, 999_999_999) as u32);
        SystemTime::UNIX_EPOCH + since_epoch
    }
}

/// Remembers that the file with identity `id` hashed to `sha256` in a
/// verification (a read of its bytes, or their write ending in the rename) that
/// began at `verified_from`.
pub(crate) fn remember(id: FileIdentity, sha256: [u8; 32], verified_from: SystemTime) {
    let settled = id.changed_at() + TICK < verified_from;
    let mut record = record().lock().unwrap();
    if record.len() >= MAX_ENTRIES && !record.contains_key(&id) {
        record.clear();
    }
    record.insert(
        id,
        Verified {
            sha256,
            settled,
            last_used: SystemTime::now(),
        },
    );
}

/// Whether the file with identity `id` was verified to hash to `expected` by a
/// verification that began more than a tick after its last change (and if so,
/// marks it used).
pub(crate) fn trusted(id: &FileIdentity, expected: &[u8; 32]) -> bool {
    match record().lock().unwrap().get_mut(id) {
        Some(v) if v.settled && v.sha256 == *expected => {
            v.last_used = SystemTime::now();
            true
        }
        _ => false,
    }
}

/// When a load last used the file with identity `id`, if this process knows it.
pub(crate) fn last_used(id: &FileIdentity) -> Option<SystemTime> {
    record().lock().unwrap().get(id).map(|v| v.last_used)
}

/// Forgets a file (removed, or found not to match).
pub(crate) fn forget(id: &FileIdentity) {
    record().lock().unwrap().remove(id);
}
