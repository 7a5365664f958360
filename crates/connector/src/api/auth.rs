//! Bearer-token auth and roles for every `/v1` route. Tokens are stored as sha256 hashes; a
//! presented token is hashed and compared in constant time, so neither the database nor the
//! comparison reveals a token. Each token has a role — viewer (read only), operator (send, run
//! flows, read and retry deliveries), admin (everything) — and each route needs one
//! ([`required_role`]); a token below it gets 403.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::error::{ApiError, ErrorCode};
use crate::store::{Role, Store};

pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub fn hash_hex(token: &str) -> String {
    hash_token(token)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Who made a request: the token's role, and its id when it is a stored token (not the one
/// given in `DTC_API_TOKEN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub role: Role,
    pub token_id: Option<Uuid>,
}

/// How long a stored token's role is trusted before the store is asked again: a revoked token
/// (on any instance) stops working within this.
const CACHE_TTL: Duration = Duration::from_secs(5);
/// Last use is written at most this often per token.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

struct Cached {
    caller: Caller,
    checked: Instant,
    touched: Option<Instant>,
}

/// The token given in the settings (admin), and stored tokens cached briefly.
pub struct TokenCheck {
    known: Vec<[u8; 32]>,
    cache: RwLock<HashMap<[u8; 32], Cached>>,
    store: Arc<dyn Store>,
}

impl TokenCheck {
    pub fn new(store: Arc<dyn Store>, known: Vec<[u8; 32]>) -> Self {
        TokenCheck {
            known,
            cache: RwLock::new(HashMap::new()),
            store,
        }
    }

    fn known_match(&self, h: &[u8; 32]) -> bool {
        // Compare against every entry so the time does not depend on which one matched.
        self.known
            .iter()
            .fold(subtle::Choice::from(0), |acc, k| acc | k.ct_eq(h))
            .into()
    }

    /// Forgets a revoked token at once (on this instance; others within [`CACHE_TTL`]).
    pub fn forget(&self, token_hash_hex: &str) {
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        cache.retain(|h, _| {
            let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
            hex != token_hash_hex
        });
    }

    pub async fn check(&self, token: &str) -> Result<Option<Caller>, ApiError> {
        let h = hash_token(token);
        if self.known_match(&h) {
            return Ok(Some(Caller {
                role: Role::Admin,
                token_id: None,
            }));
        }
        let now = Instant::now();
        let cached = {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            cache
                .get(&h)
                .filter(|c| now - c.checked < CACHE_TTL)
                .map(|c| (c.caller, c.touched))
        };
        let caller = match cached {
            Some((caller, touched)) => {
                if touched.is_none_or(|t| now - t >= TOUCH_EVERY) {
                    self.touch(&h, caller, now);
                }
                caller
            }
            None => {
                let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
                let Some(record) = self
                    .store
                    .find_api_token_by_hash(&hex)
                    .await
                    .map_err(ApiError::internal)?
                else {
                    self.cache
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&h);
                    return Ok(None);
                };
                let caller = Caller {
                    role: record.role,
                    token_id: Some(record.id),
                };
                let touched = {
                    let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
                    cache.get(&h).and_then(|c| c.touched)
                };
                self.cache
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(
                        h,
                        Cached {
                            caller,
                            checked: now,
                            touched,
                        },
                    );
                if touched.is_none_or(|t| now - t >= TOUCH_EVERY) {
                    self.touch(&h, caller, now);
                }
                caller
            }
        };
        Ok(Some(caller))
    }

    /// Records the token's use, off the request's path.
    fn touch(&self, h: &[u8; 32], caller: Caller, now: Instant) {
        let Some(id) = caller.token_id else { return };
        if let Some(c) = self
            .cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(h)
        {
            c.touched = Some(now);
        }
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.touch_api_token(id, chrono::Utc::now()).await {
                tracing::warn!(error = %e, "could not record a token's last use");
            }
        });
    }
}

/// The least role a route needs. Reading is for every role (token management excepted);
/// sending, testing a connection, running flows and retrying deliveries are for operators;
/// everything that creates, changes or deletes connections, flows or tokens is for admins.
pub fn required_role(method: &Method, path: &str) -> Role {
    if path.starts_with("/v1/tokens") {
        return Role::Admin;
    }
    if matches!(*method, Method::GET | Method::HEAD) {
        return Role::Viewer;
    }
    let operator = *method == Method::POST
        && (path.starts_with("/v1/connections/{id_or_name}/actions/")
            || path == "/v1/connections/{id_or_name}/test"
            || path == "/v1/deliveries/{id}/retry"
            || path == "/v1/flows/{name}/runs"
            || path == "/v1/flows/{name}/dry-run");
    if operator {
        Role::Operator
    } else {
        Role::Admin
    }
}

pub async fn require_token(
    State(check): State<Arc<TokenCheck>>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = presented else {
        return Err(ApiError::unauthorized());
    };
    let Some(caller) = check.check(token).await? else {
        return Err(ApiError::unauthorized());
    };
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path(), |p| p.as_str());
    let needed = required_role(req.method(), path);
    if caller.role < needed {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "this token's role ({}) may not do this; it needs an {} token",
                caller.role.as_str(),
                needed.as_str()
            ),
        ));
    }
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_by_route() {
        let r = |m: Method, p: &str| required_role(&m, p);
        assert_eq!(r(Method::GET, "/v1/connections"), Role::Viewer);
        assert_eq!(r(Method::GET, "/v1/tokens"), Role::Admin);
        assert_eq!(
            r(
                Method::POST,
                "/v1/connections/{id_or_name}/actions/send_text"
            ),
            Role::Operator
        );
        assert_eq!(r(Method::POST, "/v1/deliveries/{id}/retry"), Role::Operator);
        assert_eq!(r(Method::POST, "/v1/flows/{name}/runs"), Role::Operator);
        assert_eq!(r(Method::POST, "/v1/connections"), Role::Admin);
        assert_eq!(
            r(Method::PATCH, "/v1/connections/{id_or_name}"),
            Role::Admin
        );
        assert_eq!(r(Method::PUT, "/v1/flows/{name}"), Role::Admin);
        assert_eq!(r(Method::DELETE, "/v1/flows/{name}"), Role::Admin);
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
    }
}
