//! The web console at `/console` (`/` redirects there): server-rendered pages (MiniJinja, HTML
//! auto-escaped) with a little plain JavaScript, all compiled into the binary — no CDN, works
//! offline. It calls the same domain layer as the REST API (`Connections`, the probe), so one
//! place decides what a valid connection is. Sessions are signed cookies ([`session`]); every
//! form carries the session's CSRF value; every page is sent with a strict
//! Content-Security-Policy (scripts and styles from this server's files only).

mod i18n;
pub mod session;

use std::sync::LazyLock;

use axum::Router;
use axum::extract::{Form, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::Environment;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::AppState;
use crate::connections::{ConnectionError, ConnectionKind, NewConnection};
use crate::store::Role;
use i18n::Lang;
use session::Session;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("layout.html", include_str!("templates/layout.html")),
        ("sign_in.html", include_str!("templates/sign_in.html")),
        ("deliveries.html", include_str!("templates/deliveries.html")),
        ("send.html", include_str!("templates/send.html")),
        ("delivery.html", include_str!("templates/delivery.html")),
        (
            "connections.html",
            include_str!("templates/connections.html"),
        ),
        (
            "connection_new.html",
            include_str!("templates/connection_new.html"),
        ),
    ] {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("console template {name}: {e}"));
    }
    env
});

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn routes() -> Router<AppState> {
    let console = Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/console/connections") }),
        )
        .route(
            "/console/",
            get(|| async { Redirect::to("/console/connections") }),
        )
        .route("/console/sign-in", get(sign_in_page).post(sign_in))
        .route("/console/sign-out", post(sign_out))
        .route("/console/lang", post(set_lang))
        .route(
            "/console/connections",
            get(connections).post(create_connection),
        )
        .route("/console/connections/new", get(new_connection))
        .route(
            "/console/connections/{name}/delete",
            post(delete_connection),
        )
        .route("/console/connections/{name}/test", post(test_connection))
        .route("/console/send", get(send_page).post(send))
        .route("/console/deliveries", get(deliveries))
        .route("/console/deliveries/{id}", get(delivery))
        .route("/console/deliveries/{id}/retry", post(retry_delivery))
        .route("/console/assets/{file}", get(asset))
        .layer(axum::middleware::from_fn(security_headers));
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .merge(console)
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// What every page knows.
struct Page<'a> {
    state: &'a AppState,
    lang: Lang,
    session: Option<&'a Session>,
    path: &'a str,
}

impl Page<'_> {
    fn render(&self, template: &str, page: &str, extra: Value) -> Html<String> {
        let settings = &self.state.settings;
        let mut ctx = json!({
            "t": self.lang.words(),
            "lang": self.lang.code(),
            "page": page,
            "path": self.path,
            "sandbox": settings.sandbox,
            "sandbox_chat": format!("{}/", settings.dingtalk_api_base.trim_end_matches('/')),
            "session": self.session.map(|s| json!({"role": s.role.as_str(), "csrf": s.csrf})),
            "may_admin": self.session.is_some_and(|s| s.may(Role::Admin)),
            "may_operate": self.session.is_some_and(|s| s.may(Role::Operator)),
        });
        if let (Value::Object(base), Value::Object(more)) = (&mut ctx, extra) {
            base.extend(more);
        }
        let html = TEMPLATES
            .get_template(template)
            .and_then(|t| t.render(&ctx))
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, template, "console page failed to render");
                "<!doctype html><title>dtc</title><p>This page could not be shown.</p>".to_owned()
            });
        Html(html)
    }

    fn word(&self, key: &str) -> String {
        self.lang.words()[key].as_str().unwrap_or(key).to_owned()
    }
}

fn forbidden(page: &Page<'_>) -> Response {
    let flash = json!({"flash": {"kind": "bad", "text": page.word("forbidden")}});
    (
        StatusCode::FORBIDDEN,
        page.render("connections.html", "connections", flash),
    )
        .into_response()
}

/// `Lang` and the path, from the request parts (extractors run before the handler body).
struct Ctx {
    lang: Lang,
    path: String,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Ctx {
            lang: Lang::of(parts),
            path: parts.uri.path().to_owned(),
        })
    }
}

