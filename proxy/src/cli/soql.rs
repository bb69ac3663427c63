//! `gatehouse soql check [--policy FILE] [--caller ID] [--connection ID] [--json] [QUERY...]`.
//!
//! The logic lives in `gatehouse_guards::soql_guard::cli` (tested there); this module adds
//! the one thing the guards crate does not do: reading the TOML policy file.

use gatehouse_guards::soql_guard::cli::run_with_loader;
use gatehouse_guards::soql_guard::PolicyFile;
use std::io::{BufRead, Write};
use std::path::Path;

pub use gatehouse_guards::soql_guard::cli::SoqlCheckArgs;
#[cfg(test)]
use gatehouse_guards::soql_guard::cli::{EXIT_BLOCKED, EXIT_USAGE};

/// Runs the command; returns the process exit code (0 allowed, 1 blocked, 2 usage error).
pub fn run(args: SoqlCheckArgs, input: impl BufRead, out: &mut impl Write) -> i32 {
    run_with_loader(&args, load_policy, input, out)
}

/// Reads a policy file: either a SOQL policy file (`[soql]`, `[[connections]]`, `[[callers]]`;
/// see guards/src/soql_guard/README.md) or a gatehouse config, whose connections' `soql`
/// tables and callers' `soql` allow-lists (in the config or its `policy` file) are used. Only
/// those tables are read, so a CI job needs none of the config's secrets.
pub fn load_policy(path: &Path) -> Result<PolicyFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let soql_policy_error = match toml::from_str::<PolicyFile>(&text) {
        Ok(policy) => return Ok(policy),
        Err(e) => e,
    };
    let value: toml::Value =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let looks_like_config = value.get("server").is_some()
        || value.get("policy").is_some()
        || value
            .get("connections")
            .and_then(|c| c.as_array())
            .is_some_and(|c| c.iter().any(|conn| conn.get("provider").is_some()));
    if !looks_like_config {
        return Err(format!("{}: {soql_policy_error}", path.display()));
    }
    from_gatehouse_config(path, &value)
}

fn from_gatehouse_config(path: &Path, value: &toml::Value) -> Result<PolicyFile, String> {
    let entries = |v: Option<&toml::Value>| -> Vec<toml::Value> {
        v.and_then(|x| x.as_array()).cloned().unwrap_or_default()
    };
    let soql_of = |entry: &toml::Value| entry.get("soql").cloned();
    let id_of = |entry: &toml::Value| {
        entry
            .get("id")
            .and_then(|i| i.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let mut policy = PolicyFile::default();
    for conn in entries(value.get("connections")) {
        let soql = match soql_of(&conn) {
            Some(s) => s.try_into().map_err(|e| {
                format!("{}: connection {}: soql: {e}", path.display(), id_of(&conn))
            })?,
            None => Default::default(),
        };
        policy
            .connections
            .push(gatehouse_guards::soql_guard::ConnectionEntry {
                id: id_of(&conn),
                soql,
            });
    }
    let callers = match value.get("policy").and_then(|p| p.as_str()) {
        Some(file) => {
            let policy_path = path.parent().unwrap_or_else(|| Path::new(".")).join(file);
            let text = std::fs::read_to_string(&policy_path)
                .map_err(|e| format!("{}: {e}", policy_path.display()))?;
            let doc: toml::Value =
                toml::from_str(&text).map_err(|e| format!("{}: {e}", policy_path.display()))?;
            entries(doc.get("callers"))
        }
        None => entries(value.get("callers")),
    };
    for caller in callers {
        let soql = match soql_of(&caller) {
            Some(s) => s
                .try_into()
                .map_err(|e| format!("{}: caller {}: soql: {e}", path.display(), id_of(&caller)))?,
            None => Default::default(),
        };
        policy
            .callers
            .push(gatehouse_guards::soql_guard::CallerEntry {
                id: id_of(&caller),
                soql,
            });
    }
    Ok(policy)
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

    #[test]
    fn reads_the_soql_tables_of_a_gatehouse_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gatehouse.toml");
        std::fs::write(
            &path,
            r#"
policy = "policy.toml"
[[connections]]
id = "crm"
provider = "custom"
base_url = "https://x.example"
credentials = { type = "bearer", token = "${NOT_SET_IN_CI}" }
[connections.soql]
max_limit = 50
"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("policy.toml"),
            "[[callers]]\nid = \"bot\"\ntoken_sha256 = \"00\"\n[callers.soql]\nobjects = [\"Account\"]\n",
        )
        .unwrap();
        let policy = load_policy(&path).unwrap();
        assert_eq!(policy.connection("crm").map(|c| c.max_limit), Some(50));
        let args = SoqlCheckArgs {
            policy: Some(path),
            caller: Some("bot".into()),
            connection: Some("crm".into()),
            queries: vec!["SELECT Id FROM Contact WHERE Id = '003000000000001' LIMIT 100".into()],
            ..SoqlCheckArgs::default()
        };
        let mut out = Vec::new();
        assert_eq!(run(args, std::io::empty(), &mut out), EXIT_BLOCKED);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("object-not-allowed") && text.contains("limit-too-high"),
            "{text}"
        );
    }
}
