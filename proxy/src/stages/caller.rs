//! Who is calling: a bearer token in `Proxy-Authorization` (checked against the SHA-256 hashes
//! in the policy) or, on a TLS data plane, the SAN of the caller's client certificate.

use crate::error::GatewayError;
use gatehouse_guards::policy::Policy;
use http::{header, HeaderMap};
use sha2::{Digest, Sha256};

/// What the connection itself proved (client certificate SANs), if anything.
#[derive(Debug, Clone, Default)]
pub struct PeerIdentity {
    pub sans: std::sync::Arc<Vec<String>>,
}

pub fn identify(
    policy: &Policy,
    headers: &HeaderMap,
    peer: &PeerIdentity,
) -> Result<std::sync::Arc<str>, GatewayError> {
    if let Some(value) = headers.get(header::PROXY_AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                GatewayError::unauthenticated(
                    "malformed_credentials",
                    "Proxy-Authorization must be 'Bearer <token>'",
                )
            })?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        return policy
            .caller_by_token_hash(&digest)
            .cloned()
            .ok_or_else(|| {
                GatewayError::unauthenticated("unknown_caller", "the caller token is not known")
            });
    }
    if let Some(caller) = peer.sans.iter().find_map(|san| policy.caller_by_san(san)) {
        return Ok(caller.clone());
    }
    if peer.sans.is_empty() {
        Err(GatewayError::unauthenticated(
            "missing_credentials",
            "send Proxy-Authorization: Bearer <token> (or a client certificate)",
        ))
    } else {
        Err(GatewayError::unauthenticated(
            "unknown_caller",
            "the client certificate names no known caller",
        ))
    }
}

/// Hex SHA-256 of a caller token, for the policy's `token_sha256`.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_guards::policy::{CallerPolicy, PolicyDocument};
    use http::HeaderValue;

    fn policy() -> Policy {
        let doc = PolicyDocument {
            callers: vec![CallerPolicy {
                id: "svc".into(),
                token_sha256: Some(hash_token("tok")),
                mtls_san: vec!["svc.internal".into()],
                grants: vec![],
                soql: None,
            }],
        };
        Policy::compile(&doc, &Default::default()).unwrap()
    }

    #[test]
    fn token_and_san() {
        let p = policy();
        let mut h = HeaderMap::new();
        assert_eq!(
            identify(&p, &h, &PeerIdentity::default()).unwrap_err().code,
            "missing_credentials"
        );
        h.insert(
            header::PROXY_AUTHORIZATION,
            HeaderValue::from_static("Bearer tok"),
        );
        assert_eq!(&*identify(&p, &h, &PeerIdentity::default()).unwrap(), "svc");
        h.insert(
            header::PROXY_AUTHORIZATION,
            HeaderValue::from_static("Bearer nope"),
        );
        assert_eq!(
            identify(&p, &h, &PeerIdentity::default()).unwrap_err().code,
            "unknown_caller"
        );
        h.insert(
            header::PROXY_AUTHORIZATION,
            HeaderValue::from_static("Basic abc"),
        );
        assert_eq!(
            identify(&p, &h, &PeerIdentity::default()).unwrap_err().code,
            "malformed_credentials"
        );
        let peer = PeerIdentity {
            sans: std::sync::Arc::new(vec!["other".into(), "svc.internal".into()]),
        };
        assert_eq!(&*identify(&p, &HeaderMap::new(), &peer).unwrap(), "svc");
    }
}
