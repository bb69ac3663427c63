//! The admin port as a whole: authorisation before routing, then the pages. The connect flow's
//! own rules (admin id, account, replace) are tested with it, in `credentials`.

use super::*;
use crate::config::Config;
use crate::stages::caller::hash_token;
use base64::Engine;
use http_body_util::BodyExt;
use std::path::Path;

const READ_TOKEN: &str = "read-token-5b0f3c2e9d1a4b7c";
const ADMIN_TOKEN: &str = "admin-token-8e2d6a1f0c9b3e4d";

/// `[[admin.tokens]]`: `ops` (read) and `sre-oncall` (admin).
fn tokens() -> String {
    format!(
        "[[admin.tokens]]\nid = \"ops\"\ntoken_sha256 = \"{}\"\nrole = \"read\"\n\n[[admin.tokens]]\nid = \"sre-oncall\"\ntoken_sha256 = \"{}\"\nrole = \"admin\"\n",
        hash_token(READ_TOKEN),
        hash_token(ADMIN_TOKEN)
    )
}

async fn state(text: &str) -> Arc<AppState> {
    let config = Config::from_str(Path::new("test.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    AppState::build(config)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn call(state: &AppState, method: Method, uri: &str, authorization: Option<&str>) -> Answer {
    let mut headers = HeaderMap::new();
    if let Some(value) = authorization {
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
    }
    let response = answer(state, &method, &uri.parse().unwrap(), &headers).await;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn bearer(token: &str) -> Option<String> {
    Some(format!("Bearer {token}"))
}

#[tokio::test]
async fn no_token_401_read_token_403_on_admin_actions_whether_or_not_the_path_exists() {
    let s = state(&tokens()).await;
    let get = || Method::GET;
    for path in [
        "/dashboard",
        "/status",
        "/",
        "/nope",
        "/connect/x",
        "/connect/x/y",
    ] {
        let a = call(&s, get(), path, None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path}: {}", a.body);
        let challenges: Vec<_> = a.headers.get_all(header::WWW_AUTHENTICATE).iter().collect();
        assert_eq!(challenges.len(), 2, "{path}: Bearer and Basic");
        let a = call(&s, Method::POST, path, None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "POST {path}");
        let a = call(&s, get(), path, Some("Bearer not-a-token")).await;
        assert_eq!(
            a.status,
            StatusCode::UNAUTHORIZED,
            "{path} with an unknown token"
        );
    }
    let read = bearer(READ_TOKEN);
    let read = read.as_deref();
    for path in ["/status", "/dashboard", "/"] {
        let a = call(&s, get(), path, read).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.body);
    }
    assert!(call(&s, get(), "/status", read)
        .await
        .body
        .contains("connections"));
    assert_eq!(
        call(&s, get(), "/nope", read).await.status,
        StatusCode::NOT_FOUND
    );
    for (method, path) in [
        (get(), "/connect/x"),
        (get(), "/connect/x?replace=true"),
        (Method::POST, "/status"),
        (Method::DELETE, "/nope"),
    ] {
        let a = call(&s, method.clone(), path, read).await;
        assert_eq!(
            a.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            a.body
        );
        assert!(a.headers.get(header::WWW_AUTHENTICATE).is_none());
    }
    let admin = bearer(ADMIN_TOKEN);
    let admin = admin.as_deref();
    assert_eq!(
        call(&s, get(), "/status", admin).await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(&s, get(), "/nope", admin).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&s, Method::POST, "/status", admin).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    // No OAuth connection here: the connect flow has nothing to connect.
    assert_eq!(
        call(&s, get(), "/connect/x", admin).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn public_paths_answer_anyone_and_an_empty_list_locks_them_too() {
    let s = state(&tokens()).await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        let a = call(&s, Method::GET, path, None).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.body);
    }
    // The callback is authorised by its state, not by a token: it reaches the flow.
    let a = call(&s, Method::GET, "/connect/x/callback?code=c&state=s", None).await;
    assert_ne!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);

    let locked = state(&format!("[admin]\npublic_paths = []\n\n{}", tokens())).await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        let a = call(&locked, Method::GET, path, None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path}");
        let read = bearer(READ_TOKEN);
        let a = call(&locked, Method::GET, path, read.as_deref()).await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
    }

    let only_health = state(&format!(
        "[admin]\npublic_paths = [\"/healthz\"]\n\n{}",
        tokens()
    ))
    .await;
    assert_eq!(
        call(&only_health, Method::GET, "/healthz", None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        call(&only_health, Method::GET, "/metrics", None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn without_tokens_only_public_paths_answer() {
    let config = Config::from_str(Path::new("test.toml"), "").unwrap();
    let warnings = config.admin.warnings();
    assert!(
        warnings.len() == 1 && warnings[0].contains("admin port is locked"),
        "{warnings:?}"
    );
    let s = AppState::build(config).await.unwrap();
    assert_eq!(
        call(&s, Method::GET, "/healthz", None).await.status,
        StatusCode::OK
    );
    for token in [None, bearer(READ_TOKEN), bearer(ADMIN_TOKEN), bearer("")] {
        for path in ["/dashboard", "/status", "/nope", "/connect/x"] {
            let a = call(&s, Method::GET, path, token.as_deref()).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path} {token:?}");
        }
    }
    assert!(state(&tokens()).await.config.admin.warnings().is_empty());
}

#[tokio::test]
async fn a_browser_logs_in_with_basic_the_token_id_as_user_name() {
    let s = state(&tokens()).await;
    let basic = |user: &str, password: &str| {
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        ))
    };
    let ops = basic("ops", READ_TOKEN);
    for (path, expected) in [
        ("/dashboard", StatusCode::OK),
        ("/connect/x", StatusCode::FORBIDDEN),
    ] {
        let a = call(&s, Method::GET, path, ops.as_deref()).await;
        assert_eq!(a.status, expected, "{path}: {}", a.body);
    }
    for (user, password) in [
        ("sre-oncall", READ_TOKEN),
        ("ops", "wrong"),
        ("", READ_TOKEN),
    ] {
        let a = call(
            &s,
            Method::GET,
            "/dashboard",
            basic(user, password).as_deref(),
        )
        .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{user}");
    }
}
