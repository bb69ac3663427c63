//! The scope policy: who may call which connection, with which methods, on which paths, with
//! how large a body. Deny by default: a request is allowed only when one of the caller's
//! grants matches all of it.
//!
//! The policy is data the security team writes (in the main config or in a file of its own);
//! [`Policy::compile`] checks it once, so evaluation on the hot path is lookups and segment
//! comparisons only.
//!
//! # Paths
//!
//! Patterns match the percent-decoded provider path segment by segment: a literal segment
//! matches itself, `*` exactly one non-empty segment, `**` any number of segments (including
//! none).
//!
//! A trailing slash is part of the path: `/a/b/` matches only a pattern that also ends in `/`
//! (`/a/*/`), or one whose last segment is `**` (`/a/**` covers everything under `/a`, whatever
//! the slash means there). Providers disagree on what the slash means: the same resource
//! (Rails), a different route that must have it (Django REST framework), the collection (`/a/`
//! beside `/a/{id}`), a directory index. Gatehouse forwards the path as the caller wrote it, so
//! the policy does not guess the provider's reading; a grant allows the shape it names and no
//! other. So `/a/*` allows `/a/1` but neither `/a/` nor `/a/1/`.
//!
//! A path segment that a server would resolve as `.` or `..` never matches, including one with
//! servlet-style parameters (`..;x`, which Tomcat and others strip before resolving), see
//! [`is_dot_segment`]. The router refuses such paths before policy; the matcher does not rely
//! on it.
//!
//! # Methods
//!
//! `"*"` stands for the methods whose meaning every provider shares ([`KNOWN_METHODS`]). Any
//! other method is allowed only by a grant that names it. [`NEVER_FORWARDED`] methods (TRACE and
//! its IIS twin TRACK echo the request, injected credential included, back to the caller;
//! CONNECT opens a tunnel no policy sees into) are refused whatever the grants say, and a grant
//! naming one does not compile.

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Deserialize;
use std::collections::HashSet;
use std::sync::Arc;

/// One caller as written in the policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerPolicy {
    /// Stable caller id, used in metrics, logs and audit records.
    pub id: String,
    /// Hex SHA-256 of the bearer token the caller sends in `Proxy-Authorization: Bearer ...`.
    /// The token itself is never stored in config.
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// Subject alternative names (DNS or URI) of the caller's mTLS client certificate.
    #[serde(default)]
    pub mtls_san: Vec<String>,
    #[serde(default)]
    pub grants: Vec<GrantPolicy>,
    /// SOQL allow-lists and rule overrides for this caller (`[callers.soql]`).
    #[serde(default)]
    pub soql: Option<crate::soql_guard::CallerSoqlPolicy>,
}

/// What one grant allows. Every list must match for the grant to apply.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantPolicy {
    /// Connection ids this grant covers.
    pub connections: Vec<String>,
    /// HTTP methods (upper case), or `["*"]` for GET, HEAD, POST, PUT, PATCH, DELETE and
    /// OPTIONS. Other methods must be named; TRACE, TRACK and CONNECT cannot be granted.
    pub methods: Vec<String>,
    /// Path patterns relative to the connection's base URL, segment by segment: a literal
    /// segment matches itself, `*` exactly one non-empty segment, `**` any number (including
    /// none). A path ending in `/` matches only a pattern ending in `/` or in `**`.
    pub paths: Vec<String>,
    /// Largest request body this grant allows, in bytes. Defaults to the server limit.
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
}

/// The whole policy document (`[[callers]]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    #[serde(default)]
    pub callers: Vec<CallerPolicy>,
}

/// A problem in a policy, with where it is (`callers[2].grants[0].paths[1]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct PolicyError {
    pub location: String,
    pub message: String,
}

/// Why a request was denied. Messages name config ids only, never request secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("caller {caller} has no grant for connection {connection}")]
    Connection { caller: String, connection: String },
    #[error("caller {caller} may not use method {method} on connection {connection}")]
    Method {
        caller: String,
        connection: String,
        method: String,
    },
    #[error("method {method} is never forwarded (it could echo the injected credential or open a tunnel)")]
    MethodNeverForwarded { method: String },
    #[error("caller {caller} may not call path {path} on connection {connection}")]
    Path {
        caller: String,
        connection: String,
        path: String,
    },
    #[error("request body of {size} bytes exceeds the {limit} bytes caller {caller} may send")]
    BodyTooLarge {
        caller: String,
        size: u64,
        limit: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    One,
    Any,
}

