//! The authorization-code flow's authorize endpoint, shared by the OAuth providers:
//! `GET <authorize>?response_type=code&client_id&redirect_uri&state&code_challenge[&code_challenge_method]`
//! auto-approves as the configured user and answers 302 to `redirect_uri?code=..&state=..`.

use crate::http::{empty, set_header, Resp, SimRequest};
use crate::oauth::PkceChallenge;
use crate::server::Ctx;

/// Why an authorize request cannot redirect (the caller renders its provider's error).
pub(crate) enum AuthorizeError {
    UnknownClient,
    BadRedirect,
}

/// A provider-specific check of the authorize query (e.g. Lever's `audience`), run once the
/// client and redirect URI are known good: `Err((error, description))` is sent back to the
/// redirect URI as `?error=..&error_description=..&state=..`.
pub(crate) type AuthorizeCheck<'a> =
    &'a dyn Fn(&[(String, String)]) -> Result<(), (&'static str, String)>;

pub(crate) fn authorize(ctx: &Ctx, req: &SimRequest) -> Result<Resp, AuthorizeError> {
    authorize_with(ctx, req, &|_| Ok(()))
}

/// [`authorize`] with an extra provider check (see [`AuthorizeCheck`]).
pub(crate) fn authorize_with(
    ctx: &Ctx,
    req: &SimRequest,
    check: AuthorizeCheck<'_>,
) -> Result<Resp, AuthorizeError> {
    let q = req.query_pairs();
    let get = |k: &str| {
        q.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let client_id = get("client_id").ok_or(AuthorizeError::UnknownClient)?;
    let client = ctx
        .config
        .clients
        .iter()
        .find(|c| c.client_id == client_id)
        .ok_or(AuthorizeError::UnknownClient)?;
    let redirect = get("redirect_uri").ok_or(AuthorizeError::BadRedirect)?;
    if !client.redirect_uris.is_empty() && !client.redirect_uris.contains(&redirect) {
        return Err(AuthorizeError::BadRedirect);
    }
    let Ok(mut target) = url::Url::parse(&redirect) else {
        return Err(AuthorizeError::BadRedirect);
    };
    let state = get("state");
    let response_type = get("response_type").unwrap_or_else(|| "code".to_owned());
    let refused = if response_type != "code" {
        Some((
            "unsupported_response_type",
            "response type not supported".to_owned(),
        ))
    } else {
        check(&q).err()
    };
    if let Some((error, description)) = refused {
        {
            let mut qp = target.query_pairs_mut();
            qp.append_pair("error", error);
            qp.append_pair("error_description", &description);
            if let Some(s) = &state {
                qp.append_pair("state", s);
            }
        }
        return Ok(redirect_to(target.as_str()));
    }
    let challenge = get("code_challenge").map(|c| PkceChallenge {
        challenge: c,
        method: get("code_challenge_method").unwrap_or_else(|| "plain".to_owned()),
    });
    let scopes = match get("scope") {
        Some(s) => s
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        None => crate::default_scopes(ctx.provider, &ctx.config, &client_id),
    };
    let code = ctx.tokens.create_code(
        &client_id,
        Some(&redirect),
        challenge,
        &ctx.config.authorize_user,
        &scopes,
    );
    {
        let mut qp = target.query_pairs_mut();
        qp.append_pair("code", &code);
        if let Some(s) = &state {
            qp.append_pair("state", s);
        }
    }
    Ok(redirect_to(target.as_str()))
}

fn redirect_to(location: &str) -> Resp {
    let mut r = empty(302);
    set_header(&mut r, "location", location);
    r
}
