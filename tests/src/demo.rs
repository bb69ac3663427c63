//! `gatehouse demo` as the tests start it: every port ephemeral, a fixed run time.

use std::process::Command;

/// The demo on ephemeral data-plane and admin ports, stopping by itself after `seconds`.
pub fn command(seconds: u32) -> Command {
    let mut command = Command::new(crate::binary());
    command.args([
        "demo",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--seconds",
        &seconds.to_string(),
    ]);
    command
}
