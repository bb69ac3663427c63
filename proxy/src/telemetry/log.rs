//! JSON log lines on stderr. The level comes from `GATEHOUSE_LOG` (or `RUST_LOG`), default
//! `info`. Nothing logged anywhere carries a header value or a token: stages log ids.
//!
//! Data-plane workers buffer their lines and write them in batches: when the worker's event
//! loop goes idle (it has nothing left to run), when the buffer passes [`FLUSH_AT`] bytes, and
//! when the worker stops. A line therefore reaches stderr within one busy stretch of its worker,
//! with one `write` per batch instead of one per line and no lock shared between workers. Other
//! threads write each line straight away.
//!
//! The access line (one per request, target `gatehouse::access`) is formatted here by hand in
//! the same shape the `tracing` JSON formatter gives every other line: it runs for every
//! request, and the generic formatter cost more than the rest of the request's own work.

use crate::telemetry::record::RequestRecord;
use std::cell::RefCell;
use std::io::Write;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::{fmt, EnvFilter};

/// A worker writes its buffered lines once they reach this many bytes.
pub const FLUSH_AT: usize = 16 * 1024;

pub fn init() {
    let filter = std::env::var("GATEHOUSE_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let _ = fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(Sink)
        .try_init();
}

/// The pending lines of a buffering thread; written out when the thread ends.
struct ThreadBuffer(Vec<u8>);

impl Drop for ThreadBuffer {
    fn drop(&mut self) {
        write_stderr(&self.0);
    }
}

thread_local! {
    static BUFFER: RefCell<Option<ThreadBuffer>> = const { RefCell::new(None) };
    static CLOCK: RefCell<SecondCache> = const { RefCell::new(SecondCache { second: u64::MAX, prefix: [0; 20] }) };
}

/// From now on this thread's log lines are buffered (see the module docs).
pub fn buffer_this_thread() {
    BUFFER.with(|b| {
        let mut slot = b.borrow_mut();
        if slot.is_none() {
            *slot = Some(ThreadBuffer(Vec::with_capacity(FLUSH_AT + 1024)));
        }
    });
}

/// Writes this thread's buffered lines now.
pub fn flush_this_thread() {
    BUFFER.with(|b| {
        if let Ok(mut slot) = b.try_borrow_mut() {
            if let Some(buffer) = slot.as_mut() {
                write_stderr(&buffer.0);
                buffer.0.clear();
            }
        }
    });
}

fn write_stderr(bytes: &[u8]) {
    if !bytes.is_empty() {
        // Nowhere to report a failing stderr; the line is dropped rather than the request.
        let _ = std::io::stderr().lock().write_all(bytes);
    }
}

/// Runs `write` on this thread's buffer, or on a scratch line that is written at once.
fn with_sink(write: impl FnOnce(&mut Vec<u8>)) {
    let mut write = Some(write);
    // `try_with`: a request dropped while its thread winds down still gets its line, unbuffered.
    let _ = BUFFER.try_with(|b| {
        if let Ok(mut slot) = b.try_borrow_mut() {
            if let Some(buffer) = slot.as_mut() {
                if let Some(write) = write.take() {
                    write(&mut buffer.0);
                }
                if buffer.0.len() >= FLUSH_AT {
                    write_stderr(&buffer.0);
                    buffer.0.clear();
                }
            }
        }
    });
    if let Some(write) = write {
        let mut line = Vec::with_capacity(256);
        write(&mut line);
        write_stderr(&line);
    }
}

/// The `tracing` formatter's writer: each event arrives as one complete line.
struct Sink;

impl<'a> MakeWriter<'a> for Sink {
    type Writer = SinkWriter;

    fn make_writer(&'a self) -> SinkWriter {
        SinkWriter
    }
}

struct SinkWriter;

impl Write for SinkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        with_sink(|out| out.extend_from_slice(bytes));
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The access log as a request-record sink: one JSON line per request at INFO under the target
/// `gatehouse::access` (when that target is enabled).
pub(crate) struct AccessLog;

impl crate::telemetry::record::Sink for AccessLog {
    fn record(&self, record: &RequestRecord<'_>) {
        if !tracing::enabled!(target: "gatehouse::access", tracing::Level::INFO) {
            return;
        }
        with_sink(|out| format_access(out, record, std::time::SystemTime::now()));
    }
}

/// `{"timestamp":…,"level":"INFO","message":"request",<fields>,"target":"gatehouse::access"}`.
/// Each key is written once (a log pipeline keeps only one of two same-named keys).
fn format_access(out: &mut Vec<u8>, r: &RequestRecord<'_>, now: std::time::SystemTime) {
    out.extend_from_slice(b"{\"timestamp\":\"");
    timestamp(out, now);
    out.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":\"request\",\"request_id\":\"");
    json_str(out, r.request_id);
    // Hex by construction, like the codes below (ours, or a provider's cleaned to a token):
    // nothing to escape.
    out.extend_from_slice(b"\",\"trace_id\":\"");
    match r.trace_id {
        Some(id) => out.extend_from_slice(id.as_bytes()),
        None => out.extend_from_slice(b"none"),
    }
    out.extend_from_slice(b"\",\"connection\":\"");
    json_str(out, r.connection.unwrap_or("none"));
    out.extend_from_slice(b"\",\"provider\":\"");
    json_str(out, r.provider.unwrap_or("none"));
    out.extend_from_slice(b"\",\"caller\":\"");
    json_str(out, r.caller.unwrap_or("none"));
    out.extend_from_slice(b"\",\"method\":\"");
    json_str(out, r.method.as_str());
    out.extend_from_slice(b"\",\"endpoint\":\"");
    json_str(out, r.endpoint.unwrap_or("none"));
    out.extend_from_slice(b"\",\"status\":");
    out.extend_from_slice(itoa::Buffer::new().format(r.status.as_u16()).as_bytes());
    out.extend_from_slice(b",\"category\":\"");
    out.extend_from_slice(r.category.as_bytes());
    out.extend_from_slice(b"\",\"code\":\"");
    out.extend_from_slice(r.code.as_bytes());
    out.extend_from_slice(b"\",\"provider_error\":\"");
    json_str(out, r.provider_error.unwrap_or("none"));
    out.extend_from_slice(b"\",\"bytes_in\":");
    out.extend_from_slice(itoa::Buffer::new().format(r.bytes_in).as_bytes());
    out.extend_from_slice(b",\"bytes_out\":");
    out.extend_from_slice(itoa::Buffer::new().format(r.bytes_out).as_bytes());
    // Milliseconds with microsecond resolution, without float formatting.
    let micros = r.duration.as_micros();
    out.extend_from_slice(b",\"duration_ms\":");
    out.extend_from_slice(itoa::Buffer::new().format(micros / 1000).as_bytes());
    let frac = (micros % 1000) as u16;
    out.extend_from_slice(&[
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
    out.extend_from_slice(b",\"target\":\"gatehouse::access\"}\n");
}

/// The UTC date and time up to the second (`2026-11-25T21:40:12.`), kept per thread.
struct SecondCache {
    second: u64,
    prefix: [u8; 20],
}

/// RFC 3339 UTC with microseconds, as the `tracing` formatter writes it.
fn timestamp(out: &mut Vec<u8>, now: std::time::SystemTime) {
    let since = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let second = since.as_secs();
    CLOCK.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.second != second {
            let t = time::OffsetDateTime::from_unix_timestamp(second as i64)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            let mut prefix = [0u8; 20];
            let mut cursor = std::io::Cursor::new(&mut prefix[..]);
            let _ = write!(
                cursor,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            );
            cache.second = second;
            cache.prefix = prefix;
        }
        out.extend_from_slice(&cache.prefix);
    });
    let micros = since.subsec_micros();
    let mut digits = [b'0'; 6];
    let mut rest = micros;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.extend_from_slice(&digits);
    out.push(b'Z');
}

