use super::*;
use proptest::strategy::Strategy;

fn conns() -> HashSet<String> {
    ["crm", "ats"].iter().map(|s| s.to_string()).collect()
}

const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"; // sha256("test")

fn policy(toml_text: &str) -> Result<Policy, Vec<PolicyError>> {
    let doc: PolicyDocument = toml::from_str(toml_text).expect("test policy parses");
    Policy::compile(&doc, &conns())
}

fn sample() -> Policy {
    policy(&format!(
        r#"
        [[callers]]
        id = "billing"
        token_sha256 = "{HASH}"
        [[callers.grants]]
        connections = ["crm"]
        methods = ["GET"]
        paths = ["/services/data/*/query", "/services/data/*/sobjects/Account/**"]
        max_body_bytes = 100
        [[callers.grants]]
        connections = ["crm"]
        methods = ["POST"]
        paths = ["/services/data/*/composite"]
        max_body_bytes = 1000
        "#
    ))
    .expect("sample policy compiles")
}

#[test]
fn allows_only_what_a_grant_names() {
    let p = sample();
    assert!(p
        .authorize("billing", "crm", "GET", "/services/data/v60.0/query", None)
        .is_ok());
    assert!(p
        .authorize(
            "billing",
            "crm",
            "GET",
            "/services/data/v60.0/sobjects/Account",
            None
        )
        .is_ok());
    assert!(p
        .authorize(
            "billing",
            "crm",
            "GET",
            "/services/data/v60.0/sobjects/Account/001/x",
            None
        )
        .is_ok());
    assert!(matches!(
        p.authorize(
            "billing",
            "crm",
            "GET",
            "/services/data/v60.0/sobjects/Contact",
            None
        ),
        Err(Denial::Path { .. })
    ));
    assert!(matches!(
        p.authorize(
            "billing",
            "crm",
            "DELETE",
            "/services/data/v60.0/query",
            None
        ),
        Err(Denial::Method { .. })
    ));
    assert!(matches!(
        p.authorize("billing", "ats", "GET", "/x", None),
        Err(Denial::Connection { .. })
    ));
    assert!(matches!(
        p.authorize("nobody", "crm", "GET", "/services/data/v60.0/query", None),
        Err(Denial::Connection { .. })
    ));
}

#[test]
fn one_star_is_exactly_one_segment() {
    let p = sample();
    assert!(p
        .authorize("billing", "crm", "GET", "/services/data/query", None)
        .is_err());
    assert!(p
        .authorize("billing", "crm", "GET", "/services/data/a/b/query", None)
        .is_err());
    assert!(p
        .authorize(
            "billing",
            "crm",
            "GET",
            "/services/data/v60.0/query/extra",
            None
        )
        .is_err());
}

#[test]
fn body_limit_is_per_grant() {
    let p = sample();
    assert!(p
        .authorize(
            "billing",
            "crm",
            "POST",
            "/services/data/v1/composite",
            Some(1000)
        )
        .is_ok());
    assert!(matches!(
        p.authorize(
            "billing",
            "crm",
            "POST",
            "/services/data/v1/composite",
            Some(1001)
        ),
        Err(Denial::BodyTooLarge { limit: 1000, .. })
    ));
    assert_eq!(
        p.authorize("billing", "crm", "GET", "/services/data/v1/query", None),
        Ok(Allowed {
            max_body_bytes: Some(100)
        })
    );
}

#[test]
fn identity_lookups() {
    let p = sample();
    let hash = decode_sha256(HASH).expect("valid hex");
    assert_eq!(p.caller_by_token_hash(&hash).map(|c| &**c), Some("billing"));
    assert_eq!(p.caller_by_token_hash(&[0u8; 32]), None);
}

#[test]
fn reports_every_error_with_its_location() {
    let errors = policy(
        r#"
        [[callers]]
        id = "a"
        token_sha256 = "nothex"
        [[callers.grants]]
        connections = ["crm", "nope"]
        methods = ["get"]
        paths = ["no-slash", "/a/b*c", "/ok/**"]
        [[callers]]
        id = "a"
        mtls_san = ["svc.local"]
        "#,
    )
    .expect_err("policy is broken");
    let locations: Vec<&str> = errors.iter().map(|e| e.location.as_str()).collect();
    assert_eq!(
        locations,
        vec![
            "callers[0].token_sha256",
            "callers[0].grants[0].connections[1]",
            "callers[0].grants[0].methods[0]",
            "callers[0].grants[0].paths[0]",
            "callers[0].grants[0].paths[1]",
            "callers[1].id",
        ]
    );
}

#[test]
fn root_and_double_star_patterns() {
    let p = policy(
        r#"
        [[callers]]
        id = "all"
        mtls_san = ["svc"]
        [[callers.grants]]
        connections = ["ats"]
        methods = ["*"]
        paths = ["/**"]
        "#,
    )
    .expect("compiles");
    assert!(p.authorize("all", "ats", "PATCH", "/", None).is_ok());
    assert!(p
        .authorize("all", "ats", "GET", "/v1/candidates/1", None)
        .is_ok());
    assert_eq!(p.caller_by_san("svc").map(|c| &**c), Some("all"));
}

#[test]
fn many_double_stars_stay_linear() {
    let p = policy(
        r#"
        [[callers]]
        id = "all"
        mtls_san = ["svc"]
        [[callers.grants]]
        connections = ["ats"]
        methods = ["GET"]
        paths = ["/**/a/**/b/**/c/**/d/**/never"]
        "#,
    )
    .expect("compiles");
    let long = format!("/{}", vec!["a/b/c/d"; 2000].join("/"));
    // Backtracking would take ages here; the table walk answers at once.
    assert!(p.authorize("all", "ats", "GET", &long, None).is_err());
    assert!(p
        .authorize("all", "ats", "GET", &format!("{long}/never"), None)
        .is_ok());
    assert!(p
        .authorize("all", "ats", "GET", "/a/b/c/d/never", None)
        .is_ok());
    assert!(p
        .authorize("all", "ats", "GET", "/a/b/c/never", None)
        .is_err());
}

proptest::proptest! {
    /// Patterns without `**` take the in-step path; it must agree with the general matcher.
    #[test]
    fn in_step_matching_agrees_with_the_general_matcher(
        pattern in proptest::collection::vec(proptest::prop_oneof![
            proptest::strategy::Just(Segment::One),
            "[ab]{1,2}".prop_map(Segment::Literal),
        ], 0..5),
        path in proptest::collection::vec("[ab]{0,2}", 0..6),
    ) {
        let pattern = PathPattern(pattern);
        let path = format!("/{}", path.join("/"));
        proptest::prop_assert_eq!(pattern.matches_in_step(&path), pattern.matches_dp(&path));
    }
}
