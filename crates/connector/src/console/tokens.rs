//! API tokens (admins only): the list with each token's role and last use, a new token (shown
//! once, on the page that made it), and revoke.

use axum::Router;
use axum::extract::{Form, Path};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{CsrfOnly, Page, SignedIn, check, when};
use crate::api::AppState;
use crate::api::tokens::{create_token, revoke_token};
use crate::store::Role;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/tokens", get(list).post(create))
        .route("/console/tokens/{id}/revoke", post(revoke))
}

async fn render(page: &Page, status: StatusCode, extra: Value) -> Response {
    let tokens = match page.state.store.list_api_tokens().await {
        Ok(t) => t,
        Err(e) => return page.failed(crate::api::error::ApiError::internal(e)),
    };
    let rows: Vec<Value> = tokens
        .iter()
        .map(|t| {
            json!({"id": t.id, "label": t.label, "role": t.role.as_str(),
                   "created_at": when(t.created_at), "last_used": t.last_used_at.map(when)})
        })
        .collect();
    let mut ctx = json!({"tokens": rows, "path": "/console/tokens", "roles": ["viewer", "operator", "admin"]});
    if let (Value::Object(base), Value::Object(more)) = (&mut ctx, extra) {
        base.extend(more);
    }
    (status, page.render("tokens.html", "tokens", ctx)).into_response()
}

async fn list(c: SignedIn) -> Response {
    check!(c.may(Role::Admin));
    render(&c, StatusCode::OK, json!({})).await
}

#[derive(Deserialize)]
struct NewToken {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    role: String,
}

async fn create(c: SignedIn, Form(f): Form<NewToken>) -> Response {
    check!(c.post(Role::Admin, &f.csrf));
    let Ok(role) = Role::parse(&f.role) else {
        let errors = json!({"role": "must be viewer, operator or admin"});
        return render(
            &c,
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"errors": errors, "form": {"label": f.label}}),
        )
        .await;
    };
    match create_token(&c.state, &f.label, role).await {
        // The token is in this one answer only (no-store, like every console page).
        Ok(made) => render(&c, StatusCode::CREATED, json!({"made": made})).await,
        Err(e) => {
            let field = e.body.field.clone().unwrap_or_else(|| "label".into());
            let errors = json!({ field: e.body.message });
            render(
                &c,
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"errors": errors, "form": {"label": f.label, "role": f.role}}),
            )
            .await
        }
    }
}

async fn revoke(c: SignedIn, Path(id): Path<String>, Form(f): Form<CsrfOnly>) -> Response {
    check!(c.post(Role::Admin, &f.csrf));
    match revoke_token(&c.state, &id).await {
        Ok(()) => Redirect::to("/console/tokens").into_response(),
        Err(e) if e.status() == StatusCode::NOT_FOUND => c.not_found(),
        Err(e) => e.into_response(),
    }
}
