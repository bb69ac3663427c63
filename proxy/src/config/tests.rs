use super::*;

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::from_str(Path::new("gatehouse.toml"), text)
}

const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

#[test]
fn minimal_config_loads_with_defaults() {
    let config = parse(&format!(
        r#"
        [[connections]]
        id = "crm"
        provider = "hubspot"
        base_url = "https://api.hubapi.com"

        [[callers]]
        id = "svc"
        token_sha256 = "{HASH}"
        [[callers.grants]]
        connections = ["crm"]
        methods = ["GET"]
        paths = ["/crm/v3/**"]
        "#
    ))
    .expect("valid config");
    assert_eq!(config.server.listen.port(), 8080);
    assert_eq!(
        config.connections[0]
            .resolve_provider()
            .map(|p| p.name().to_owned()),
        Ok("hubspot".to_owned())
    );
    assert_eq!(config.load_policy().map(|p| p.caller_count()).ok(), Some(1));
}

#[test]
fn syntax_errors_have_line_and_column() {
    let errors = parse("[server]\nlisten = \n").expect_err("broken");
    assert!(
        errors.0[0].location.starts_with("gatehouse.toml:2:"),
        "{:?}",
        errors.0
    );
}

#[test]
fn type_errors_point_at_the_line() {
    let errors = parse("[server]\nlisten = \"not an address\"\n").expect_err("broken");
    assert!(
        errors.0[0].location.starts_with("gatehouse.toml:2:"),
        "{:?}",
        errors.0
    );
    let errors = parse("[server]\nlisen = \"127.0.0.1:1\"\n").expect_err("unknown key");
    assert!(errors.0[0].message.contains("lisen"), "{:?}", errors.0);
}

#[test]
fn every_semantic_error_is_reported_with_its_key() {
    let errors = parse(
        r#"
        [[connections]]
        id = "Bad Id"
        provider = "nope"
        base_url = "ftp://x"

        [[connections]]
        id = "ok"
        provider = "custom"
        base_url = "https://api.example.com"

        [[callers]]
        id = "svc"
        [[callers.grants]]
        connections = ["missing"]
        methods = ["GET"]
        paths = ["/x"]
        "#,
    )
    .expect_err("broken");
    let keys: Vec<String> = errors.0.iter().map(|e| e.location.clone()).collect();
    assert_eq!(
        keys,
        vec![
            "gatehouse.toml: connections[0].id",
            "gatehouse.toml: connections[0].provider",
            "gatehouse.toml: connections[0].base_url",
            "gatehouse.toml: connections[1].provider",
            "config: callers[0]",
            "config: callers[0].grants[0].connections[0]",
        ]
    );
}

#[test]
fn zero_timeouts_are_refused_with_their_keys() {
    let errors = parse(
        r#"
        [server]
        request_timeout = "0s"
        response_body_idle_timeout = 0
        "#,
    )
    .expect_err("zero timeouts");
    let keys: Vec<&str> = errors.0.iter().map(|e| e.location.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "gatehouse.toml: server.request_timeout",
            "gatehouse.toml: server.response_body_idle_timeout",
        ]
    );
    assert!(errors.0[0].message.contains("longer than zero"));
    let config = parse(
        "[server]
response_body_idle_timeout = \"2m\"\n",
    )
    .expect("valid");
    assert_eq!(
        config.server.response_body_idle_timeout,
        Duration::from_secs(120)
    );
}

#[test]
fn env_interpolation_reaches_secrets_and_reports_missing_vars() {
    std::env::set_var("GATEHOUSE_TEST_TOKEN_CFG", "abc");
    let config = parse(
        r#"
        [[connections]]
        id = "crm"
        provider = "hubspot"
        base_url = "https://api.hubapi.com"
        credentials = { type = "bearer", token = "${GATEHOUSE_TEST_TOKEN_CFG}" }
        "#,
    )
    .expect("valid");
    match &config.connections[0].credentials {
        crate::credentials::CredentialsConfig::Bearer { token } => {
            assert_eq!(token.expose(), "abc")
        }
        other => panic!("unexpected {other:?}"),
    }
    let errors = parse(
        r#"
        [[connections]]
        id = "crm"
        provider = "hubspot"
        base_url = "${GATEHOUSE_TEST_UNSET_VAR}"
        "#,
    )
    .expect_err("missing env");
    assert_eq!(
        errors.0[0].location,
        "gatehouse.toml: connections[0].base_url"
    );
    assert!(errors.0[0].message.contains("GATEHOUSE_TEST_UNSET_VAR"));
}