async fn sign_in_page(State(s): State<AppState>, ctx: Ctx) -> Html<String> {
    let page = Page {
        state: &s,
        lang: ctx.lang,
        session: None,
        path: &ctx.path,
    };
    page.render("sign_in.html", "sign-in", json!({}))
}

#[derive(Deserialize)]
struct SignIn {
    token: String,
}

async fn sign_in(State(s): State<AppState>, ctx: Ctx, Form(f): Form<SignIn>) -> Response {
    let token = f.token.trim();
    let caller = if token.is_empty() {
        None
    } else {
        match s.tokens.check(token).await {
            Ok(c) => c,
            Err(e) => return e.into_response(),
        }
    };
    let Some(caller) = caller else {
        let page = Page {
            state: &s,
            lang: ctx.lang,
            session: None,
            path: &ctx.path,
        };
        let error = page.word("sign_in_failed");
        return (
            StatusCode::UNAUTHORIZED,
            page.render("sign_in.html", "sign-in", json!({"error": error})),
        )
            .into_response();
    };
    let session = Session::new(caller.role, caller.token_id);
    tracing::info!(role = caller.role.as_str(), "console sign-in");
    (
        [(header::SET_COOKIE, session.cookie(&s))],
        Redirect::to("/console/connections"),
    )
        .into_response()
}

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

fn bad_csrf() -> Response {
    (
        StatusCode::FORBIDDEN,
        "This form expired; reload the page and try again.",
    )
        .into_response()
}

async fn sign_out(session: Session, Form(f): Form<CsrfOnly>) -> Response {
    if !session.csrf_ok(&f.csrf) {
        return bad_csrf();
    }
    (
        [(header::SET_COOKIE, Session::clear())],
        Redirect::to("/console/sign-in"),
    )
        .into_response()
}

#[derive(Deserialize)]
struct SetLang {
    lang: String,
    #[serde(default)]
    back: String,
}

async fn set_lang(Form(f): Form<SetLang>) -> Response {
    let lang = Lang::parse(&f.lang).unwrap_or(Lang::En);
    let short = if lang == Lang::Zh { "zh" } else { "en" };
    // Only back into the console: never an open redirect.
    let back = if f.back.starts_with("/console") && !f.back.starts_with("//") {
        f.back
    } else {
        "/console".to_owned()
    };
    (
        [(
            header::SET_COOKIE,
            format!("dtc_lang={short}; Path=/console; SameSite=Strict; Max-Age=31536000"),
        )],
        Redirect::to(&back),
    )
        .into_response()
}

#[derive(Deserialize, Default)]
struct ListQuery {
    created: Option<String>,
    deleted: Option<String>,
}

async fn connections(
    State(s): State<AppState>,
    ctx: Ctx,
    session: Session,
    axum::extract::Query(q): axum::extract::Query<ListQuery>,
) -> Response {
    let page = Page {
        state: &s,
        lang: ctx.lang,
        session: Some(&session),
        path: &ctx.path,
    };
    let flash = match (&q.created, &q.deleted) {
        (Some(name), _) => {
            Some(json!({"kind": "ok", "text": format!("{}: {name}", page.word("created"))}))
        }
        (_, Some(name)) => {
            Some(json!({"kind": "ok", "text": format!("{}: {name}", page.word("deleted"))}))
        }
        _ => None,
    };
    list_page(&page, flash, None).await
}

async fn list_page(page: &Page<'_>, flash: Option<Value>, test: Option<Value>) -> Response {
    match page.state.connections.list().await {
        Ok(list) => {
            let list = serde_json::to_value(&list).unwrap_or(Value::Array(Vec::new()));
            page.render(
                "connections.html",
                "connections",
                json!({"connections": list, "flash": flash, "test": test}),
            )
            .into_response()
        }
        Err(e) => crate::api::error::ApiError::from(e).into_response(),
    }
}

