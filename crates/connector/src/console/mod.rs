//! The web console at `/console` (`/` redirects there): server-rendered pages (MiniJinja, HTML
//! auto-escaped) with a little plain JavaScript, all compiled into the binary — no CDN, works
//! offline. It calls the same domain layer as the REST API (`Connections`, the action catalog,
//! `Flows`, the probe), so one place decides what a valid connection, input or flow is.
//! Sessions are signed cookies ([`session`]); every form carries the session's CSRF value;
//! every page is sent with a strict Content-Security-Policy (scripts and styles from this
//! server's files only).

// A handler's early answer is a whole page (`Result<_, Response>`): made at most once a
// request, so its size does not matter.
#![allow(clippy::result_large_err)]

mod connections;
mod conversations;
mod deliveries;
mod flows;
mod i18n;
mod send;
pub mod session;
mod tokens;

use std::sync::LazyLock;

use axum::Router;
use axum::extract::{Form, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::Environment;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::AppState;
use crate::store::Role;
use i18n::Lang;
use session::{Session, SignInFirst};

/// Every page template, by name.
const PAGES: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html")),
    ("problem.html", include_str!("templates/problem.html")),
    ("sign_in.html", include_str!("templates/sign_in.html")),
    ("deliveries.html", include_str!("templates/deliveries.html")),
    ("send.html", include_str!("templates/send.html")),
    ("delivery.html", include_str!("templates/delivery.html")),
    (
        "connections.html",
        include_str!("templates/connections.html"),
    ),
    (
        "connection_form.html",
        include_str!("templates/connection_form.html"),
    ),
    ("tokens.html", include_str!("templates/tokens.html")),
    ("flows.html", include_str!("templates/flows.html")),
    ("flow.html", include_str!("templates/flow.html")),
    ("runs.html", include_str!("templates/runs.html")),
    (
        "conversations.html",
        include_str!("templates/conversations.html"),
    ),
    ("run.html", include_str!("templates/run.html")),
];

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in PAGES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("console template {name}: {e}"));
    }
    env
});

/// `connect-src 'self'`: the Send page's live preview and the flow editor's checks ask this
/// server as the user types.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

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
        .merge(connections::routes())
        .merge(send::routes())
        .merge(deliveries::routes())
        .merge(tokens::routes())
        .merge(flows::routes())
        .merge(conversations::routes())
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

/// A console request: the state, the reader's language, the page's path and, when signed in,
/// the session. Every page renders through it.
pub(crate) struct Page {
    state: AppState,
    lang: Lang,
    session: Option<Session>,
    path: String,
}

impl FromRequestParts<AppState> for Page {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Page {
            state: state.clone(),
            lang: Lang::of(parts),
            session: Session::from_request_parts(parts, state).await.ok(),
            path: parts.uri.path().to_owned(),
        })
    }
}

impl Page {
    fn render(&self, template: &str, page: &str, extra: Value) -> Html<String> {
        let settings = &self.state.settings;
        let session = self.session.as_ref();
        let mut ctx = json!({
            "t": self.lang.words(),
            "lang": self.lang.code(),
            "page": page,
            "path": self.path,
            "sandbox": settings.sandbox,
            "sandbox_chat": format!("{}/", settings.dingtalk_api_base.trim_end_matches('/')),
            "session": session.map(|s| json!({"role": s.role.as_str(), "csrf": s.csrf})),
            "may_admin": session.is_some_and(|s| s.may(Role::Admin)),
            "may_operate": session.is_some_and(|s| s.may(Role::Operator)),
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

    /// A page that says only what went wrong, with the right status.
    fn problem(&self, status: StatusCode, text: &str) -> Response {
        let flash = json!({"flash": {"kind": "bad", "text": text}});
        (status, self.render("problem.html", "", flash)).into_response()
    }

    fn not_found(&self) -> Response {
        self.problem(StatusCode::NOT_FOUND, &self.word("not_found"))
    }

    /// A failure of the layer below, as the REST API would answer it (logged there).
    fn failed(&self, e: impl Into<crate::api::error::ApiError>) -> Response {
        e.into().into_response()
    }
}

/// A console request from a signed-in user; without a valid session the browser is sent to
/// sign in.
pub(crate) struct SignedIn {
    page: Page,
    session: Session,
}

impl std::ops::Deref for SignedIn {
    type Target = Page;
    fn deref(&self) -> &Page {
        &self.page
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = SignInFirst;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let page = Page::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        let session = page.session.clone().ok_or(SignInFirst)?;
        Ok(SignedIn { page, session })
    }
}

impl SignedIn {
    /// A page only `role` and above may see; others are told so (and nothing is offered).
    fn may(&self, role: Role) -> Result<(), Response> {
        if self.session.may(role) {
            Ok(())
        } else {
            Err(self.problem(StatusCode::FORBIDDEN, &self.word("forbidden")))
        }
    }

    /// A form post: its CSRF value must be this session's, and the role high enough.
    fn post(&self, role: Role, csrf: &str) -> Result<(), Response> {
        if !self.session.csrf_ok(csrf) {
            return Err((
                StatusCode::FORBIDDEN,
                "This form expired; reload the page and try again.",
            )
                .into_response());
        }
        self.may(role)
    }
}

/// `Ok` or the response that ends the handler.
macro_rules! check {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(resp) => return resp,
        }
    };
}
pub(crate) use check;

/// A form that carries only its CSRF value.
#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// A trimmed value, `None` when blank.
fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// A path segment, percent-encoded.
fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A time as the console shows it.
fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

async fn sign_in_page(page: Page) -> Html<String> {
    page.render("sign_in.html", "sign-in", json!({}))
}

#[derive(Deserialize)]
struct SignIn {
    token: String,
}

async fn sign_in(page: Page, Form(f): Form<SignIn>) -> Response {
    let token = f.token.trim();
    let caller = if token.is_empty() {
        None
    } else {
        match page.state.tokens.check(token).await {
            Ok(c) => c,
            Err(e) => return e.into_response(),
        }
    };
    let Some(caller) = caller else {
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
        [(header::SET_COOKIE, session.cookie(&page.state))],
        Redirect::to("/console/connections"),
    )
        .into_response()
}

async fn sign_out(c: SignedIn, Form(f): Form<CsrfOnly>) -> Response {
    check!(c.post(Role::Viewer, &f.csrf));
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
        // DingTalk's look for previews, the same stylesheet the simulator's chat page uses.
        "dingtalk.css" => (dingtalk_render::CSS, "text/css; charset=utf-8"),
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
        for (name, _) in super::PAGES {
            super::TEMPLATES
                .get_template(name)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
