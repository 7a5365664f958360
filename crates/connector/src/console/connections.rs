//! Connections: the list (with each one's last test and last use), the seed's New Connection
//! dialog, edit (secrets shown only as "set", replaced only when typed), delete and Test.

use axum::Router;
use axum::extract::{Form, Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{CsrfOnly, Page, SignedIn, check, seg, some, when};
use crate::api::AppState;
use crate::connections::{
    Connection, ConnectionError, ConnectionKind, ConnectionPatch, NewConnection,
};
use crate::store::{ConnectionQuery, Role};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/connections", get(list).post(create))
        .route("/console/connections/new", get(new))
        .route("/console/connections/{name}/edit", get(edit).post(update))
        .route("/console/connections/{name}/delete", post(delete))
        .route("/console/connections/{name}/test", post(test))
}

#[derive(Deserialize, Default)]
struct ListQuery {
    created: Option<String>,
    updated: Option<String>,
    deleted: Option<String>,
    /// Part of a name or description.
    #[serde(default)]
    q: String,
    /// 1-based.
    page: Option<usize>,
}

/// Connections shown per page.
const PER_PAGE: usize = 100;

async fn list(c: SignedIn, Query(q): Query<ListQuery>) -> Response {
    let flash = [
        (&q.created, "created"),
        (&q.updated, "updated"),
        (&q.deleted, "deleted"),
    ]
    .into_iter()
    .find_map(|(name, word)| {
        name.as_ref()
            .map(|n| json!({"kind": "ok", "text": format!("{}: {n}", c.word(word))}))
    });
    list_page(&c, flash, None, &q.q, q.page.unwrap_or(1)).await
}

async fn list_page(
    page: &Page,
    flash: Option<Value>,
    test: Option<Value>,
    search: &str,
    number: usize,
) -> Response {
    let search = search.trim();
    let number = number.max(1);
    let query = ConnectionQuery {
        search: (!search.is_empty()).then(|| search.to_owned()),
        offset: u32::try_from((number - 1) * PER_PAGE).unwrap_or(u32::MAX),
        limit: PER_PAGE as u32,
    };
    let (list, matching) = match page.state.store.connection_page(&query).await {
        Ok(p) => p,
        Err(e) => return page.failed(crate::api::error::ApiError::internal(e)),
    };
    let total = if query.search.is_some() {
        match page
            .state
            .store
            .connection_page(&ConnectionQuery {
                limit: 0,
                ..ConnectionQuery::default()
            })
            .await
        {
            Ok((_, n)) => n,
            Err(e) => return page.failed(crate::api::error::ApiError::internal(e)),
        }
    } else {
        matching
    };
    let pages = (matching as usize).div_ceil(PER_PAGE).max(1);
    let link = |n: usize| format!("/console/connections?q={}&page={n}", seg(search));
    let pager = json!({
        "total": total, "matching": matching, "page": number, "pages": pages,
        "prev": (number > 1).then(|| link(number - 1)),
        "next": (number < pages).then(|| link(number + 1)),
    });
    let rows: Vec<Value> = list
        .into_iter()
        .map(|(record, a)| {
            let conn = Connection::from_record(record);
            let check = a.last_check.as_ref();
            json!({
                "name": conn.name, "kind": conn.kind, "robot_code": conn.robot_code,
                "description": conn.description,
                "check": check.map(|k| json!({"ok": k.ok, "message": k.message, "at": when(k.checked_at)})),
                "last_used": a.last_used_at.map(when),
            })
        })
        .collect();
    page.render(
        "connections.html",
        "connections",
        json!({"connections": rows, "flash": flash, "test": test, "path": "/console/connections",
               "q": search, "pager": pager}),
    )
    .into_response()
}

