//! Standard output for the commands. Rust's `println!` panics when the reader has gone
//! (`gatehouse check | head`); here a closed pipe ends the output quietly and the command
//! finishes with the exit code it would have had, as `grep` or `ls` do.

use std::io::{self, Write};

/// A writer that drops everything after the reader closed the pipe. Other write errors (a full
/// disk behind a redirect) still reach the caller.
pub struct QuietPipe<W> {
    inner: W,
    closed: bool,
}

impl<W: Write> QuietPipe<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            closed: false,
        }
    }

    /// The reader went away: what was written after that was dropped.
    #[cfg(test)]
    pub fn closed(&self) -> bool {
        self.closed
    }

    fn absorb<T>(&mut self, result: io::Result<T>, otherwise: T) -> io::Result<T> {
        match result {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(otherwise)
            }
            other => other,
        }
    }
}

impl<W: Write> Write for QuietPipe<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let result = self.inner.write(buf);
        self.absorb(result, buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let result = self.inner.flush();
        self.absorb(result, ())
    }
}

/// Standard output behind a [`QuietPipe`].
pub fn stdout() -> QuietPipe<io::Stdout> {
    QuietPipe::new(io::stdout())
}

/// Writes one line to standard output; a closed pipe is not an error, anything else is
/// reported once on standard error (where a broken pipe is ignored too).
pub fn line(text: impl std::fmt::Display) {
    let mut out = stdout();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        let _ = writeln!(io::stderr(), "error: writing standard output: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that has gone after `room` bytes.
    struct ClosesAfter {
        room: usize,
        got: Vec<u8>,
    }

    impl Write for ClosesAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.got.len() >= self.room {
                return Err(io::Error::from(io::ErrorKind::BrokenPipe));
            }
            let n = buf.len().min(self.room - self.got.len());
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_ends_the_output_without_an_error() {
        let mut out = QuietPipe::new(ClosesAfter {
            room: 10,
            got: Vec::new(),
        });
        for n in 0..100 {
            writeln!(out, "line {n}").expect("a closed pipe is not an error");
        }
        out.flush().expect("flush after close");
        assert!(out.closed());
        assert_eq!(out.inner.got, b"line 0\nlin");
    }

    #[test]
    fn other_errors_still_surface() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("no space left"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut out = QuietPipe::new(Full);
        assert!(writeln!(out, "x").is_err());
        assert!(!out.closed());
    }
}
