//! The policy stage: may this caller do this? Deny by default: the scope policy (in
//! `gatehouse_guards::policy`, written by security) must have a grant that matches the
//! connection, the method, the path and the body size. This module asks it and turns a denial
//! into the caller's error.

use crate::config::ServerConfig;
use crate::error::{Category, GatewayError};
use crate::stages::route::{self, Target};
use crate::state::ConnectionRuntime;
use gatehouse_guards::policy::{Denial, Policy};

/// What the policy allows this request.
pub(crate) struct Allowed {
    /// The largest body the caller may send: the grant's limit within the server's.
    pub body_limit: u64,
}

/// Asks the policy about this request. Where the connection's provider honours a
/// method-override query parameter (the adapter says which), the method it names must be granted
/// as well as the request's own.
pub(crate) fn authorize(
    policy: &Policy,
    caller: &str,
    connection: &ConnectionRuntime,
    method: &http::Method,
    target: &Target<'_>,
    content_length: Option<u64>,
    server: &ServerConfig,
) -> Result<Allowed, GatewayError> {
    let override_param = connection.provider.method_override_param();
    let method_override = route::method_override(target.query, override_param)?;
    let grant = policy.authorize_with_override(
        caller,
        &connection.id,
        method.as_str(),
        method_override.as_deref(),
        &target.decoded_path,
        content_length,
    )?;
    Ok(Allowed {
        body_limit: grant
            .max_body_bytes
            .map_or(server.max_body_bytes, |l| l.min(server.max_body_bytes)),
    })
}

impl From<Denial> for GatewayError {
    fn from(d: Denial) -> Self {
        let code = match d {
            Denial::BodyTooLarge { .. } => {
                return GatewayError::new(
                    Category::PayloadTooLarge,
                    "body_too_large",
                    d.to_string(),
                )
            }
            Denial::Connection { .. } => "connection_not_granted",
            Denial::Method { .. } => "method_not_granted",
            Denial::MethodNeverForwarded { .. } => "method_not_forwarded",
            Denial::Path { .. } => "path_not_granted",
        };
        GatewayError::forbidden(code, d.to_string())
    }
}