fn locations(errors: &ConfigErrors) -> Vec<&str> {
    errors.0.iter().map(|e| e.location.as_str()).collect()
}

#[test]
fn every_unset_variable_and_every_bad_table_is_reported_in_one_run() {
    let errors = parse(
        r#"
[server]
listen = "not an address"

[[connections]]
id = "crm"
provider = "hubspot"
base_url = "https://api.hubapi.com"
credentials = { type = "bearer", token = "${GATEHOUSE_TEST_UNSET_ONE}" }

[[connections]]
id = "ats"
provider = "lever"
base_url = "https://api.lever.co"
credentials = { type = "oauth_refresh_token", token_url = "${GATEHOUSE_TEST_UNSET_TWO}", client_id = "x" }

[[connections]]
id = "broken"
provider = "lever"

[[connections]]
id = "typo"
provider = "lever"
base_url = "https://api.lever.co"
alowed_hosts = ["x"]
"#,
    )
    .expect_err("broken");
    let all = locations(&errors);
    for expected in [
        "gatehouse.toml: connections[0].credentials.token",
        "gatehouse.toml: connections[1].credentials.token_url",
        "gatehouse.toml: connections[2]",
        "gatehouse.toml: connections[3]",
    ] {
        assert!(all.contains(&expected), "{expected} missing from {all:?}");
    }
    assert!(
        all.iter()
            .any(|l| l.starts_with("gatehouse.toml:3:") && l.ends_with(": server")),
        "the first type error keeps its line: {all:?}"
    );
    let message = |at: &str| {
        errors
            .0
            .iter()
            .find(|e| e.location == at)
            .map(|e| e.message.clone())
            .unwrap_or_default()
    };
    assert!(message("gatehouse.toml: connections[2]").contains("base_url"));
    assert!(message("gatehouse.toml: connections[3]").contains("alowed_hosts"));
    assert!(
        message("gatehouse.toml: connections[1].credentials.token_url")
            .contains("GATEHOUSE_TEST_UNSET_TWO")
    );
    assert_eq!(errors.0.len(), 5, "{errors}");
}

#[test]
fn an_unset_variable_does_not_hide_semantic_errors() {
    let errors = parse(
        r#"
[[connections]]
id = "Bad Id"
provider = "hubspot"
base_url = "https://api.hubapi.com"
credentials = { type = "bearer", token = "${GATEHOUSE_TEST_UNSET_THREE}" }

[[connections]]
id = "crm"
provider = "hubspot"
base_url = "${GATEHOUSE_TEST_UNSET_FOUR}"
"#,
    )
    .expect_err("broken");
    assert_eq!(
        locations(&errors),
        vec![
            "gatehouse.toml: connections[0].credentials.token",
            "gatehouse.toml: connections[1].base_url",
            "gatehouse.toml: connections[0].id",
        ],
        "the unset base_url is reported once, as unset: {errors}"
    );
}

#[test]
fn a_syntax_error_says_the_parser_stopped_there() {
    let errors = parse("[server]\nlisten = \n[[connections]]\nid = \n").expect_err("broken");
    assert_eq!(errors.0.len(), 1);
    assert!(errors.0[0].location.starts_with("gatehouse.toml:2:"));
    assert!(
        errors.0[0].message.contains("parser stops"),
        "{}",
        errors.0[0].message
    );
}

fn connection(base_url: &str, extra: &str) -> String {
    format!(
        "[[connections]]\nid = \"c\"\nprovider = \"hubspot\"\nbase_url = \"{base_url}\"\n{extra}\n"
    )
}

