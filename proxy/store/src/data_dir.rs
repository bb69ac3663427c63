//! The embedded store's data directory: one process at a time, private files.
//!
//! Two processes sharing one SQLite file each cache their own access token and each refresh
//! with the stored refresh token; a provider that rotates refresh tokens sees the second use as
//! a replay and revokes the whole grant. So the directory is locked for the life of the store:
//! an advisory `flock` on `gatehouse.lock`, which the kernel releases however the process ends
//! (exit, crash, SIGKILL), so a restart never finds a stale lock.
//!
//! Everything the store creates here holds secrets or their ciphertexts next to the key that
//! opens them: files are created 0600 and the directory, when the store creates it, 0700.

use crate::StoreError;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside the data directory.
pub(crate) const LOCK_FILE: &str = "gatehouse.lock";

/// How often, and how far apart, a held lock is tried before the opener is refused.
const LOCK_ATTEMPTS: u32 = 20;
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(50);

/// The data directory, locked until this is dropped.
#[derive(Debug)]
pub(crate) struct DataDirLock {
    /// Kept open: closing it releases the lock.
    _file: File,
}

impl DataDirLock {
    /// Creates `dir` if needed and locks it. A holder that is going away (a process still
    /// exiting, a store of this process whose last task is finishing) gets about a second to
    /// let go; a live holder keeps the lock, and the opener is refused rather than left hanging
    /// at start-up.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, StoreError> {
        let failed = |what: &str, e: std::io::Error| {
            StoreError::Unavailable(format!("cannot {what} {}: {e}", dir.display()))
        };
        create_private_dir(dir).map_err(|e| failed("create the data directory", e))?;
        let path = dir.join(LOCK_FILE);
        // Never truncated on open: the holder's pid stays readable for the error message.
        let mut file = private_options()
            .read(true)
            .write(true)
            .truncate(false)
            .create(true)
            .open(&path)
            .map_err(|e| failed("open the lock file in", e))?;
        let mut attempts = 0;
        while !try_lock_exclusive(&file).map_err(|e| failed("lock", e))? {
            attempts += 1;
            if attempts >= LOCK_ATTEMPTS {
                return Err(StoreError::DataDirInUse {
                    dir: dir.to_owned(),
                    holder: read_pid(&mut file),
                });
            }
            // Runs on the blocking pool (or at start-up), never on a runtime worker; a holder
            // that is exiting gets a moment to let go, on the wall clock.
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(LOCK_RETRY);
        }
        // Diagnostics only (the lock is the flock, not this text): who holds the directory.
        let written = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        if let Err(error) = written {
            tracing::debug!(%error, path = %path.display(), "could not record the pid in the lock file");
        }
        Ok(Self { _file: file })
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(unix)]
fn try_lock_exclusive(file: &File) -> std::io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// No advisory lock on this platform: the row version compared at commit still keeps a second
/// process from overwriting a newer refresh token, but not from reusing an old one.
#[cfg(not(unix))]
fn try_lock_exclusive(_file: &File) -> std::io::Result<bool> {
    Ok(true)
}

/// Creates `dir` (and missing parents) as 0700. An existing directory keeps its mode: it may
/// be shared on purpose (a mounted volume), and its owner chose it.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Open options that create a file as 0600.
pub(crate) fn private_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Narrows an existing store file that others can read (one written before files were created
/// 0600) to 0600. A missing file is fine; a file we cannot change is reported, not fatal, since
/// its owner may have widened it on purpose.
pub(crate) fn make_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(metadata) = std::fs::metadata(path) else {
            return;
        };
        if metadata.permissions().mode() & 0o077 == 0 {
            return;
        }
        if let Err(error) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(%error, path = %path.display(), "store file is readable by others and could not be made private (0600)");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// The files SQLite keeps for `db`: the database and, in WAL mode, its -wal and -shm.
pub(crate) fn sqlite_files(db: &Path) -> [PathBuf; 3] {
    let with_suffix = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [db.to_owned(), with_suffix("-wal"), with_suffix("-shm")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_directory_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = DataDirLock::acquire(&data).unwrap();
        match DataDirLock::acquire(&data) {
            Err(StoreError::DataDirInUse { dir, holder }) => {
                assert_eq!(dir, data);
                assert_eq!(holder, Some(std::process::id()));
            }
            other => panic!("second lock must be refused, got {other:?}"),
        }
        drop(first);
        DataDirLock::acquire(&data).expect("the lock is free once its holder is gone");
    }

    #[cfg(unix)]
    #[test]
    fn a_created_data_directory_and_lock_file_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("nested").join("data");
        let _lock = DataDirLock::acquire(&data).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join(LOCK_FILE)), 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn an_existing_directory_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o750)).unwrap();
        let _lock = DataDirLock::acquire(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o750);
    }
}