/// Appends `s` as the inside of a JSON string.
fn json_str(out: &mut Vec<u8>, s: &str) {
    if !needs_escape(s.as_bytes()) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    for b in s.bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b if b < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
            b => out.push(b),
        }
    }
}

/// Whether any byte is `"`, `\` or a control character below 0x20, eight bytes at a time
/// (the access line escapes every field, and nearly all of them need nothing).
fn needs_escape(bytes: &[u8]) -> bool {
    use crate::swar::{any_byte, has_below, has_byte};
    any_byte(
        bytes,
        |x| has_byte(x, b'"') | has_byte(x, b'\\') | has_below(x, 0x20),
        |b| b == b'"' || b == b'\\' || b < 0x20,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn trace_id() -> &'static crate::telemetry::record::TraceId {
        static ID: std::sync::OnceLock<crate::telemetry::record::TraceId> =
            std::sync::OnceLock::new();
        ID.get_or_init(|| {
            let tp = http::HeaderValue::from_static(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            );
            crate::telemetry::record::TraceId::of(&tp).unwrap()
        })
    }

    fn record(request_id: &str, duration: Duration) -> RequestRecord<'_> {
        RequestRecord {
            request_id,
            trace_id: Some(trace_id()),
            connection: Some("acme-sf"),
            provider: Some("testapi"),
            caller: Some("crm-sync"),
            method: &http::Method::GET,
            endpoint: Some("/services/data/v60.0/query"),
            status: http::StatusCode::FORBIDDEN,
            category: "forbidden",
            code: "path_not_granted",
            provider_error: Some("INVALID_SESSION_ID"),
            bytes_in: 12,
            bytes_out: 345,
            duration,
        }
    }

    #[test]
    fn access_line_is_the_json_the_tracing_formatter_writes() {
        let mut out = Vec::new();
        // 2026-11-25T21:40:12.000042Z
        let now = UNIX_EPOCH + Duration::new(1_795_642_812, 42_999);
        format_access(
            &mut out,
            &record("r-1", Duration::from_micros(1_234_567)),
            now,
        );
        let line = String::from_utf8(out).unwrap();
        assert!(line.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["timestamp"], "2026-11-25T21:40:12.000042Z");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "request");
        assert_eq!(v["target"], "gatehouse::access");
        assert_eq!(v["request_id"], "r-1");
        assert_eq!(v["connection"], "acme-sf");
        assert_eq!(v["caller"], "crm-sync");
        assert_eq!(v["method"], "GET");
        assert_eq!(v["status"], 403);
        assert_eq!(v["category"], "forbidden");
        assert_eq!(v["code"], "path_not_granted");
        assert_eq!(v["provider"], "testapi");
        assert_eq!(v["endpoint"], "/services/data/v60.0/query");
        assert_eq!(v["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(v["provider_error"], "INVALID_SESSION_ID");
        assert_eq!(v["bytes_in"], 12);
        assert_eq!(v["bytes_out"], 345);
        assert_eq!(v["duration_ms"].as_f64(), Some(1234.567));
        // The same second again reuses the cached date; a new second recomputes it.
        let mut out = Vec::new();
        format_access(
            &mut out,
            &record("r", Duration::ZERO),
            now + Duration::from_secs(1),
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["timestamp"], "2026-11-25T21:40:13.000042Z");
        assert_eq!(v["duration_ms"].as_f64(), Some(0.0));
    }

    #[test]
    fn caller_supplied_text_cannot_break_the_line() {
        let mut out = Vec::new();
        let hostile = "a\"b\\c\n\u{1}}{";
        format_access(&mut out, &record(hostile, Duration::ZERO), UNIX_EPOCH);
        let line = String::from_utf8(out).unwrap();
        assert_eq!(line.matches('\n').count(), 1, "one line: {line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["request_id"], hostile);
    }

    proptest::proptest! {
        #[test]
        fn word_at_a_time_escape_check_agrees_with_the_byte_check(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            let slow = bytes.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20);
            proptest::prop_assert_eq!(needs_escape(&bytes), slow);
        }
    }

    #[test]
    fn escape_check_finds_each_special_byte_in_every_lane() {
        for special in [b'"', b'\\', 0u8, 0x1f, b'\n'] {
            for len in 1..20 {
                for at in 0..len {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    assert!(needs_escape(&bytes), "{special} at {at} of {len}");
                }
            }
        }
        for harmless in [b' ', 0x7f, 0x80, 0xff, b'!', b'#', b'[', b']'] {
            assert!(!needs_escape(&[harmless; 17]), "{harmless}");
        }
    }

    #[test]
    fn buffered_lines_wait_for_a_flush() {
        std::thread::spawn(|| {
            buffer_this_thread();
            with_sink(|out| out.extend_from_slice(b"{}\n"));
            let pending = BUFFER.with(|b| b.borrow().as_ref().map(|t| t.0.len()));
            assert_eq!(pending, Some(3));
            flush_this_thread();
            let pending = BUFFER.with(|b| b.borrow().as_ref().map(|t| t.0.len()));
            assert_eq!(pending, Some(0));
        })
        .join()
        .unwrap();
    }
}