async fn new_connection(State(s): State<AppState>, ctx: Ctx, session: Session) -> Response {
    let page = Page {
        state: &s,
        lang: ctx.lang,
        session: Some(&session),
        path: &ctx.path,
    };
    if !session.may(Role::Admin) {
        return forbidden(&page);
    }
    page.render(
        "connection_new.html",
        "connections",
        json!({"form": {"kind": "app_robot"}, "errors": {}}),
    )
    .into_response()
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
    #[serde(default)]
    keywords: String,
    #[serde(default)]
    description: String,
}

fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

async fn create_connection(
    State(s): State<AppState>,
    ctx: Ctx,
    session: Session,
    Form(f): Form<ConnectionForm>,
) -> Response {
    let page = Page {
        state: &s,
        lang: ctx.lang,
        session: Some(&session),
        path: &ctx.path,
    };
    if !session.csrf_ok(&f.csrf) {
        return bad_csrf();
    }
    if !session.may(Role::Admin) {
        return forbidden(&page);
    }
    let kind = if f.kind == "webhook_robot" {
        ConnectionKind::WebhookRobot
    } else {
        ConnectionKind::AppRobot
    };
    let new = match kind {
        ConnectionKind::AppRobot => NewConnection {
            name: f.name.trim().to_owned(),
            kind,
            description: f.description.clone(),
            app_key: Some(f.app_key.trim().to_owned()),
            app_secret: Some(secrecy::SecretString::from(f.app_secret.trim().to_owned())),
            robot_code: some(&f.robot_code).or_else(|| some(&f.app_key)),
            access_token: None,
            secret: None,
            keywords: Vec::new(),
            qps_quota: None,
        },
        ConnectionKind::WebhookRobot => NewConnection {
            name: f.name.trim().to_owned(),
            kind,
            description: f.description.clone(),
            app_key: None,
            app_secret: None,
            robot_code: None,
            access_token: Some(secrecy::SecretString::from(
                f.access_token.trim().to_owned(),
            )),
            secret: some(&f.secret).map(secrecy::SecretString::from),
            keywords: f.keywords.split([',', '，']).filter_map(some).collect(),
            qps_quota: None,
        },
    };
    match s.connections.create(new).await {
        Ok(conn) => {
            tracing::info!(connection = %conn.name, kind = conn.kind.as_str(), "connection created in the console");
            let to = format!(
                "/console/connections?created={}",
                percent_encoding::utf8_percent_encode(
                    &conn.name,
                    percent_encoding::NON_ALPHANUMERIC
                )
            );
            Redirect::to(&to).into_response()
        }
        Err(e) => {
            let mut errors = Map::new();
            match &e {
                ConnectionError::Invalid { field, reason }
                | ConnectionError::WrongKind { field, reason } => {
                    errors.insert((*field).to_owned(), Value::from(reason.clone()));
                }
                ConnectionError::Duplicate { .. } => {
                    errors.insert("name".into(), Value::from(e.to_string()));
                }
                other => {
                    errors.insert("_form".into(), Value::from(other.to_string()));
                }
            }
            // Secrets are never sent back to the browser.
            let form = json!({"kind": kind.as_str(), "name": f.name, "app_key": f.app_key,
                              "robot_code": f.robot_code, "keywords": f.keywords,
                              "description": f.description});
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                page.render(
                    "connection_new.html",
                    "connections",
                    json!({"form": form, "errors": errors}),
                ),
            )
                .into_response()
        }
    }
}

async fn delete_connection(
    State(s): State<AppState>,
    ctx: Ctx,
    session: Session,
    Path(name): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let page = Page {
        state: &s,
        lang: ctx.lang,
        session: Some(&session),
        path: &ctx.path,
    };
    if !session.csrf_ok(&f.csrf) {
        return bad_csrf();
    }
    if !session.may(Role::Admin) {
        return forbidden(&page);
    }
    let conn = match s.connections.get(&name).await {
        Ok(c) => c,
        Err(e) => return crate::api::error::ApiError::from(e).into_response(),
    };
    if let Err(e) = s.connections.delete(&conn.id.to_string()).await {
        return crate::api::error::ApiError::from(e).into_response();
    }
    s.connection_changed(conn.id);
    tracing::info!(connection = %conn.name, "connection deleted in the console");
    let to = format!(
        "/console/connections?deleted={}",
        percent_encoding::utf8_percent_encode(&conn.name, percent_encoding::NON_ALPHANUMERIC)
    );
    Redirect::to(&to).into_response()
}

