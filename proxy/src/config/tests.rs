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
        config.connections[0].resolve_profile().map(|p| p.name),
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