#[test]
fn plain_http_outside_loopback_needs_allow_plaintext() {
    let errors = parse(&connection("http://api.example.com", "")).expect_err("plaintext");
    assert_eq!(
        locations(&errors),
        vec!["gatehouse.toml: connections[0].base_url"]
    );
    assert!(errors.0[0].message.contains("allow_plaintext"));
    let token = r#"credentials = { type = "client_credentials", token_url = "http://login.example.com/token", client_id = "a", client_secret = "b" }"#;
    let errors = parse(&connection("https://api.example.com", token)).expect_err("plaintext token");
    assert_eq!(
        locations(&errors),
        vec!["gatehouse.toml: connections[0].credentials.token_url"]
    );
    parse(&connection(
        "http://api.example.com",
        &format!("allow_plaintext = true\n{token}"),
    ))
    .expect("opted in");
    for loopback in [
        "http://127.0.0.1:8080",
        "http://127.3.2.1",
        "http://[::1]:9000/base",
        "http://localhost:1234",
        "http://LOCALHOST",
    ] {
        parse(&connection(loopback, "")).unwrap_or_else(|e| panic!("{loopback}: {e}"));
    }
    parse(&connection("http://127.0.0.1.example.com", "")).expect_err("not loopback");
}

#[test]
fn the_data_dir_default_comes_from_the_environment_when_the_file_sets_none() {
    let dir = Path::new("/etc/gatehouse");
    let env = Some(std::ffi::OsString::from("/var/lib/gatehouse"));
    let config = Config::from_text(Path::new("g.toml"), "", Some(dir), env.clone()).expect("ok");
    assert_eq!(config.store.data_dir, Path::new("/var/lib/gatehouse"));
    let config = Config::from_text(Path::new("g.toml"), "", Some(dir), None).expect("ok");
    assert_eq!(config.store.data_dir, Path::new("/etc/gatehouse/data"));
    let config = Config::from_text(
        Path::new("g.toml"),
        "[store]\ndata_dir = \"state\"\n",
        Some(dir),
        env,
    )
    .expect("ok");
    assert_eq!(config.store.data_dir, Path::new("/etc/gatehouse/state"));
}

#[test]
fn connection_deadlines_and_limits_have_defaults_and_refuse_zero() {
    let config =
        parse("[server]\nmax_connections = 500\nhttp2_idle_timeout = \"90s\"\n").expect("valid");
    assert_eq!(config.server.max_connections, 500);
    assert_eq!(config.server.http2_idle_timeout, Duration::from_secs(90));
    assert_eq!(config.server.header_read_timeout, Duration::from_secs(30));
    assert_eq!(
        config.server.protocol_detect_timeout,
        Duration::from_secs(10)
    );
    let errors = parse(
        r#"
        [server]
        protocol_detect_timeout = "0s"
        tls_handshake_timeout = 0
        header_read_timeout = "0ms"
        http2_keep_alive_interval = "0s"
        http2_keep_alive_timeout = "0s"
        http2_idle_timeout = "0s"
        max_connections = 0
        max_header_bytes = 0
        "#,
    )
    .expect_err("zero deadlines and limits");
    let keys: Vec<&str> = errors.0.iter().map(|e| e.location.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "gatehouse.toml: server.protocol_detect_timeout",
            "gatehouse.toml: server.tls_handshake_timeout",
            "gatehouse.toml: server.header_read_timeout",
            "gatehouse.toml: server.http2_keep_alive_interval",
            "gatehouse.toml: server.http2_keep_alive_timeout",
            "gatehouse.toml: server.http2_idle_timeout",
            "gatehouse.toml: server.max_connections",
            "gatehouse.toml: server.max_header_bytes",
        ]
    );
}

fn admin_token(id: &str, hash: &str, role: &str) -> String {
    format!("[[admin.tokens]]\nid = \"{id}\"\ntoken_sha256 = \"{hash}\"\nrole = \"{role}\"\n")
}