async fn test_connection(
    State(s): State<AppState>,
    ctx: Ctx,
    session: Session,
    Path(name): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let page = Page {
        state: &s,
        lang: ctx.lang,
        session: Some(&session),
        path: "/console/connections",
    };
    if !session.csrf_ok(&f.csrf) {
        return bad_csrf();
    }
    if !session.may(Role::Operator) {
        return forbidden(&page);
    }
    let conn = match s.connections.get(&name).await {
        Ok(c) => c,
        Err(e) => return crate::api::error::ApiError::from(e).into_response(),
    };
    let result = match s.target_for(&conn) {
        Ok(target) => crate::probe::test(&target).await,
        Err(e) => return e.into_response(),
    };
    let test = json!({
        "name": conn.name,
        "ok": result.ok,
        "message": result.message,
        "code": result.dingtalk.as_ref().map(|d| d.code.clone()),
    });
    list_page(&page, None, Some(test)).await
}

#[derive(Deserialize, Default)]
struct DeliveryQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    connection: String,
    #[serde(default)]
    group: String,
    /// `datetime-local` (the browser's local time is not known here: read as UTC).
    #[serde(default)]
    since: String,
    before: Option<i64>,
}

fn error_text(e: &Option<crate::error::ErrorBody>) -> Option<String> {
    e.as_ref().map(|e| e.message.clone())
}

async fn deliveries(
    State(s): State<AppState>,
    ctx: Ctx,
    session: Session,
    axum::extract::Query(q): axum::extract::Query<DeliveryQuery>,
) -> Response {
    let page = Page {
        state: &s,
        lang: ctx.lang,
        session: Some(&session),
        path: &ctx.path,
    };
    let connections = match s.connections.list().await {
        Ok(c) => c,
        Err(e) => return crate::api::error::ApiError::from(e).into_response(),
    };
    let status = crate::store::DeliveryStatus::parse(&q.status).ok();
    let connection_id = connections
        .iter()
        .find(|c| c.name == q.connection)
        .map(|c| c.id);
    let since = chrono::NaiveDateTime::parse_from_str(&q.since, "%Y-%m-%dT%H:%M")
        .ok()
        .map(|t| t.and_utc());
    let filter = crate::store::DeliveryFilter {
        status,
        connection_id,
        group_chat_id: some(&q.group),
        created_from: since,
        created_before: None,
        before_seq: q.before,
        limit: 50,
    };
    let page_of = match s.store.list_deliveries(&filter).await {
        Ok(p) => p,
        Err(e) => return crate::api::error::ApiError::internal(e).into_response(),
    };
    let name_of = |id: uuid::Uuid| {
        connections
            .iter()
            .find(|c| c.id == id)
            .map_or_else(|| id.to_string(), |c| c.name.clone())
    };
    let rows: Vec<Value> = page_of
        .deliveries
        .iter()
        .map(|d| {
            json!({
                "id": d.id, "status": d.status, "action": d.action,
                "connection": name_of(d.connection_id),
                "group": d.group_key.group_chat_id(),
                "attempts": d.attempts,
                "error": error_text(&d.last_error),
                "created_at": d.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            })
        })
        .collect();
    let next = page_of.next_cursor.map(|c| {
        let mut q2 = form_urlencoded(&[
            ("status", &q.status),
            ("connection", &q.connection),
            ("group", &q.group),
            ("since", &q.since),
        ]);
        q2.push_str(&format!("&before={c}"));
        format!("/console/deliveries?{q2}")
    });
    let conns: Vec<Value> = connections
        .iter()
        .map(|c| json!({"name": c.name}))
        .collect();
    page.render(
        "deliveries.html",
        "deliveries",
        json!({"deliveries": rows, "connections": conns, "next": next,
               "filter": {"status": q.status, "connection": q.connection, "group": q.group, "since": q.since}}),
    )
    .into_response()
}

