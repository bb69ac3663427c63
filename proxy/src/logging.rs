//! JSON log lines on stderr. The level comes from `GATEHOUSE_LOG` (or `RUST_LOG`), default
//! `info`. Nothing logged anywhere carries a header value or a token: stages log ids.

use tracing_subscriber::{fmt, EnvFilter};

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
        .with_writer(std::io::stderr)
        .try_init();
}