/// The dialog, for a new connection (`editing` absent) or an existing one.
fn dialog(page: &Page, status: StatusCode, form: Value, errors: Map<String, Value>) -> Response {
    (
        status,
        page.render(
            "connection_form.html",
            "connections",
            json!({"form": form, "errors": errors}),
        ),
    )
        .into_response()
}

async fn new(c: SignedIn) -> Response {
    check!(c.may(Role::Admin));
    dialog(&c, StatusCode::OK, json!({"kind": "app_robot"}), Map::new())
}

#[derive(Deserialize, Default)]
struct ConnectionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    app_key: String,
    #[serde(default)]
    app_secret: String,
    #[serde(default)]
    robot_code: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    secret: String,
    /// Edit only: remove the signing secret.
    #[serde(default)]
    remove_secret: Option<String>,
    /// App robots: Stream mode (a checkbox: present when ticked).
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    keywords: String,
    #[serde(default)]
    description: String,
}

impl ConnectionForm {
    fn keywords(&self) -> Vec<String> {
        self.keywords.split([',', '，']).filter_map(some).collect()
    }

    /// What the dialog shows again after a refusal: never a secret.
    fn echo(&self, kind: ConnectionKind, editing: Option<&str>) -> Value {
        json!({"kind": kind.as_str(), "name": self.name, "app_key": self.app_key,
               "robot_code": self.robot_code, "keywords": self.keywords,
               "description": self.description, "editing": editing, "stream": self.stream.is_some()})
    }
}

/// The API's refusal, at the dialog's field it is about, in the reader's language.
fn field_errors(page: &Page, e: &ConnectionError) -> Map<String, Value> {
    let mut errors = Map::new();
    match e {
        ConnectionError::Invalid { field, reason }
        | ConnectionError::WrongKind { field, reason } => {
            errors.insert((*field).to_owned(), Value::from(page.lang.reason(reason)));
        }
        ConnectionError::Duplicate { name } => {
            let text = match page.lang {
                super::i18n::Lang::Zh => format!("已存在名为 {name:?} 的连接"),
                super::i18n::Lang::En => e.to_string(),
            };
            errors.insert("name".into(), Value::from(text));
        }
        other => {
            errors.insert("_form".into(), Value::from(other.to_string()));
        }
    }
    errors
}

fn back_to_list(flag: &str, name: &str) -> Response {
    Redirect::to(&format!("/console/connections?{flag}={}", seg(name))).into_response()
}

async fn create(c: SignedIn, Form(f): Form<ConnectionForm>) -> Response {
    check!(c.post(Role::Admin, &f.csrf));
    let kind = if f.kind == "webhook_robot" {
        ConnectionKind::WebhookRobot
    } else {
        ConnectionKind::AppRobot
    };
    let mut new = NewConnection {
        name: f.name.trim().to_owned(),
        kind,
        description: f.description.clone(),
        app_key: None,
        app_secret: None,
        robot_code: None,
        access_token: None,
        secret: None,
        keywords: Vec::new(),
        qps_quota: None,
        stream: false,
    };
    match kind {
        ConnectionKind::AppRobot => {
            new.app_key = Some(f.app_key.trim().to_owned());
            new.app_secret = Some(SecretString::from(f.app_secret.trim().to_owned()));
            new.robot_code = some(&f.robot_code).or_else(|| some(&f.app_key));
            new.stream = f.stream.is_some();
        }
        ConnectionKind::WebhookRobot => {
            new.access_token = Some(SecretString::from(f.access_token.trim().to_owned()));
            new.secret = some(&f.secret).map(SecretString::from);
            new.keywords = f.keywords();
        }
    }
    match c.state.connections.create(new).await {
        Ok(conn) => {
            tracing::info!(connection = %conn.name, kind = conn.kind.as_str(), "connection created in the console");
            back_to_list("created", &conn.name)
        }
        Err(e) => dialog(
            &c,
            StatusCode::UNPROCESSABLE_ENTITY,
            f.echo(kind, None),
            field_errors(&c, &e),
        ),
    }
}

