//! `gatehouse soql check [--policy FILE] [--caller ID] [--connection ID] [--json] [QUERY...]`.
//!
//! The logic lives in `gatehouse_guards::soql_guard::cli` (tested there); this module adds
//! the one thing the guards crate does not do: reading the TOML policy file.

use gatehouse_guards::soql_guard::cli::run_with_loader;
use gatehouse_guards::soql_guard::PolicyFile;
use std::io::{BufRead, Write};
use std::path::Path;

pub use gatehouse_guards::soql_guard::cli::{
    SoqlCheckArgs, EXIT_ALLOWED, EXIT_BLOCKED, EXIT_USAGE,
};

/// Runs the command; returns the process exit code (0 allowed, 1 blocked, 2 usage error).
pub fn run(args: SoqlCheckArgs, input: impl BufRead, out: &mut impl Write) -> i32 {
    run_with_loader(&args, load_policy, input, out)
}

/// Reads a policy file (`[soql]`, `[[connections]]`, `[[callers]]`; see
/// guards/src/soql_guard/README.md).
pub fn load_policy(path: &Path) -> Result<PolicyFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    toml::from_str(&text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_toml_policy_and_blocks_by_it() {
        let dir = std::env::temp_dir().join(format!("gatehouse-soql-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("policy.toml");
        std::fs::write(
            &path,
            "[soql]\nmax_limit = 100\n\n[[callers]]\nid = \"bot\"\n[callers.soql]\nobjects = [\"Account\"]\n",
        )
        .unwrap();
        let args = SoqlCheckArgs {
            policy: Some(path.clone()),
            caller: Some("bot".into()),
            queries: vec!["SELECT Id FROM Contact WHERE Id = '003000000000001' LIMIT 500".into()],
            ..SoqlCheckArgs::default()
        };
        let mut out = Vec::new();
        let code = run(args, std::io::empty(), &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(code, EXIT_BLOCKED, "{text}");
        assert!(text.contains("limit-too-high"), "{text}");
        assert!(text.contains("object-not-allowed"), "{text}");
        let missing = SoqlCheckArgs {
            policy: Some(dir.join("nope.toml")),
            ..SoqlCheckArgs::default()
        };
        let mut out = Vec::new();
        assert_eq!(run(missing, std::io::empty(), &mut out), EXIT_USAGE);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