#[derive(Debug, Clone)]
struct PathPattern {
    segments: Vec<Segment>,
    /// The pattern ends in `/`: it matches only paths that do too.
    trailing_slash: bool,
}

/// Methods that `"*"` stands for: their meaning is the same on every provider.
pub const KNOWN_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Methods never forwarded, whatever a grant says. TRACE (and TRACK, IIS's name for it) makes a
/// provider echo the request back, the credential Gatehouse injected included; CONNECT asks
/// for a tunnel whose traffic no policy would see.
pub const NEVER_FORWARDED: &[&str] = &["TRACE", "TRACK", "CONNECT"];

/// Longest method accepted. The longest registered method (`UPDATEREDIRECTREF`) has 17
/// characters; anything much longer is an attack on whatever records it.
pub const MAX_METHOD_LEN: usize = 32;

/// Whether `method` is one Gatehouse will look at: 1 to [`MAX_METHOD_LEN`] RFC 9110 token
/// characters, with no lower-case letter. Methods are case-sensitive and every registered one
/// is upper case, so `get` is not `GET`, and is refused rather than guessed at.
pub fn is_valid_method(method: &str) -> bool {
    !method.is_empty()
        && method.len() <= MAX_METHOD_LEN
        && method.bytes().all(|b| {
            b.is_ascii_uppercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

/// Whether a decoded path segment is one that some server resolves as `.` or `..`: the part
/// before the first `;` (servlet path parameters, which Tomcat, Jetty and others strip before
/// resolving dot segments) is `.` or `..`, or is empty while parameters follow (`;x` becomes an
/// empty segment there). So `..;`, `..;jsessionid=1` and `.;x` all count.
pub fn is_dot_segment(segment: &str) -> bool {
    // Every dot segment starts with `.` or `;`: the common segment is settled by one byte,
    // without searching it for `;`.
    if !matches!(segment.as_bytes().first(), Some(b'.' | b';')) {
        return false;
    }
    let (name, has_params) = match segment.split_once(';') {
        Some((name, _)) => (name, true),
        None => (segment, false),
    };
    name == "." || name == ".." || (has_params && name.is_empty())
}

/// A path split for matching: its segments without the leading `/` and any trailing `/`, and
/// whether there was a trailing one. `/` is no segments and no trailing slash.
fn split_path(path: &str) -> (&str, bool) {
    let body = path.strip_prefix('/').unwrap_or(path);
    match body.strip_suffix('/') {
        Some(body) => (body, true),
        None => (body, false),
    }
}

/// The segments of a split path; `None` if one is empty or a dot segment, which no pattern
/// matches (a literal segment is never empty, and `*` is exactly one non-empty segment).
fn segments(body: &str) -> impl Iterator<Item = Option<&str>> {
    body.split('/')
        .filter(move |_| !body.is_empty())
        .map(|s| (!s.is_empty() && !is_dot_segment(s)).then_some(s))
}

impl PathPattern {
    fn parse(pattern: &str) -> Result<Self, String> {
        let rest = pattern
            .strip_prefix('/')
            .ok_or_else(|| format!("path pattern {pattern:?} must start with '/'"))?;
        if pattern.contains('?') || pattern.contains('#') {
            return Err(format!(
                "path pattern {pattern:?} must not contain a query or fragment"
            ));
        }
        let (rest, trailing_slash) = match rest.strip_suffix('/') {
            Some(rest) if !rest.is_empty() => (rest, true),
            _ => (rest, false),
        };
        let mut segments = Vec::new();
        for seg in rest.split('/') {
            segments.push(match seg {
                "**" => Segment::Any,
                "*" => Segment::One,
                "" if rest.is_empty() => continue,
                "" => return Err(format!("path pattern {pattern:?} has an empty segment")),
                s if is_dot_segment(s) => {
                    return Err(format!("path pattern {pattern:?} has a dot segment"))
                }
                s if s.contains('*') => {
                    return Err(format!(
                        "path pattern {pattern:?}: '*' must be a whole segment"
                    ))
                }
                s => Segment::Literal(s.to_owned()),
            });
        }
        Ok(Self {
            segments,
            trailing_slash,
        })
    }

    /// `path` is the decoded provider path, normalised by the router (starts with '/', no dot
    /// segments, no empty segment but a trailing one); a path that is not still matches
    /// nothing it should not. Dynamic programming over (pattern, path) segments: linear in
    /// their product however many `**` a pattern has, so no path can make matching blow up.
    fn matches(&self, path: &str) -> bool {
        let (body, trailing) = split_path(path);
        // A trailing slash must be asked for, unless a final `**` covers the whole subtree.
        let ends_in_any = matches!(self.segments.last(), Some(Segment::Any));
        let slash_fits = trailing == self.trailing_slash || (trailing && ends_in_any);
        if !slash_fits {
            return false;
        }
        if self.segments.iter().any(|s| matches!(s, Segment::Any)) {
            self.matches_dp(body)
        } else {
            self.matches_in_step(body)
        }
    }

    /// Without `**`: one pattern segment per path segment, compared in step, allocating nothing.
    fn matches_in_step(&self, body: &str) -> bool {
        let mut parts = segments(body);
        let fits = self
            .segments
            .iter()
            .all(|segment| match (segment, parts.next()) {
                (_, None | Some(None)) => false,
                (Segment::Literal(lit), Some(Some(part))) => part == lit.as_str(),
                (_, Some(Some(_))) => true,
            });
        fits && parts.next().is_none()
    }

    fn matches_dp(&self, body: &str) -> bool {
        let Some(segs) = segments(body).collect::<Option<Vec<&str>>>() else {
            return false;
        };
        // reach[j]: the pattern so far can match the first j path segments.
        let mut reach = vec![false; segs.len() + 1];
        reach[0] = true;
        for segment in &self.segments {
            match segment {
                Segment::Any => {
                    for j in 1..reach.len() {
                        reach[j] = reach[j] || reach[j - 1];
                    }
                }
                Segment::One | Segment::Literal(_) => {
                    for j in (1..reach.len()).rev() {
                        let fits = match segment {
                            Segment::Literal(lit) => segs[j - 1] == lit.as_str(),
                            _ => true,
                        };
                        reach[j] = reach[j - 1] && fits;
                    }
                    reach[0] = false;
                }
            }
        }
        reach[segs.len()]
    }
}

#[derive(Debug, Clone)]
struct Grant {
    connections: FxHashSet<String>,
    any_method: bool,
    methods: FxHashSet<String>,
    paths: Vec<PathPattern>,
    max_body_bytes: Option<u64>,
}

#[derive(Debug, Clone)]
struct Caller {
    grants: Vec<Grant>,
    soql: Option<crate::soql_guard::CallerSoqlPolicy>,
}

/// A checked, ready-to-evaluate policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    callers: FxHashMap<String, Caller>,
    /// Caller ids are shared (`Arc<str>`) so a request can carry its caller without allocating.
    by_token_hash: FxHashMap<[u8; 32], Arc<str>>,
    by_san: FxHashMap<String, Arc<str>>,
}

/// The grant that allowed a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    pub max_body_bytes: Option<u64>,
}

impl Policy {
    /// Checks the document and returns every problem found, not only the first.
    /// `known_connections` are the connection ids of the main config.
    pub fn compile(
        doc: &PolicyDocument,
        known_connections: &HashSet<String>,
    ) -> Result<Self, Vec<PolicyError>> {
        let mut errors = Vec::new();
        let mut policy = Policy::default();
        for (ci, caller) in doc.callers.iter().enumerate() {
            let at = |field: &str| format!("callers[{ci}]{field}");
            let err = |errors: &mut Vec<PolicyError>, field: &str, message: String| {
                errors.push(PolicyError {
                    location: at(field),
                    message,
                })
            };
            if caller.id.is_empty()
                || !caller
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                err(
                    &mut errors,
                    ".id",
                    format!("caller id {:?} must be non-empty [A-Za-z0-9-_.]", caller.id),
                );
            }
            if policy.callers.contains_key(&caller.id) {
                err(
                    &mut errors,
                    ".id",
                    format!("duplicate caller id {:?}", caller.id),
                );
            }
            if caller.token_sha256.is_none() && caller.mtls_san.is_empty() {
                err(
                    &mut errors,
                    "",
                    format!(
                        "caller {:?} has no way to prove who it is (token_sha256 or mtls_san)",
                        caller.id
                    ),
                );
            }
            if let Some(hash) = &caller.token_sha256 {
                match decode_sha256(hash) {
                    Some(bytes) => {
                        if let Some(other) = policy
                            .by_token_hash
                            .insert(bytes, Arc::from(caller.id.as_str()))
                        {
                            err(
                                &mut errors,
                                ".token_sha256",
                                format!("same token hash as caller {other:?}"),
                            );
                        }
                    }
                    None => err(
                        &mut errors,
                        ".token_sha256",
                        "must be 64 hex characters (SHA-256 of the token)".into(),
                    ),
                }
            }
            for (si, san) in caller.mtls_san.iter().enumerate() {
                if let Some(other) = policy
                    .by_san
                    .insert(san.clone(), Arc::from(caller.id.as_str()))
                {
                    err(
                        &mut errors,
                        &format!(".mtls_san[{si}]"),
                        format!("SAN {san:?} already identifies caller {other:?}"),
                    );
                }
            }
            let mut grants = Vec::new();
            for (gi, grant) in caller.grants.iter().enumerate() {
                let g = format!(".grants[{gi}]");
                for (i, conn) in grant.connections.iter().enumerate() {
                    if !known_connections.contains(conn) {
                        err(
                            &mut errors,
                            &format!("{g}.connections[{i}]"),
                            format!("unknown connection {conn:?}"),
                        );
                    }
                }
                if grant.connections.is_empty() {
                    err(
                        &mut errors,
                        &format!("{g}.connections"),
                        "must name at least one connection".into(),
                    );
                }
                let any_method = grant.methods.iter().any(|m| m == "*");
                for (i, m) in grant.methods.iter().enumerate() {
                    if m == "*" {
                        continue;
                    }
                    if !is_valid_method(m) {
                        err(
                            &mut errors,
                            &format!("{g}.methods[{i}]"),
                            format!("method {m:?} must be upper case (GET, POST, ...) or \"*\""),
                        );
                    } else if NEVER_FORWARDED.contains(&m.as_str()) {
                        err(
                            &mut errors,
                            &format!("{g}.methods[{i}]"),
                            format!("method {m} is never forwarded, whatever the grant"),
                        );
                    }
                }
                if grant.methods.is_empty() {
                    err(
                        &mut errors,
                        &format!("{g}.methods"),
                        "must name at least one method (or \"*\")".into(),
                    );
                }
                let mut paths = Vec::new();
                for (i, p) in grant.paths.iter().enumerate() {
                    match PathPattern::parse(p) {
                        Ok(pattern) => paths.push(pattern),
                        Err(message) => err(&mut errors, &format!("{g}.paths[{i}]"), message),
                    }
                }
                if grant.paths.is_empty() {
                    err(
                        &mut errors,
                        &format!("{g}.paths"),
                        "must name at least one path pattern (\"/**\" for all)".into(),
                    );
                }
                grants.push(Grant {
                    connections: grant.connections.iter().cloned().collect(),
                    any_method,
                    methods: grant.methods.iter().cloned().collect(),
                    paths,
                    max_body_bytes: grant.max_body_bytes,
                });
            }
            if let Some(soql) = &caller.soql {
                if let Err(e) = soql.validate() {
                    err(&mut errors, ".soql", e.to_string());
                }
            }
            policy.callers.insert(
                caller.id.clone(),
                Caller {
                    grants,
                    soql: caller.soql.clone(),
                },
            );
        }
        if errors.is_empty() {
            Ok(policy)
        } else {
            Err(errors)
        }
    }

    /// The caller whose token hashes to `sha256`.
    pub fn caller_by_token_hash(&self, sha256: &[u8; 32]) -> Option<&Arc<str>> {
        self.by_token_hash.get(sha256)
    }

    /// The caller whose client certificate carries this SAN.
    pub fn caller_by_san(&self, san: &str) -> Option<&Arc<str>> {
        self.by_san.get(san)
    }

    /// The caller's SOQL allow-lists and rule overrides, if it has any.
    pub fn caller_soql(&self, caller: &str) -> Option<&crate::soql_guard::CallerSoqlPolicy> {
        self.callers.get(caller).and_then(|c| c.soql.as_ref())
    }

    pub fn caller_count(&self) -> usize {
        self.callers.len()
    }

    /// As [`Policy::authorize`], for a request the provider may run as `override_method` (a
    /// method-override query parameter it honours) instead of `method`. Both must be granted:
    /// whether the provider applies the override to this request (Salesforce: on POST only) is
    /// not something the policy can know, so either method may be the one that runs. The body
    /// limit is the smaller of the two.
    pub fn authorize_with_override(
        &self,
        caller: &str,
        connection: &str,
        method: &str,
        override_method: Option<&str>,
        path: &str,
        body_len: Option<u64>,
    ) -> Result<Allowed, Denial> {
        let allowed = self.authorize(caller, connection, method, path, body_len)?;
        let Some(other) = override_method.filter(|m| *m != method) else {
            return Ok(allowed);
        };
        let also = self.authorize(caller, connection, other, path, body_len)?;
        let max_body_bytes = match (allowed.max_body_bytes, also.max_body_bytes) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(Allowed { max_body_bytes })
    }

    /// Decides one request. `path` is the normalised provider path (no query string).
    /// `body_len` is the declared body size when known. The most specific denial is reported:
    /// a path denial beats a method denial beats a connection denial.
    pub fn authorize(
        &self,
        caller: &str,
        connection: &str,
        method: &str,
        path: &str,
        body_len: Option<u64>,
    ) -> Result<Allowed, Denial> {
        let deny_connection = || Denial::Connection {
            caller: caller.to_owned(),
            connection: connection.to_owned(),
        };
        let grants = self.callers.get(caller).ok_or_else(deny_connection)?;
        if NEVER_FORWARDED.contains(&method) {
            return Err(Denial::MethodNeverForwarded {
                method: method.to_owned(),
            });
        }
        // `"*"` covers the shared methods only; anything else must be named.
        let known_method = KNOWN_METHODS.contains(&method);
        // What the closest miss was, built into a message only when nothing matches.
        #[derive(PartialEq, PartialOrd)]
        enum Miss {
            Connection,
            Method,
            Path,
        }
        let mut worst = Miss::Connection;
        let mut best_limit: Option<Option<u64>> = None;
        for grant in grants
            .grants
            .iter()
            .filter(|g| g.connections.contains(connection))
        {
            if !((grant.any_method && known_method) || grant.methods.contains(method)) {
                if worst < Miss::Method {
                    worst = Miss::Method;
                }
                continue;
            }
            if !grant.paths.iter().any(|p| p.matches(path)) {
                worst = Miss::Path;
                continue;
            }
            // Several grants may match: the most generous body limit wins (None = server limit).
            best_limit = Some(match (best_limit, grant.max_body_bytes) {
                (None, limit) => limit,
                (Some(None), _) | (Some(_), None) => None,
                (Some(Some(a)), Some(b)) => Some(a.max(b)),
            });
        }
        let Some(max_body_bytes) = best_limit else {
            return Err(match worst {
                Miss::Connection => deny_connection(),
                Miss::Method => Denial::Method {
                    caller: caller.to_owned(),
                    connection: connection.to_owned(),
                    method: method.to_owned(),
                },
                Miss::Path => Denial::Path {
                    caller: caller.to_owned(),
                    connection: connection.to_owned(),
                    path: path.to_owned(),
                },
            });
        };
        if let (Some(limit), Some(size)) = (max_body_bytes, body_len) {
            if size > limit {
                return Err(Denial::BodyTooLarge {
                    caller: caller.to_owned(),
                    size,
                    limit,
                });
            }
        }
        Ok(Allowed { max_body_bytes })
    }
}

fn decode_sha256(hex_str: &str) -> Option<[u8; 32]> {
    let bytes = hex_str.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