#[test]
fn admin_tokens_and_public_paths_load_with_defaults() {
    let config = parse("").expect("empty config");
    assert!(config.admin.tokens.is_empty());
    assert_eq!(
        config.admin.public_paths,
        ["/healthz", "/readyz", "/metrics"]
    );
    assert!(config.admin.warnings()[0].contains("admin port is locked"));

    let other = "a".repeat(64);
    let config = parse(&format!(
        "[admin]\npublic_paths = []\n{}{}",
        admin_token("sre-oncall", &HASH.to_uppercase(), "admin"),
        admin_token("ops.read_1", &other, "read")
    ))
    .expect("valid admin section");
    assert!(config.admin.public_paths.is_empty());
    let tokens = config.admin.tokens().unwrap();
    assert_eq!(
        tokens
            .iter()
            .map(|t| (t.id.as_str(), t.role))
            .collect::<Vec<_>>(),
        [
            ("sre-oncall", AdminRole::Admin),
            ("ops.read_1", AdminRole::Read)
        ]
    );
    assert_eq!(hex::encode(tokens[0].sha256), HASH);
    assert!(config.admin.warnings().is_empty());
}

#[test]
fn every_admin_error_is_reported_with_its_key_beside_the_files_other_errors() {
    let errors = parse(&format!(
        "[admin]\npublic_paths = [\"/healthz\", \"metrics\", \"/connect/sf\", \"/status?x\"]\n{}{}{}{}{}\n[[connections]]\nid = \"Bad Id\"\nprovider = \"hubspot\"\nbase_url = \"https://api.hubapi.com\"\n",
        admin_token("sre", HASH, "owner"),
        admin_token("sre", "abc", "read"),
        admin_token("ops", &"z".repeat(64), "admin"),
        admin_token("dup-hash", HASH, "read"),
        admin_token("has:colon", &"b".repeat(64), "read"),
    ))
    .expect_err("broken admin section");
    let found: Vec<(String, String)> = errors
        .0
        .iter()
        .map(|e| {
            (
                e.location.trim_start_matches("gatehouse.toml: ").to_owned(),
                e.message.clone(),
            )
        })
        .collect();
    for (key, message) in [
        ("admin.tokens[0].role", "unknown role \"owner\""),
        ("admin.tokens[1].id", "duplicate admin token id \"sre\""),
        ("admin.tokens[1].token_sha256", "64 hex characters"),
        ("admin.tokens[2].token_sha256", "64 hex characters"),
        (
            "admin.tokens[3].token_sha256",
            "the same token as admin.tokens[0]",
        ),
        ("admin.tokens[4].id", "must be 1 to 64 characters"),
        ("admin.public_paths[1]", "must start with /"),
        ("admin.public_paths[2]", "cannot be public"),
        ("admin.public_paths[3]", "no query"),
        ("connections[0].id", "must be non-empty"),
    ] {
        assert!(
            found.iter().any(|(k, m)| k == key && m.contains(message)),
            "{key}: {message} not in {found:#?}"
        );
    }
    assert_eq!(found.len(), 10, "{found:#?}");

    let errors = parse("[admin]\ntoken = []\n").expect_err("unknown key");
    assert!(errors.0[0].message.contains("token"), "{:?}", errors.0);
    let errors = parse(&format!(
        "{}scope = \"x\"\n",
        admin_token("a", HASH, "read")
    ))
    .expect_err("unknown token key");
    assert!(errors.0[0].message.contains("scope"), "{:?}", errors.0);
}

#[test]
fn the_unified_connection_id_is_reserved() {
    let errors = parse(
        r#"
        [[connections]]
        id = "unified"
        provider = "hubspot"
        base_url = "https://api.example.com"
        "#,
    )
    .expect_err("reserved");
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert_eq!(errors.0[0].location, "gatehouse.toml: connections[0].id");
    assert!(
        errors.0[0].message.contains("reserved") && errors.0[0].message.contains("/unified/"),
        "{}",
        errors.0[0].message
    );
    // A name that merely starts with it is an ordinary id.
    assert!(parse(
        r#"
        [[connections]]
        id = "unified-crm"
        provider = "hubspot"
        base_url = "https://api.example.com"
        "#
    )
    .is_ok());
}
