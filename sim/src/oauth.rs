//! Token state shared by the OAuth providers: access tokens with lifetimes, refresh-token
//! families (rotation, reuse detection, family revocation), authorization codes with PKCE.

use std::collections::HashMap;
use std::time::Duration;
// tokio's clock, so tests that pause time move the simulators' expiries and windows too.
use tokio::time::Instant;

use base64::Engine;
use parking_lot::Mutex;
use rand::Rng;

/// What an access token stands for.
#[derive(Clone, Debug)]
pub(crate) struct AccessInfo {
    pub client_id: String,
    pub user: String,
    pub scopes: Vec<String>,
}

pub(crate) enum AccessCheck {
    Valid(AccessInfo),
    /// Known but past its lifetime (or expired by a fault).
    Expired,
    /// Unknown or revoked.
    Invalid,
}

/// A successful grant.
#[derive(Clone, Debug)]
pub(crate) struct Grant {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub user: String,
    pub scopes: Vec<String>,
    pub expires_in: Duration,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RefreshError {
    /// Never issued, or revoked (uninstall, admin, family revocation, pair limit).
    Invalid,
    /// Past the refresh-token lifetime.
    Expired,
    /// An already-rotated token was replayed: the whole family is now revoked.
    Reused,
    /// Issued to another client.
    WrongClient,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CodeError {
    Invalid,
    Expired,
    WrongClient,
    RedirectMismatch,
    PkceFailed,
}

/// How tokens look on the wire.
#[derive(Clone, Copy)]
pub(crate) enum TokenStyle {
    /// `00D...!AQ...` session ids and `5Aep...` refresh tokens.
    Salesforce,
    /// Opaque `CK...` access tokens and uuid-like `na1-...` refresh tokens.
    HubSpot,
    /// JWT-shaped access tokens.
    Jwt,
}

struct AccessEntry {
    info: AccessInfo,
    family: Option<u64>,
    expires_at: Instant,
    revoked: bool,
}

struct Family {
    client_id: String,
    user: String,
    scopes: Vec<String>,
    current: String,
    created_seq: u64,
    expires_at: Option<Instant>,
    revoked: bool,
}

struct CodeEntry {
    client_id: String,
    redirect_uri: Option<String>,
    challenge: Option<(String, String)>,
    user: String,
    scopes: Vec<String>,
    expires_at: Instant,
    used: bool,
}

pub(crate) struct PkceChallenge {
    pub challenge: String,
    pub method: String,
}

struct State {
    access: HashMap<String, AccessEntry>,
    /// Every refresh token ever issued → its family (rotated ones included, for reuse detection).
    refresh_index: HashMap<String, u64>,
    families: HashMap<u64, Family>,
    codes: HashMap<String, CodeEntry>,
    next_family: u64,
    access_lifetime: Duration,
    refresh_lifetime: Option<Duration>,
    rotate: bool,
}

pub(crate) struct TokenStore {
    style: TokenStyle,
    max_families: Option<usize>,
    /// When set, the code exchange issues a refresh token only if the grant carries this scope
    /// (Auth0/Lever: `offline_access`); `None` = always.
    refresh_scope: Option<String>,
    code_lifetime: Duration,
    state: Mutex<State>,
    /// Fault: every access token is answered as invalid (fresh ones too), while the token
    /// endpoint keeps issuing new ones.
    reject_access: std::sync::atomic::AtomicBool,
}

impl TokenStore {
    pub(crate) fn new(
        style: TokenStyle,
        access_lifetime: Duration,
        refresh_lifetime: Option<Duration>,
        code_lifetime: Duration,
        rotate: bool,
        max_families: Option<usize>,
    ) -> Self {
        Self {
            style,
            max_families,
            refresh_scope: None,
            code_lifetime,
            reject_access: std::sync::atomic::AtomicBool::new(false),
            state: Mutex::new(State {
                access: HashMap::new(),
                refresh_index: HashMap::new(),
                families: HashMap::new(),
                codes: HashMap::new(),
                next_family: 1,
                access_lifetime,
                refresh_lifetime,
                rotate,
            }),
        }
    }

    /// Refresh tokens from the code exchange only when the grant has `scope`.
    pub(crate) fn with_refresh_scope(mut self, scope: &str) -> Self {
        self.refresh_scope = Some(scope.to_owned());
        self
    }

    pub(crate) fn set_rotation(&self, on: bool) {
        self.state.lock().rotate = on;
    }

    pub(crate) fn rotation(&self) -> bool {
        self.state.lock().rotate
    }

    pub(crate) fn set_access_lifetime(&self, d: Duration) {
        self.state.lock().access_lifetime = d;
    }

    fn new_access_token(&self) -> String {
        match self.style {
            TokenStyle::Salesforce => format!("00D5g000004SIMU!AQ{}", random_token(96)),
            TokenStyle::HubSpot => format!("CK{}", random_token(120)),
            TokenStyle::Jwt => {
                let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
                let header = b.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
                let claims = b.encode(format!(
                    r#"{{"jti":"{}","iss":"gatehouse-sim"}}"#,
                    uuid::Uuid::new_v4()
                ));
                format!("{header}.{claims}.{}", random_token(43))
            }
        }
    }

    fn new_refresh_token(&self) -> String {
        match self.style {
            TokenStyle::Salesforce => format!("5Aep861{}", random_token(80)),
            TokenStyle::HubSpot => format!("na1-{}", uuid::Uuid::new_v4()),
            TokenStyle::Jwt => random_token(64),
        }
    }

    /// Issues an access token (and, if asked, a new refresh-token family).
    pub(crate) fn issue(
        &self,
        client_id: &str,
        user: &str,
        scopes: &[String],
        with_refresh: bool,
    ) -> Grant {
        let mut st = self.state.lock();
        let family = if with_refresh {
            let token = self.new_refresh_token();
            Some(self.add_family(&mut st, client_id, user, scopes, token))
        } else {
            None
        };
        let refresh_token = family.and_then(|f| st.families.get(&f).map(|f| f.current.clone()));
        let access_token = self.add_access(&mut st, client_id, user, scopes, family);
        Grant {
            access_token,
            refresh_token,
            user: user.to_owned(),
            scopes: scopes.to_vec(),
            expires_in: st.access_lifetime,
        }
    }

    /// Registers a refresh token (seed or minted for tests) as a new family.
    pub(crate) fn add_refresh_token(
        &self,
        client_id: &str,
        user: &str,
        scopes: &[String],
        token: Option<String>,
    ) -> String {
        let mut st = self.state.lock();
        let token = token.unwrap_or_else(|| self.new_refresh_token());
        self.add_family(&mut st, client_id, user, scopes, token.clone());
        token
    }

    fn add_family(
        &self,
        st: &mut State,
        client_id: &str,
        user: &str,
        scopes: &[String],
        token: String,
    ) -> u64 {
        let id = st.next_family;
        st.next_family += 1;
        let expires_at = st.refresh_lifetime.map(|d| Instant::now() + d);
        st.refresh_index.insert(token.clone(), id);
        st.families.insert(
            id,
            Family {
                client_id: client_id.to_owned(),
                user: user.to_owned(),
                scopes: scopes.to_vec(),
                current: token,
                created_seq: id,
                expires_at,
                revoked: false,
            },
        );
        // Pair limit per app per user: revoke the oldest live families past it.
        if let Some(max) = self.max_families {
            let mut live: Vec<(u64, u64)> = st
                .families
                .iter()
                .filter(|(_, f)| !f.revoked && f.client_id == client_id && f.user == user)
                .map(|(k, f)| (f.created_seq, *k))
                .collect();
            live.sort_unstable();
            while live.len() > max {
                let (_, victim) = live.remove(0);
                revoke_family(st, victim);
            }
        }
        id
    }

    fn add_access(
        &self,
        st: &mut State,
        client_id: &str,
        user: &str,
        scopes: &[String],
        family: Option<u64>,
    ) -> String {
        let token = self.new_access_token();
        let expires_at = Instant::now() + st.access_lifetime;
        st.access.insert(
            token.clone(),
            AccessEntry {
                info: AccessInfo {
                    client_id: client_id.to_owned(),
                    user: user.to_owned(),
                    scopes: scopes.to_vec(),
                },
                family,
                expires_at,
                revoked: false,
            },
        );
        token
    }

    /// The refresh-token grant. With rotation on, the answer carries a new refresh token and the
    /// presented one becomes invalid; replaying an invalidated one revokes the family.
    pub(crate) fn refresh(&self, client_id: &str, token: &str) -> Result<Grant, RefreshError> {
        let mut st = self.state.lock();
        let fid = *st.refresh_index.get(token).ok_or(RefreshError::Invalid)?;
        let rotate = st.rotate;
        let fam = st.families.get(&fid).ok_or(RefreshError::Invalid)?;
        if fam.client_id != client_id {
            return Err(RefreshError::WrongClient);
        }
        if fam.revoked {
            return Err(RefreshError::Invalid);
        }
        if fam.current != token {
            revoke_family(&mut st, fid);
            return Err(RefreshError::Reused);
        }
        if fam.expires_at.is_some_and(|e| Instant::now() >= e) {
            return Err(RefreshError::Expired);
        }
        let (user, scopes) = (fam.user.clone(), fam.scopes.clone());
        let new_refresh = if rotate {
            let t = self.new_refresh_token();
            let expires_at = st.refresh_lifetime.map(|d| Instant::now() + d);
            st.refresh_index.insert(t.clone(), fid);
            if let Some(f) = st.families.get_mut(&fid) {
                f.current = t.clone();
                f.expires_at = expires_at;
            }
            Some(t)
        } else {
            None
        };
        let access_token = self.add_access(&mut st, client_id, &user, &scopes, Some(fid));
        Ok(Grant {
            access_token,
            refresh_token: new_refresh,
            user,
            scopes,
            expires_in: st.access_lifetime,
        })
    }

    /// Turns the "reject every access token" fault on or off.
    pub(crate) fn set_reject_access(&self, on: bool) {
        self.reject_access
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn check_access(&self, token: &str) -> AccessCheck {
        if self
            .reject_access
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return AccessCheck::Invalid;
        }
        let st = self.state.lock();
        match st.access.get(token) {
            None => AccessCheck::Invalid,
            Some(e) if e.revoked => AccessCheck::Invalid,
            Some(e) if Instant::now() >= e.expires_at => AccessCheck::Expired,
            Some(e) => AccessCheck::Valid(e.info.clone()),
        }
    }

    /// Seconds until this token expires (for token-info endpoints).
    pub(crate) fn expires_in(&self, token: &str) -> Option<Duration> {
        let st = self.state.lock();
        st.access
            .get(token)
            .map(|e| e.expires_at.saturating_duration_since(Instant::now()))
    }

    pub(crate) fn create_code(
        &self,
        client_id: &str,
        redirect_uri: Option<&str>,
        challenge: Option<PkceChallenge>,
        user: &str,
        scopes: &[String],
    ) -> String {
        let code = match self.style {
            TokenStyle::Salesforce => format!("aPrx{}", random_token(60)),
            _ => uuid::Uuid::new_v4().to_string(),
        };
        let mut st = self.state.lock();
        st.codes.insert(
            code.clone(),
            CodeEntry {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.map(str::to_owned),
                challenge: challenge.map(|c| (c.challenge, c.method)),
                user: user.to_owned(),
                scopes: scopes.to_vec(),
                expires_at: Instant::now() + self.code_lifetime,
                used: false,
            },
        );
        code
    }

    /// Exchanges an authorization code (single use; PKCE verified when a challenge was sent).
    pub(crate) fn redeem_code(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
    ) -> Result<Grant, CodeError> {
        let (user, scopes) = {
            let mut st = self.state.lock();
            let entry = st.codes.get_mut(code).ok_or(CodeError::Invalid)?;
            if entry.used {
                return Err(CodeError::Invalid);
            }
            if entry.client_id != client_id {
                return Err(CodeError::WrongClient);
            }
            if Instant::now() >= entry.expires_at {
                return Err(CodeError::Expired);
            }
            if let Some(expected) = &entry.redirect_uri {
                if redirect_uri.is_some_and(|r| r != expected) {
                    return Err(CodeError::RedirectMismatch);
                }
            }
            if let Some((challenge, method)) = &entry.challenge {
                let ok = match verifier {
                    None => false,
                    Some(v) if method.eq_ignore_ascii_case("S256") => &pkce_s256(v) == challenge,
                    Some(v) => v == challenge,
                };
                if !ok {
                    return Err(CodeError::PkceFailed);
                }
            }
            entry.used = true;
            (entry.user.clone(), entry.scopes.clone())
        };
        let with_refresh = self
            .refresh_scope
            .as_ref()
            .is_none_or(|s| scopes.contains(s));
        Ok(self.issue(client_id, &user, &scopes, with_refresh))
    }

    /// Revokes every access and refresh token (app uninstalled / admin revocation).
    pub(crate) fn revoke_all(&self) {
        let mut st = self.state.lock();
        for e in st.access.values_mut() {
            e.revoked = true;
        }
        for f in st.families.values_mut() {
            f.revoked = true;
        }
    }

    /// Makes every access token issued so far expired (refresh tokens stay valid).
    pub(crate) fn expire_all_access(&self) {
        let mut st = self.state.lock();
        let now = Instant::now();
        for e in st.access.values_mut() {
            e.expires_at = now;
        }
    }

    /// Revokes one refresh token's family (HubSpot `DELETE /oauth/v1/refresh-tokens/:token`).
    pub(crate) fn revoke_refresh(&self, token: &str) -> bool {
        let mut st = self.state.lock();
        match st.refresh_index.get(token).copied() {
            Some(fid) if st.families.get(&fid).is_some_and(|f| f.current == token) => {
                revoke_family(&mut st, fid);
                true
            }
            _ => false,
        }
    }

    /// Revokes one access token (Salesforce `/services/oauth2/revoke` with an access token).
    pub(crate) fn revoke_access(&self, token: &str) -> bool {
        let mut st = self.state.lock();
        match st.access.get_mut(token) {
            Some(e) => {
                e.revoked = true;
                true
            }
            None => false,
        }
    }

    /// Live refresh tokens of a client (one per live family), oldest family first.
    pub(crate) fn current_refresh_tokens(&self, client_id: &str) -> Vec<String> {
        let st = self.state.lock();
        let mut v: Vec<(u64, String)> = st
            .families
            .values()
            .filter(|f| !f.revoked && f.client_id == client_id)
            .map(|f| (f.created_seq, f.current.clone()))
            .collect();
        v.sort_unstable();
        v.into_iter().map(|(_, t)| t).collect()
    }

    /// Whether a refresh token would currently be accepted.
    pub(crate) fn refresh_token_is_live(&self, token: &str) -> bool {
        let st = self.state.lock();
        st.refresh_index
            .get(token)
            .and_then(|fid| st.families.get(fid))
            .is_some_and(|f| {
                !f.revoked && f.current == token && f.expires_at.is_none_or(|e| Instant::now() < e)
            })
    }
}

fn revoke_family(st: &mut State, fid: u64) {
    if let Some(f) = st.families.get_mut(&fid) {
        f.revoked = true;
    }
    for e in st.access.values_mut() {
        if e.family == Some(fid) {
            e.revoked = true;
        }
    }
}

/// PKCE S256: BASE64URL(SHA256(verifier)) without padding.
pub fn pkce_s256(verifier: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Random URL-safe alphanumeric token.
pub(crate) fn random_token(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}
