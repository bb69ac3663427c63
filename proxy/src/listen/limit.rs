//! How many connections the process holds at once: the cap on caller connections, the admin
//! port's own allowance, and the open-file limit both must fit in.
//!
//! Without a cap, connections that are held open (on purpose or not) use up file descriptors
//! until `accept` fails for every listener, the admin port included. So the data plane stops
//! at `server.max_connections` (lowered to what the file limit leaves room for), the admin port
//! has a small allowance of its own that data-plane traffic cannot use up, and the soft
//! open-file limit is raised to the hard one at start.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Connections the admin port may hold at once, apart from the data plane's: enough for
/// scrapers, probes and an operator, and bounded so that the admin port cannot be used to
/// exhaust the file limit either.
pub const ADMIN_CONNECTIONS: usize = 64;

/// File descriptors kept out of the caller connections' share: the listening sockets, the
/// store, log output, the admin allowance and a margin for the runtime and the resolver.
const RESERVED_FILES: u64 = ADMIN_CONNECTIONS as u64 + 64;

/// A cap on connections open at once, shared by every worker that accepts under it.
pub struct ConnectionLimit {
    open: AtomicUsize,
    max: usize,
    /// Set by a refusal, cleared by the next admission: the first refusal of a run is logged,
    /// not every one (a flood would flood the log too).
    refusing: AtomicBool,
}

impl ConnectionLimit {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            max,
            refusing: AtomicBool::new(false),
        })
    }

    /// Counts one more connection, or `None` when `max` are already open.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        // One read-modify-write per accept: workers on other cores never both take the last
        // place, which a read of the count followed by an increment would allow.
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max).then_some(open + 1)
            })
            .ok()?;
        if self.refusing.load(Ordering::Relaxed) {
            self.refusing.store(false, Ordering::Relaxed);
        }
        Some(Permit {
            limit: self.clone(),
        })
    }

    /// Whether this refusal is the first since a connection was last admitted.
    pub fn first_refusal(&self) -> bool {
        !self.refusing.swap(true, Ordering::Relaxed)
    }

    pub fn max(&self) -> usize {
        self.max
    }

    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// One open connection under a [`ConnectionLimit`], until dropped.
pub struct Permit {
    limit: Arc<ConnectionLimit>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limit.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The open-file limit in force after [`raise_file_limit`]: soft and hard, `None` for
/// unlimited (or unknown, off Unix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimit {
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (a process may always do so without
/// privileges) and returns the limit then in force. The default soft limit of many systems
/// (1,024) is far below what a proxy with thousands of callers and their provider connections
/// needs, while the hard limit is usually generous.
#[cfg(unix)]
pub fn raise_file_limit() -> FileLimit {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let before = getrlimit(Resource::Nofile);
    if before.current != before.maximum {
        let raised = Rlimit {
            current: before.maximum,
            maximum: before.maximum,
        };
        if let Err(err) = setrlimit(Resource::Nofile, raised) {
            // macOS refuses an unlimited soft limit; the soft limit stays as it was.
            tracing::warn!(error = %err, "cannot raise the open-file limit to the hard limit");
        }
    }
    let now = getrlimit(Resource::Nofile);
    FileLimit {
        soft: now.current,
        hard: now.maximum,
    }
}

#[cfg(not(unix))]
pub fn raise_file_limit() -> FileLimit {
    FileLimit {
        soft: None,
        hard: None,
    }
}

/// The caller-connection cap that fits in `files` open files: each caller connection may hold
/// a provider connection besides its own socket, and [`RESERVED_FILES`] stay for the rest.
pub fn fitting_max_connections(configured: usize, files: Option<u64>) -> usize {
    let Some(files) = files else {
        return configured;
    };
    let room = files.saturating_sub(RESERVED_FILES) / 2;
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    configured.min(room).max(1)
}

/// Whether an `accept` failed because the process or the system is out of file descriptors.
pub fn out_of_files(err: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        use rustix::io::Errno;
        matches!(
            Errno::from_io_error(err),
            Some(Errno::MFILE) | Some(Errno::NFILE)
        )
    }
    #[cfg(not(unix))]
    {
        let _ = err;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_limit_refuses_until_a_connection_closes() {
        let limit = ConnectionLimit::new(2);
        let a = limit.try_acquire().expect("first");
        let _b = limit.try_acquire().expect("second");
        assert!(limit.try_acquire().is_none(), "third is over the cap");
        assert!(limit.first_refusal());
        assert!(limit.try_acquire().is_none());
        assert!(!limit.first_refusal(), "a run of refusals is reported once");
        assert_eq!(limit.open(), 2);
        drop(a);
        let _c = limit.try_acquire().expect("a closed one frees a place");
        assert!(limit.try_acquire().is_none());
        assert!(limit.first_refusal(), "a new run after an admission");
    }

    #[test]
    fn the_cap_is_lowered_to_fit_the_file_limit() {
        // 1,024 files: 128 reserved, two per caller connection.
        assert_eq!(fitting_max_connections(10_000, Some(1024)), 448);
        assert_eq!(fitting_max_connections(100, Some(1024)), 100);
        assert_eq!(fitting_max_connections(10_000, Some(1_048_576)), 10_000);
        assert_eq!(fitting_max_connections(10_000, None), 10_000);
        // A limit too small for anything still lets one caller in.
        assert_eq!(fitting_max_connections(10_000, Some(10)), 1);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_soft_file_limit_is_raised_to_the_hard_limit() {
        let limit = raise_file_limit();
        assert_eq!(limit.soft, limit.hard);
    }

    #[test]
    fn running_out_of_files_is_recognised() {
        #[cfg(unix)]
        assert!(out_of_files(&std::io::Error::from_raw_os_error(
            rustix::io::Errno::MFILE.raw_os_error()
        )));
        assert!(!out_of_files(&std::io::Error::from(
            std::io::ErrorKind::ConnectionAborted
        )));
    }
}
