//! The scope policy: who may call which connection, with which methods, on which paths, with
//! how large a body. Deny by default: a request is allowed only when one of the caller's
//! grants matches all of it.
//!
//! The policy is data the security team writes (in the main config or in a file of its own);
//! [`Policy::compile`] checks it once, so evaluation on the hot path is lookups and segment
//! comparisons only.

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
    /// HTTP methods (upper case), or `["*"]` for any.
    pub methods: Vec<String>,
    /// Path patterns relative to the connection's base URL, segment by segment: a literal
    /// segment matches itself, `*` matches exactly one segment, `**` any number (including none).
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
struct PathPattern(Vec<Segment>);

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
        let mut segments = Vec::new();
        for seg in rest.split('/') {
            segments.push(match seg {
                "**" => Segment::Any,
                "*" => Segment::One,
                "" if rest.is_empty() => continue,
                "" => return Err(format!("path pattern {pattern:?} has an empty segment")),
                "." | ".." => return Err(format!("path pattern {pattern:?} has a dot segment")),
                s if s.contains('*') => {
                    return Err(format!(
                        "path pattern {pattern:?}: '*' must be a whole segment"
                    ))
                }
                s => Segment::Literal(s.to_owned()),
            });
        }
        Ok(Self(segments))
    }

    /// `path` is already normalised by the router: starts with '/', no dot segments, decoded.
    /// Dynamic programming over (pattern, path) segments: linear in their product however
    /// many `**` a pattern has, so no path can make matching blow up.
    fn matches(&self, path: &str) -> bool {
        if self.0.iter().any(|s| matches!(s, Segment::Any)) {
            self.matches_dp(path)
        } else {
            self.matches_in_step(path)
        }
    }

    /// Without `**`: one pattern segment per path segment, compared in step, allocating nothing.
    fn matches_in_step(&self, path: &str) -> bool {
        let trimmed = path.strip_prefix('/').unwrap_or(path);
        let mut parts = trimmed.split('/').filter(|_| !trimmed.is_empty());
        let fits = self.0.iter().all(|segment| match (segment, parts.next()) {
            (_, None) => false,
            (Segment::Literal(lit), Some(part)) => part == lit.as_str(),
            (_, Some(_)) => true,
        });
        fits && parts.next().is_none()
    }

    fn matches_dp(&self, path: &str) -> bool {
        let trimmed = path.strip_prefix('/').unwrap_or(path);
        let segs: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        };
        // reach[j]: the pattern so far can match the first j path segments.
        let mut reach = vec![false; segs.len() + 1];
        reach[0] = true;
        for segment in &self.0 {
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
                    if m != "*" && (m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase())) {
                        err(
                            &mut errors,
                            &format!("{g}.methods[{i}]"),
                            format!("method {m:?} must be upper case (GET, POST, ...) or \"*\""),
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
            if !(grant.any_method || grant.methods.contains(method)) {
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
