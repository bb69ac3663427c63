//! Static credentials, config parsing and the error envelope.

use super::*;

#[tokio::test]
async fn basic_uses_key_as_user_with_blank_password() {
    let config = CredentialsConfig::Basic {
        username: Secret::new("key123"),
        password: Secret::default(),
    };
    let creds = Credentials::from_config([("gh", &config)]).unwrap();
    let mut headers = HeaderMap::new();
    creds.apply("gh", &mut headers).await.unwrap();
    // base64("key123:")
    assert_eq!(headers.get("authorization").unwrap(), "Basic a2V5MTIzOg==");
}

#[tokio::test]
async fn static_bearer_is_sent_and_never_replayed() {
    let config = CredentialsConfig::Bearer {
        token: Secret::new("pat-123"),
    };
    let creds = Credentials::from_config([("hs", &config)]).unwrap();
    let mut headers = HeaderMap::new();
    let applied = creds.apply("hs", &mut headers).await.unwrap();
    assert_eq!(headers.get("authorization").unwrap(), "Bearer pat-123");
    assert!(headers.get("authorization").unwrap().is_sensitive());
    assert!(!creds.on_unauthorized("hs", &applied).await.unwrap());
    assert_eq!(creds.status()[0].state, "static");
}

#[test]
fn debug_of_config_redacts_secrets() {
    let config = CredentialsConfig::Bearer {
        token: Secret::new("s3cr3t"),
    };
    assert!(!format!("{config:?}").contains("s3cr3t"));
}

#[test]
fn oauth_variants_parse_from_toml() {
    let text = r#"
        type = "oauth_refresh_token"
        token_url = "https://login.example.com/services/oauth2/token"
        client_id = "cid"
        client_secret = "csecret"
        scopes = ["api", "refresh_token"]
        refresh_token = "seed-rt"
        authorize_url = "https://login.example.com/services/oauth2/authorize"
        redirect_uri = "http://127.0.0.1:9090/connect/sf/callback"
        token_lifetime_secs = 900
        refresh_margin_secs = 30
    "#;
    let config: CredentialsConfig = toml::from_str(text).unwrap();
    let CredentialsConfig::OauthRefreshToken {
        token_lifetime_secs,
        scopes,
        ..
    } = &config
    else {
        panic!("wrong variant")
    };
    assert_eq!(*token_lifetime_secs, Some(900));
    assert_eq!(scopes.len(), 2);
    assert!(
        !format!("{config:?}").contains("csecret") && !format!("{config:?}").contains("seed-rt")
    );
    let typo = toml::from_str::<CredentialsConfig>("type = \"client_credentials\"\ntoken_url = \"x\"\nclient_id = \"a\"\nclient_secret = \"b\"\nscope = \"x\"");
    assert!(typo.is_err(), "unknown keys must be refused");
}

#[test]
fn errors_map_to_categories_without_secrets() {
    let e = to_gateway_error(CredentialError::TokenEndpointUnavailable {
        connection: "sf".into(),
        reason: "http_503".into(),
        retry_after: Duration::from_secs(4),
    });
    assert_eq!(e.category, Category::ProviderUnavailable);
    assert_eq!(e.retry_after, Some(Duration::from_secs(4)));
    let e = to_gateway_error(CredentialError::ReauthRequired {
        connection: "sf".into(),
        reason: "invalid_grant".into(),
    });
    assert_eq!(e.category, Category::ReauthRequired);
    let e = to_gateway_error(CredentialError::StoreUnavailable {
        connection: "sf".into(),
        reason: "postgres: connection refused".into(),
        retry_after: Duration::from_secs(2),
    });
    assert_eq!(e.category, Category::ProviderUnavailable);
    assert_eq!(e.code, "credential_store_unavailable");
    assert_eq!(e.retry_after, Some(Duration::from_secs(2)));
    assert!(e.message.contains("credential store is unavailable"));
    assert!(
        !e.message.contains("postgres"),
        "store internals stay in logs"
    );
    let e = to_gateway_error(CredentialError::ProviderAuthRejected {
        connection: "sf".into(),
        retry_after: Duration::from_secs(5),
    });
    assert_eq!(
        (e.category, e.code, e.retry_after),
        (
            Category::ProviderUnavailable,
            "provider_auth_rejected",
            Some(Duration::from_secs(5))
        )
    );
    assert!(e.category.retryable());
}
