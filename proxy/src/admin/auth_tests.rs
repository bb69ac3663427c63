use super::*;
use crate::config::admin::AdminTokenConfig;
use std::cell::Cell;

thread_local! {
    /// How many digests `digests_equal` compared on this thread.
    pub(super) static COMPARISONS: Cell<usize> = const { Cell::new(0) };
}

fn token(id: &str, token: &str, role: &str) -> AdminTokenConfig {
    AdminTokenConfig {
        id: id.to_owned(),
        token_sha256: crate::stages::caller::hash_token(token),
        role: role.to_owned(),
    }
}

fn auth(tokens: Vec<AdminTokenConfig>) -> AdminAuth {
    AdminAuth::from_config(&AdminConfig {
        tokens,
        ..AdminConfig::default()
    })
    .unwrap()
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    headers
}

fn basic(user: &str, password: &str) -> HeaderMap {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
    );
    headers
}

#[test]
fn every_configured_digest_is_compared_whichever_matches() {
    let a = auth(vec![
        token("first", "token-one", "admin"),
        token("second", "token-two", "read"),
        token("third", "token-three", "read"),
    ]);
    for (presented, expected) in [
        ("token-one", Some("first")),
        ("token-three", Some("third")),
        ("token-none", None),
    ] {
        COMPARISONS.with(|c| c.set(0));
        let found = a.matching(presented).map(|t| t.id.as_str());
        assert_eq!(found, expected, "{presented}");
        assert_eq!(
            COMPARISONS.with(Cell::get),
            3,
            "{presented}: no early exit, so the time does not tell which token matched"
        );
    }
}

#[test]
fn digests_compare_by_content() {
    let one: [u8; 32] = Sha256::digest(b"one").into();
    let mut other = one;
    other[31] ^= 1;
    assert!(digests_equal(&one, &one.clone()));
    assert!(!digests_equal(&one, &other));
}

#[test]
fn bearer_and_basic_name_the_same_token() {
    let a = auth(vec![token("ops", "s3cret-token", "read")]);
    let get = Method::GET;
    for headers in [
        bearer("s3cret-token"),
        basic("ops", "s3cret-token"),
        bearer("  s3cret-token "),
    ] {
        match a.authorize(&get, "/status", &headers) {
            Ok(Access::Granted(who)) => {
                assert_eq!(&*who.id, "ops");
                assert_eq!(who.role, AdminRole::Read);
            }
            other => panic!("{other:?}"),
        }
    }
    for (headers, refusal) in [
        (basic("someone-else", "s3cret-token"), Refusal::Unknown),
        (basic("ops", "wrong"), Refusal::Unknown),
        (bearer("wrong"), Refusal::Unknown),
        (bearer(""), Refusal::Malformed),
        (HeaderMap::new(), Refusal::Missing),
    ] {
        assert_eq!(
            a.authorize(&get, "/status", &headers).unwrap_err(),
            refusal,
            "{headers:?}"
        );
    }
    let mut odd = HeaderMap::new();
    for value in ["Digest abc", "Basic !!notbase64", "Bearer", "s3cret-token"] {
        odd.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
        assert_eq!(
            a.authorize(&get, "/status", &odd).unwrap_err(),
            Refusal::Malformed,
            "{value}"
        );
    }
}

#[test]
fn roles_paths_and_methods() {
    let a = auth(vec![
        token("ops", "read-token", "read"),
        token("sre", "admin-token", "admin"),
    ]);
    let (get, post) = (Method::GET, Method::POST);
    let read = bearer("read-token");
    let admin = bearer("admin-token");
    let granted = |method: &Method, path: &str, headers: &HeaderMap| {
        matches!(a.authorize(method, path, headers), Ok(Access::Granted(_)))
    };
    for path in ["/dashboard", "/status", "/", "/nope"] {
        assert!(granted(&get, path, &read), "{path}");
        assert!(granted(&get, path, &admin), "{path}");
        assert!(granted(&Method::HEAD, path, &read), "{path}");
        assert_eq!(
            a.authorize(&post, path, &read).unwrap_err(),
            Refusal::Forbidden(AdminRole::Read),
            "{path}: anything but GET/HEAD needs admin"
        );
        assert!(granted(&post, path, &admin), "{path}");
    }
    for path in [
        "/connect/sf",
        "/connect/nope",
        "/connect/sf/other",
        "/connect",
    ] {
        assert_eq!(
            a.authorize(&get, path, &read).unwrap_err(),
            Refusal::Forbidden(AdminRole::Read),
            "{path}"
        );
        assert!(granted(&get, path, &admin), "{path}");
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert!(matches!(
            a.authorize(&get, path, &HeaderMap::new()),
            Ok(Access::Public)
        ));
    }
    // Exact paths only: a near miss is not public.
    for path in ["/healthz/", "/metrics/x", "/HEALTHZ"] {
        assert_eq!(
            a.authorize(&get, path, &HeaderMap::new()).unwrap_err(),
            Refusal::Missing,
            "{path}"
        );
    }
    assert!(matches!(
        a.authorize(&get, "/connect/sf/callback", &HeaderMap::new()),
        Ok(Access::Callback)
    ));
    assert!(!is_callback("/connect/sf/callback/x"));
    assert!(!is_callback("/connect/a/b/callback"));
}

#[test]
fn refusals_are_401_with_both_challenges_or_403() {
    for refusal in [Refusal::Missing, Refusal::Malformed, Refusal::Unknown] {
        let response = refusal.response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenges: Vec<&str> = response
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            challenges,
            [
                "Bearer realm=\"gatehouse admin\"",
                "Basic realm=\"gatehouse admin\""
            ]
        );
    }
    let response = Refusal::Forbidden(AdminRole::Read).response();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
}
