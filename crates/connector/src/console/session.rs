//! Console sessions: signing in with an API token gives a cookie (HttpOnly, SameSite=Strict,
//! expiring) that holds the token's role and id, never the token; it is signed with a key
//! derived from the master key, so every instance on one database accepts it. Each request
//! checks that the token still exists (a revoked token ends its sessions). Every form carries
//! the session's CSRF value.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::api::AppState;
use crate::store::Role;

pub const COOKIE: &str = "dtc_session";
/// How long a session lasts.
pub const LIFETIME_SECS: i64 = 12 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    #[serde(rename = "r")]
    pub role: Role,
    /// The stored token it was made with (`None`: the token of the settings).
    #[serde(rename = "t")]
    pub token_id: Option<Uuid>,
    /// Unix seconds.
    #[serde(rename = "e")]
    pub expires: i64,
    /// The value every form of this session posts back.
    #[serde(rename = "c")]
    pub csrf: String,
}

fn key(state: &AppState) -> [u8; 32] {
    let keyring = state.connections.keyring();
    let mut h = Sha256::new();
    h.update(b"dtc console session v1\0");
    h.update(keyring.current.to_base64().expose_secret().as_bytes());
    h.finalize().into()
}

fn mac(key: &[u8; 32], payload: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    m.update(payload.as_bytes());
    m.finalize().into_bytes().to_vec()
}

impl Session {
    pub fn new(role: Role, token_id: Option<Uuid>) -> Self {
        let mut csrf = [0u8; 24];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut csrf);
        Session {
            role,
            token_id,
            expires: chrono::Utc::now().timestamp() + LIFETIME_SECS,
            csrf: URL_SAFE_NO_PAD.encode(csrf),
        }
    }

    /// The cookie's value: the session, then its signature.
    pub fn seal(&self, state: &AppState) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("serializes"));
        let sig = URL_SAFE_NO_PAD.encode(mac(&key(state), &payload));
        format!("{payload}.{sig}")
    }

    fn open(state: &AppState, value: &str) -> Option<Session> {
        let (payload, sig) = value.split_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let want = mac(&key(state), payload);
        if !bool::from(want.ct_eq(&sig)) {
            return None;
        }
        let s: Session = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (s.expires > chrono::Utc::now().timestamp()).then_some(s)
    }

    /// `Set-Cookie` for this session.
    pub fn cookie(&self, state: &AppState) -> String {
        format!(
            "{COOKIE}={}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={LIFETIME_SECS}",
            self.seal(state)
        )
    }

    /// `Set-Cookie` that ends the session.
    pub fn clear() -> String {
        format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0")
    }

    /// Whether a form's CSRF value is this session's.
    pub fn csrf_ok(&self, given: &str) -> bool {
        given.len() == self.csrf.len() && bool::from(given.as_bytes().ct_eq(self.csrf.as_bytes()))
    }

    pub fn may(&self, role: Role) -> bool {
        self.role >= role
    }
}

/// A cookie's value from the request.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// No valid session: the page sends the browser to sign in.
#[derive(Debug)]
pub struct SignInFirst;

impl axum::response::IntoResponse for SignInFirst {
    fn into_response(self) -> axum::response::Response {
        axum::response::Redirect::to("/console/sign-in").into_response()
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = SignInFirst;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let value = cookie(parts, COOKIE).ok_or(SignInFirst)?;
        let session = Session::open(state, value).ok_or(SignInFirst)?;
        if let Some(id) = session.token_id {
            // A revoked token ends its sessions.
            match state.store.list_api_tokens().await {
                Ok(tokens) if tokens.iter().any(|t| t.id == id && t.role == session.role) => {}
                _ => return Err(SignInFirst),
            }
        }
        Ok(session)
    }
}