async fn find(c: &SignedIn, name: &str) -> Result<Connection, Response> {
    match c.state.connections.get(name).await {
        Ok(conn) => Ok(conn),
        Err(ConnectionError::NotFound { .. }) => Err(c.not_found()),
        Err(e) => Err(c.failed(e)),
    }
}

async fn edit(c: SignedIn, Path(name): Path<String>) -> Response {
    check!(c.may(Role::Admin));
    let conn = check!(find(&c, &name).await);
    let secret_set = match c.state.connections.secrets(&conn) {
        Ok(crate::connections::ConnectionSecrets::WebhookRobot { secret, .. }) => secret.is_some(),
        Ok(_) => false,
        Err(e) => return c.failed(e),
    };
    let form = json!({
        "kind": conn.kind.as_str(), "name": conn.name, "app_key": conn.app_key,
        "robot_code": conn.robot_code, "keywords": conn.keywords.join(", "),
        "description": conn.description, "editing": conn.name, "secret_set": secret_set,
        "stream": conn.stream,
    });
    dialog(&c, StatusCode::OK, form, Map::new())
}

async fn update(c: SignedIn, Path(name): Path<String>, Form(f): Form<ConnectionForm>) -> Response {
    check!(c.post(Role::Admin, &f.csrf));
    let conn = check!(find(&c, &name).await);
    // Secrets are replaced only when typed; everything else is what the dialog shows.
    let mut patch = ConnectionPatch {
        name: Some(f.name.trim().to_owned()),
        description: Some(f.description.clone()),
        ..ConnectionPatch::default()
    };
    match conn.kind {
        ConnectionKind::AppRobot => {
            patch.app_key = Some(f.app_key.trim().to_owned());
            patch.robot_code = some(&f.robot_code).or_else(|| some(&f.app_key));
            patch.app_secret = some(&f.app_secret).map(SecretString::from);
            patch.stream = Some(f.stream.is_some());
        }
        ConnectionKind::WebhookRobot => {
            patch.access_token = some(&f.access_token).map(SecretString::from);
            patch.secret = match (some(&f.secret), f.remove_secret.is_some()) {
                (Some(s), _) => Some(Some(SecretString::from(s))),
                (None, true) => Some(None),
                (None, false) => None,
            };
            patch.keywords = Some(f.keywords());
        }
    }
    match c
        .state
        .connections
        .update(&conn.id.to_string(), patch)
        .await
    {
        Ok(updated) => {
            c.state.connection_changed(updated.id);
            tracing::info!(connection = %updated.name, "connection changed in the console");
            back_to_list("updated", &updated.name)
        }
        Err(e) => dialog(
            &c,
            StatusCode::UNPROCESSABLE_ENTITY,
            f.echo(conn.kind, Some(&conn.name)),
            field_errors(&c, &e),
        ),
    }
}

async fn delete(c: SignedIn, Path(name): Path<String>, Form(f): Form<CsrfOnly>) -> Response {
    check!(c.post(Role::Admin, &f.csrf));
    let conn = check!(find(&c, &name).await);
    if let Err(e) = c.state.connections.delete(&conn.id.to_string()).await {
        return c.failed(e);
    }
    c.state.connection_changed(conn.id);
    tracing::info!(connection = %conn.name, "connection deleted in the console");
    back_to_list("deleted", &conn.name)
}

async fn test(c: SignedIn, Path(name): Path<String>, Form(f): Form<CsrfOnly>) -> Response {
    check!(c.post(Role::Operator, &f.csrf));
    let conn = check!(find(&c, &name).await);
    let result = match c.state.test_connection(&conn).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let test = json!({
        "name": conn.name,
        "ok": result.ok,
        "message": result.message,
        "code": result.dingtalk.as_ref().and_then(|d| d.code.clone()),
    });
    list_page(&c, None, Some(test), &conn.name, 1).await
}
