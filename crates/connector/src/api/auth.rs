//! Bearer-token auth for every `/v1` route. Tokens are stored as sha256 hashes; a presented
//! token is hashed and compared in constant time, so neither the database nor the comparison
//! reveals a token.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use std::sync::{Arc, RwLock};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::store::Store;

pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub fn hash_hex(token: &str) -> String {
    hash_token(token)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Known token hashes, with the store as the source of truth for tokens added while running.
pub struct TokenCheck {
    known: RwLock<Vec<[u8; 32]>>,
    store: Arc<dyn Store>,
}

impl TokenCheck {
    pub fn new(store: Arc<dyn Store>, known: Vec<[u8; 32]>) -> Self {
        TokenCheck {
            known: RwLock::new(known),
            store,
        }
    }

    fn known_match(&self, h: &[u8; 32]) -> bool {
        let known = self.known.read().expect("token list poisoned");
        // Compare against every entry so the time does not depend on which one matched.
        known
            .iter()
            .fold(subtle::Choice::from(0), |acc, k| acc | k.ct_eq(h))
            .into()
    }

    pub async fn check(&self, token: &str) -> Result<bool, ApiError> {
        let h = hash_token(token);
        if self.known_match(&h) {
            return Ok(true);
        }
        let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
        match self.store.find_api_token_by_hash(&hex).await {
            Ok(Some(_)) => {
                self.known.write().expect("token list poisoned").push(h);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => Err(ApiError::internal(e)),
        }
    }
}

pub async fn require_token(
    State(check): State<Arc<TokenCheck>>,
    req: Request,
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
    match presented {
        Some(token) if check.check(token).await? => Ok(next.run(req).await),
        _ => Err(ApiError::unauthorized()),
    }
}