fn form_urlencoded(pairs: &[(&str, &String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn delivery(
    State(s): State<AppState>,
    ctx: Ctx,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let page = Page {
        state: &s,
        lang: ctx.lang,
        session: Some(&session),
        path: &ctx.path,
    };
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return (StatusCode::NOT_FOUND, page.word("not_found")).into_response();
    };
    let detail = match s.store.get_delivery(id).await {
        Ok(Some(d)) => d,
        Ok(None) => return (StatusCode::NOT_FOUND, page.word("not_found")).into_response(),
        Err(e) => return crate::api::error::ApiError::internal(e).into_response(),
    };
    let d = &detail.delivery;
    let connection = s
        .connections
        .get(&d.connection_id.to_string())
        .await
        .map_or_else(|_| d.connection_id.to_string(), |c| c.name);
    let attempts: Vec<Value> = detail
        .attempt_log
        .iter()
        .map(|a| {
            json!({"attempt": a.attempt,
                   "started_at": a.started_at.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
                   "outcome": a.outcome, "error": error_text(&a.error)})
        })
        .collect();
    page.render(
        "delivery.html",
        "deliveries",
        json!({
            "d": {
                "id": d.id, "status": d.status, "action": d.action, "connection": connection,
                "group": d.group_key.group_chat_id(), "attempts": d.attempts,
                "created_at": d.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                "error": error_text(&d.last_error),
                "code": d.last_error.as_ref().and_then(|e| e.dingtalk.as_ref()).map(|x| x.code.clone()),
                "result": d.result.as_ref().map(|r| serde_json::to_string_pretty(r).unwrap_or_default()),
                "input": serde_json::to_string_pretty(&d.input).unwrap_or_default(),
            },
            "attempts": attempts,
        }),
    )
    .into_response()
}

async fn retry_delivery(
    State(s): State<AppState>,
    ctx: Ctx,
    session: Session,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let page = Page {
        state: &s,
        lang: ctx.lang,
        session: Some(&session),
        path: &ctx.path,
    };
    if !session.csrf_ok(&f.csrf) {
        return bad_csrf();
    }
    if !session.may(Role::Operator) {
        return forbidden(&page);
    }
    let Ok(uuid) = uuid::Uuid::parse_str(&id) else {
        return (StatusCode::NOT_FOUND, page.word("not_found")).into_response();
    };
    match s.store.retry_failed(uuid).await {
        Ok(_) => {
            s.wake_engine();
            tracing::info!(delivery_id = %uuid, "failed delivery queued again from the console");
            Redirect::to(&format!("/console/deliveries/{uuid}")).into_response()
        }
        Err(crate::store::StoreError::NotFound { .. }) => {
            (StatusCode::NOT_FOUND, page.word("not_found")).into_response()
        }
        Err(crate::store::StoreError::InvalidTransition { .. }) => {
            Redirect::to(&format!("/console/deliveries/{uuid}")).into_response()
        }
        Err(e) => crate::api::error::ApiError::internal(e).into_response(),
    }
}

/// One input of an action's form, from its JSON Schema.
#[derive(Debug, serde::Serialize)]
struct FormField {
    name: String,
    /// text, textarea, select, checkbox, number, lines (a list of strings), json (anything else)
    kind: &'static str,
    required: bool,
    options: Vec<String>,
    help: String,
    default: Option<Value>,
}

fn types_of(schema: &Value) -> Vec<String> {
    match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The form of an action: one field per property of its input schema, in the schema's order.
fn form_fields(schema: &Value) -> Vec<FormField> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let Some(props) = schema["properties"].as_object() else {
        return Vec::new();
    };
    // The seed's order (the schema's object is read back sorted by name).
    const ORDER: &[&str] = &[
        "msg_type",
        "group_chat_id",
        "user_ids",
        "media_type",
        "subject",
        "content",
        "image_url",
        "redirect_url",
        "button_text",
        "buttons",
        "button_layout",
        "media_id",
        "file_url",
        "file",
        "file_name",
        "file_type",
        "process_query_key",
        "process_query_keys",
        "links",
        "at_mobiles",
        "at_user_ids",
        "at_all",
        "split",
    ];
    let rank = |n: &str| ORDER.iter().position(|o| *o == n).unwrap_or(ORDER.len());
    let mut props: Vec<(&String, &Value)> = props.iter().collect();
    props.sort_by_key(|(n, _)| rank(n));
    props
        .into_iter()
        .map(|(name, p)| {
            let types = types_of(p);
            let options: Vec<String> = p["enum"]
                .as_array()
                .map(|e| {
                    e.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .or_else(|| {
                    p["oneOf"].as_array().map(|one| {
                        one.iter()
                            .filter_map(|v| v["const"].as_str().map(str::to_owned))
                            .collect()
                    })
                })
                .unwrap_or_default();
            let kind = if !options.is_empty() {
                "select"
            } else if types.iter().any(|t| t == "boolean") {
                "checkbox"
            } else if types.iter().any(|t| t == "integer") {
                "number"
            } else if types.iter().any(|t| t == "array") && p["items"]["type"] == "string" {
                "lines"
            } else if types.iter().any(|t| t == "string") {
                if matches!(name.as_str(), "content" | "text") {
                    "textarea"
                } else {
                    "text"
                }
            } else {
                "json"
            };
            FormField {
                name: name.clone(),
                kind,
                required: required.contains(&name.as_str()),
                options,
                help: p["description"].as_str().unwrap_or_default().to_owned(),
                default: p.get("default").cloned(),
            }
        })
        .collect()
}

/// The action's input from the posted form; a field that cannot be read is an error at it.
fn input_from_form(
    fields: &[FormField],
    form: &std::collections::HashMap<String, String>,
) -> Result<Value, (String, String)> {
    let mut input = Map::new();
    for f in fields {
        let raw = form.get(&f.name).map(|v| v.trim()).unwrap_or_default();
        let value = match f.kind {
            "checkbox" => {
                if !form.contains_key(&format!("__bool_{}", f.name)) {
                    continue;
                }
                Value::Bool(form.contains_key(&f.name))
            }
            _ if raw.is_empty() => continue,
            "number" => Value::from(
                raw.parse::<i64>()
                    .map_err(|_| (f.name.clone(), "must be a whole number".to_owned()))?,
            ),
            "lines" => Value::Array(
                raw.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(Value::from)
                    .collect(),
            ),
            "json" => serde_json::from_str(raw)
                .map_err(|e| (f.name.clone(), format!("is not valid JSON: {e}")))?,
            // Text as typed (leading spaces of markdown matter; only blank is absent).
            _ => Value::from(form.get(&f.name).cloned().unwrap_or_default()),
        };
        input.insert(f.name.clone(), value);
    }
    Ok(Value::Object(input))
}

#[derive(Deserialize, Default)]
struct SendQuery {
    #[serde(default)]
    connection: String,
    #[serde(default)]
    action: String,
}

async fn send_page(
    State(s): State<AppState>,
    ctx: Ctx,
    session: Session,
    axum::extract::Query(q): axum::extract::Query<SendQuery>,
) -> Response {
    let page = Page {
        state: &s,
        lang: ctx.lang,
        session: Some(&session),
        path: &ctx.path,
    };
    if !session.may(Role::Operator) {
        return forbidden(&page);
    }
    render_send(
        &page,
        &q.connection,
        &q.action,
        Map::new(),
        Map::new(),
        StatusCode::OK,
    )
    .await
}

async fn render_send(
    page: &Page<'_>,
    connection: &str,
    action: &str,
    values: Map<String, Value>,
    errors: Map<String, Value>,
    status: StatusCode,
) -> Response {
    let connections = match page.state.connections.list().await {
        Ok(c) => c,
        Err(e) => return crate::api::error::ApiError::from(e).into_response(),
    };
    let chosen = connections
        .iter()
        .find(|c| c.name == connection)
        .or(connections.first());
    let kind = chosen.map_or(ConnectionKind::AppRobot, |c| c.kind);
    let actions: Vec<&crate::actions::ActionDef> = crate::actions::catalog()
        .iter()
        .filter(|d| d.connection_kind == kind)
        .collect();
    let def = actions
        .iter()
        .find(|d| d.name == action)
        .or(actions.first())
        .copied();
    let fields = def
        .map(|d| form_fields(&d.input_schema))
        .unwrap_or_default();
    let mut values = values;
    for f in &fields {
        if let (false, Some(d)) = (values.contains_key(&f.name), &f.default) {
            values.insert(f.name.clone(), d.clone());
        }
    }
    let list: Vec<Value> = connections
        .iter()
        .map(|c| json!({"name": c.name}))
        .collect();
    let acts: Vec<Value> = actions
        .iter()
        .map(|d| json!({"name": d.name, "title": format!("{} — {}", d.name, d.title)}))
        .collect();
    (
        status,
        page.render(
            "send.html",
            "send",
            json!({
                "connections": list,
                "connection": chosen.map(|c| c.name.clone()),
                "actions": acts,
                "action": def.map(|d| d.name),
                "fields": fields,
                "values": values,
                "errors": errors,
            }),
        ),
    )
        .into_response()
}

async fn send(
    State(s): State<AppState>,
    ctx: Ctx,
    session: Session,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> Response {
    let page = Page {
        state: &s,
        lang: ctx.lang,
        session: Some(&session),
        path: &ctx.path,
    };
    if !session.csrf_ok(form.get("csrf").map_or("", String::as_str)) {
        return bad_csrf();
    }
    if !session.may(Role::Operator) {
        return forbidden(&page);
    }
    let connection = form.get("__connection").cloned().unwrap_or_default();
    let action = form.get("__action").cloned().unwrap_or_default();
    let values: Map<String, Value> = form
        .iter()
        .filter(|(k, _)| !k.starts_with("__") && *k != "csrf")
        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
        .collect();
    let fail = |field: String, reason: String| {
        let mut errors = Map::new();
        errors.insert(field, Value::from(reason));
        errors
    };
    let (Some(def), Ok(conn)) = (
        crate::actions::spec(&action),
        s.connections.get(&connection).await,
    ) else {
        let errors = fail("_form".into(), page.word("not_found"));
        return render_send(
            &page,
            &connection,
            &action,
            values,
            errors,
            StatusCode::NOT_FOUND,
        )
        .await;
    };
    let fields = form_fields(&def.input_schema);
    let input = match input_from_form(&fields, &form) {
        Ok(i) => i,
        Err((field, reason)) => {
            let errors = fail(field, reason);
            return render_send(
                &page,
                &connection,
                &action,
                values,
                errors,
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    match crate::api::actions::queue(&s, &conn, def, input).await {
        Ok(d) => Redirect::to(&format!("/console/deliveries/{}", d.id)).into_response(),
        Err(e) => {
            // `buttons[1].url` is shown at `buttons`.
            let field = e
                .body
                .field
                .as_deref()
                .map(|f| f.split(['.', '[']).next().unwrap_or(f).to_owned())
                .filter(|f| fields.iter().any(|x| x.name == *f))
                .unwrap_or_else(|| "_form".into());
            let reason = match &e.body.field {
                Some(f) if field != "_form" && f != &field => format!("{f}: {}", e.body.message),
                _ => e.body.message.clone(),
            };
            let errors = fail(field, reason);
            let status =
                StatusCode::from_u16(e.status().as_u16()).unwrap_or(StatusCode::BAD_REQUEST);
            render_send(&page, &connection, &action, values, errors, status).await
        }
    }
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "console.css" => (
            include_str!("assets/console.css"),
            "text/css; charset=utf-8",
        ),
        "console.js" => (
            include_str!("assets/console.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    /// Every page template parses (they are compiled in; a typo would fail only at render).
    #[test]
    fn every_template_loads() {
        for name in [
            "layout.html",
            "sign_in.html",
            "connections.html",
            "connection_new.html",
            "deliveries.html",
            "delivery.html",
            "send.html",
        ] {
            super::TEMPLATES
                .get_template(name)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
