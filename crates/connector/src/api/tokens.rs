//! `/v1/tokens` (admins only): API tokens with their role and last use; create one (shown
//! once), revoke one.

use aide::axum::ApiRouter;
use aide::axum::routing::{delete_with, get_with};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use super::extract::AppJson;
use crate::store::{ApiTokenRecord, Role};

pub fn routes() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/v1/tokens",
            get_with(list, |op| {
                op.id("listTokens")
                    .summary("API tokens: label, role, last use (never the token)")
                    .tag("tokens")
            })
            .post_with(create, |op| {
                op.id("createToken")
                    .summary(
                        "Create an API token with a role; the token is shown only in this answer",
                    )
                    .tag("tokens")
                    .response::<201, Json<NewTokenView>>()
            }),
        )
        .api_route(
            "/v1/tokens/{id}",
            delete_with(revoke, |op| {
                op.id("revokeToken")
                    .summary("Revoke an API token")
                    .tag("tokens")
                    .response::<204, ()>()
            }),
        )
}

/// A token as listed.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TokenView {
    pub id: Uuid,
    pub label: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiTokenRecord> for TokenView {
    fn from(t: ApiTokenRecord) -> Self {
        TokenView {
            id: t.id,
            label: t.label,
            role: t.role,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
        }
    }
}

/// A new token: the only time it is shown.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NewTokenView {
    pub id: Uuid,
    pub label: String,
    pub role: Role,
    /// The bearer token. Keep it: only its hash is stored.
    pub token: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = new_token_rules)]
pub struct NewToken {
    /// What the token is for (shown in the list).
    #[schemars(length(min = 1, max = 100))]
    pub label: String,
    /// viewer (read only), operator (send, run flows, retry deliveries) or admin (everything).
    pub role: Role,
}

/// The label is not blank: stated in the schema, as the handler checks it.
fn new_token_rules(schema: &mut schemars::Schema) {
    crate::actions::types::add_rule(
        schema,
        serde_json::json!({ "properties": { "label": {
            "pattern": crate::actions::types::text_without_nul()
        } } }),
    );
}

#[derive(Deserialize, JsonSchema)]
struct TokenRef {
    /// The token's id (a UUID).
    #[schemars(with = "Uuid")]
    id: String,
}

async fn list(State(s): State<AppState>) -> Result<Json<Vec<TokenView>>, ApiError> {
    let tokens = s
        .store
        .list_api_tokens()
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(tokens.into_iter().map(TokenView::from).collect()))
}

async fn create(
    State(s): State<AppState>,
    AppJson(new): AppJson<NewToken>,
) -> Result<(StatusCode, Json<NewTokenView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(create_token(&s, &new.label, new.role).await?),
    ))
}

/// Makes a token with a role; the answer is the only place the token is ever shown.
pub(crate) async fn create_token(
    s: &AppState,
    label: &str,
    role: Role,
) -> Result<NewTokenView, ApiError> {
    if label.chars().all(crate::actions::types::is_blank) {
        return Err(ApiError::invalid("label", "must not be blank"));
    }
    if label.chars().count() > 100 {
        return Err(ApiError::invalid("label", "must be at most 100 characters"));
    }
    let label = label.trim();
    let (id, token) = crate::app::create_api_token_with_role(s.store.as_ref(), label, role)
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(token_id = %id, role = role.as_str(), "API token created");
    Ok(NewTokenView {
        id,
        label: label.to_owned(),
        role,
        token: token.expose_secret().to_owned(),
    })
}

async fn revoke(
    State(s): State<AppState>,
    Path(r): Path<TokenRef>,
) -> Result<StatusCode, ApiError> {
    revoke_token(&s, &r.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes a token: it stops working at once on this instance (its cached check is dropped).
pub(crate) async fn revoke_token(s: &AppState, id: &str) -> Result<(), ApiError> {
    let not_found = || ApiError::not_found(format!("no token has the id `{id}`"));
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    let hash = s
        .store
        .list_api_tokens()
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .find(|t| t.id == id)
        .map(|t| t.token_hash)
        .ok_or_else(not_found)?;
    if !s
        .store
        .delete_api_token(id)
        .await
        .map_err(ApiError::internal)?
    {
        return Err(not_found());
    }
    s.tokens.forget(&hash);
    tracing::info!(token_id = %id, "API token revoked");
    Ok(())
}
