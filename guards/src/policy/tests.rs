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
        let pattern = PathPattern { segments: pattern, trailing_slash: false };
        let body = path.join("/");
        proptest::prop_assert_eq!(pattern.matches_in_step(&body), pattern.matches_dp(&body));
    }
}

fn grants(grants: &str) -> Policy {
    policy(&format!(
        r#"
        [[callers]]
        id = "svc"
        mtls_san = ["svc"]
        {grants}
        "#
    ))
    .expect("compiles")
}

fn allowed(p: &Policy, method: &str, path: &str) -> bool {
    p.authorize("svc", "crm", method, path, None).is_ok()
}

#[test]
fn star_is_never_an_empty_segment_and_a_trailing_slash_must_be_granted() {
    let p = grants(
        r#"
        [[callers.grants]]
        connections = ["crm"]
        methods = ["GET"]
        paths = ["/a/*", "/b/*/", "/c/**", "/d"]
        "#,
    );
    // `/a/` is the collection on many providers, not one item.
    assert!(!allowed(&p, "GET", "/a/"), "/a/* must not allow /a/");
    assert!(allowed(&p, "GET", "/a/1"));
    assert!(!allowed(&p, "GET", "/a/1/"), "the slash is not granted");
    assert!(!allowed(&p, "GET", "/a"));
    // A pattern that ends in '/' asks for the slash, and only then matches it.
    assert!(allowed(&p, "GET", "/b/1/"));
    assert!(!allowed(&p, "GET", "/b/1"));
    assert!(!allowed(&p, "GET", "/b//"));
    // A final `**` is the whole subtree, slash or not.
    for path in ["/c", "/c/", "/c/1", "/c/1/", "/c/1/2/"] {
        assert!(allowed(&p, "GET", path), "{path}");
    }
    assert!(allowed(&p, "GET", "/d"));
    assert!(!allowed(&p, "GET", "/d/"));
    // Empty segments inside a path (which the router refuses) match nothing either.
    assert!(!allowed(&p, "GET", "/c//1"));
    assert!(!allowed(&p, "GET", "/a//"));
}

#[test]
fn trailing_slash_patterns_compile_and_root_stays_root() {
    let p = grants(
        r#"
        [[callers.grants]]
        connections = ["crm"]
        methods = ["GET"]
        paths = ["/"]
        "#,
    );
    assert!(allowed(&p, "GET", "/"));
    assert!(!allowed(&p, "GET", "/x"));
    let errors = policy(
        r#"
        [[callers]]
        id = "svc"
        mtls_san = ["svc"]
        [[callers.grants]]
        connections = ["crm"]
        methods = ["GET"]
        paths = ["//", "/a//", "/a/..;x/b", "/a/;x"]
        "#,
    )
    .expect_err("broken patterns");
    assert_eq!(errors.len(), 4, "{errors:?}");
}

#[test]
fn dot_segments_with_path_parameters_match_nothing() {
    let p = grants(
        r#"
        [[callers.grants]]
        connections = ["crm"]
        methods = ["GET"]
        paths = ["/pub/**", "/one/*/x"]
        "#,
    );
    // Servlet containers strip `;params` and then resolve the dot segment, outside `/pub`.
    for path in [
        "/pub/..;/admin",
        "/pub/..;jsessionid=1/admin",
        "/pub/.;/x",
        "/pub/;x/y",
        "/pub/a/..",
        "/one/..;/x",
        "/one/;/x",
    ] {
        assert!(!allowed(&p, "GET", path), "{path}");
    }
    // Parameters on an ordinary segment are just part of it.
    assert!(allowed(&p, "GET", "/pub/a;b=1/c"));
    assert!(allowed(&p, "GET", "/one/v;1/x"));
    assert!(allowed(&p, "GET", "/pub/...x"));
}

#[test]
fn dot_segment_rule() {
    for dot in [".", "..", "..;", ".;", "..;a=b", ";", ";x", "..;;"] {
        assert!(is_dot_segment(dot), "{dot}");
    }
    for not in ["", "...", "a..", "a;..", "a;", ".x", "..x;"] {
        assert!(!is_dot_segment(not), "{not}");
    }
}

