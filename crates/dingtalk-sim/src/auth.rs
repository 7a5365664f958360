//! Access tokens (docs/dingtalk-api.md §1): the new `POST /v1.0/oauth2/accessToken` and the old
//! `GET /gettoken`, sharing one token store so their tokens are interchangeable.

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::model::RouteName;
use crate::reply::{
    FaultAnswer, OLD_QPS_ERRCODE, QPS_MESSAGE, SERVER_BUSY_ERRCODE, SERVER_BUSY_ERRMSG,
    bad_request, fault_answer, new_err, new_ok, old_err, old_ok,
};
use crate::server::ConnControl;
use crate::state::Sim;

/// UNCONFIRMED: the gateway's answer to a JSON body without `appKey`/`appSecret`, following the
/// `Missing<field>` pattern seen for other fields (docs/dingtalk-api.md §1.1).
const MISSING_FIELD_MESSAGE: &str = " is mandatory for this action.";

pub(crate) async fn access_token(
    State(sim): State<Sim>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.count_token_request();
    if let Some(answer) = fault_answer(&sim, &conn, RouteName::AuthToken).await {
        return match answer {
            FaultAnswer::TokenInvalid => bad_request(&sim, "invalidClientIdOrSecret"),
            other => crate::reply::new_api_fault(&sim, other),
        };
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"));
    if !is_json || body.iter().all(u8::is_ascii_whitespace) {
        return bad_request(&sim, "Missingbody");
    }
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(&body) else {
        return bad_request(&sim, "Invalidbody");
    };
    let mut creds = Vec::new();
    for field in ["appKey", "appSecret"] {
        match req.get(field).and_then(Value::as_str) {
            Some(v) if !v.is_empty() => creds.push(v.to_string()),
            _ => {
                return new_err(
                    &sim,
                    StatusCode::BAD_REQUEST,
                    &format!("Missing{field}"),
                    &format!("{field}{MISSING_FIELD_MESSAGE}"),
                );
            }
        }
    }
    match sim.app_by_key(&creds[0]) {
        Some(app) if app.app_secret == creds[1] => {
            let (token, expire_in) = sim.issue_token(&creds[0]);
            new_ok(json!({"accessToken": token, "expireIn": expire_in}))
        }
        _ => bad_request(&sim, "invalidClientIdOrSecret"),
    }
}

pub(crate) async fn gettoken(
    State(sim): State<Sim>,
    Extension(conn): Extension<ConnControl>,
    RawQuery(query): RawQuery,
) -> Response {
    sim.count_token_request();
    if let Some(answer) = fault_answer(&sim, &conn, RouteName::AuthToken).await {
        return match answer {
            FaultAnswer::QpsLimit => old_err(&sim, OLD_QPS_ERRCODE, QPS_MESSAGE),
            FaultAnswer::ServerError => old_err(&sim, SERVER_BUSY_ERRCODE, SERVER_BUSY_ERRMSG),
            FaultAnswer::TokenInvalid => old_err(&sim, 40096, "不合法的appKey或appSecret"),
        };
    }
    let params = query_map(query.as_deref());
    let (Some(key), Some(secret)) = (params.get("appkey"), params.get("appsecret")) else {
        return old_err(&sim, 40035, "缺少参数 corpid or appkey");
    };
    match sim.app_by_key(key) {
        Some(app) if &app.app_secret == secret => {
            let (token, expire_in) = sim.issue_token(key);
            old_ok(json!({"access_token": token, "expires_in": expire_in}))
        }
        _ => old_err(&sim, 40096, "不合法的appKey或appSecret"),
    }
}

/// Decodes a query string the way DingTalk's servers do (`+` is a space, `%XX` decoded);
/// empty values count as absent.
pub(crate) fn query_map(query: Option<&str>) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