#[test]
fn star_methods_cover_the_shared_set_and_never_trace_or_connect() {
    let p = grants(
        r#"
        [[callers.grants]]
        connections = ["crm"]
        methods = ["*"]
        paths = ["/**"]
        [[callers.grants]]
        connections = ["crm"]
        methods = ["PROPFIND", "VERSION-CONTROL"]
        paths = ["/dav/**"]
        "#,
    );
    for method in KNOWN_METHODS {
        assert!(allowed(&p, method, "/x"), "{method}");
    }
    for method in ["TRACE", "TRACK", "CONNECT"] {
        assert_eq!(
            p.authorize("svc", "crm", method, "/x", None),
            Err(Denial::MethodNeverForwarded {
                method: method.to_owned()
            })
        );
    }
    // Outside the shared set, only a grant that names the method allows it (here the grant
    // that does is for other paths, the closest miss).
    assert!(matches!(
        p.authorize("svc", "crm", "PROPFIND", "/x", None),
        Err(Denial::Path { .. })
    ));
    let star_only = grants(
        r#"
        [[callers.grants]]
        connections = ["crm"]
        methods = ["*"]
        paths = ["/**"]
        "#,
    );
    assert!(matches!(
        star_only.authorize("svc", "crm", "PROPFIND", "/x", None),
        Err(Denial::Method { .. })
    ));
    assert!(allowed(&p, "PROPFIND", "/dav/a"));
    assert!(allowed(&p, "VERSION-CONTROL", "/dav/a"));
    assert!(!allowed(&p, "MKCOL", "/dav/a"));
}

#[test]
fn never_forwarded_methods_cannot_be_granted() {
    let errors = policy(
        r#"
        [[callers]]
        id = "svc"
        mtls_san = ["svc"]
        [[callers.grants]]
        connections = ["crm"]
        methods = ["GET", "TRACE", "CONNECT", "get", "M-SEARCH", "X_1"]
        paths = ["/**"]
        "#,
    )
    .expect_err("TRACE, CONNECT and get are refused");
    let locations: Vec<&str> = errors.iter().map(|e| e.location.as_str()).collect();
    assert_eq!(
        locations,
        vec![
            "callers[0].grants[0].methods[1]",
            "callers[0].grants[0].methods[2]",
            "callers[0].grants[0].methods[3]",
        ]
    );
    assert!(errors[0].message.contains("never forwarded"), "{errors:?}");
}

#[test]
fn method_syntax() {
    for good in [
        "GET",
        "M-SEARCH",
        "BASELINE-CONTROL",
        "X1",
        "A!#$%&'*+-.^_`|~",
    ] {
        assert!(is_valid_method(good), "{good}");
    }
    let long = "A".repeat(MAX_METHOD_LEN + 1);
    for bad in [
        "",
        "get",
        "Get",
        "GE T",
        "GET\r",
        "G\u{e9}T",
        "G/T",
        long.as_str(),
    ] {
        assert!(!is_valid_method(bad), "{bad:?}");
    }
    assert!(is_valid_method(&"A".repeat(MAX_METHOD_LEN)));
}

#[test]
fn an_override_method_needs_a_grant_as_well() {
    let p = grants(
        r#"
        [[callers.grants]]
        connections = ["crm"]
        methods = ["GET", "POST"]
        paths = ["/sobjects/**"]
        max_body_bytes = 500
        [[callers.grants]]
        connections = ["crm"]
        methods = ["PATCH"]
        paths = ["/sobjects/**"]
        max_body_bytes = 100
        "#,
    );
    let decide = |method: &str, over: Option<&str>| {
        p.authorize_with_override("svc", "crm", method, over, "/sobjects/Account/1", None)
    };
    // A GET/POST grant does not let `POST ?_HttpMethod=DELETE` delete.
    assert!(matches!(
        decide("POST", Some("DELETE")),
        Err(Denial::Method { method, .. }) if method == "DELETE"
    ));
    assert!(matches!(
        decide("GET", Some("TRACE")),
        Err(Denial::MethodNeverForwarded { .. })
    ));
    // Both granted: allowed, with the tighter body limit of the two.
    assert_eq!(
        decide("POST", Some("PATCH")),
        Ok(Allowed {
            max_body_bytes: Some(100)
        })
    );
    assert_eq!(
        decide("POST", None),
        Ok(Allowed {
            max_body_bytes: Some(500)
        })
    );
    // The wire method must be granted too: the provider may ignore the parameter.
    assert!(matches!(
        decide("PUT", Some("PATCH")),
        Err(Denial::Method { method, .. }) if method == "PUT"
    ));
}
