//! Send (try an action): pick a connection and an action; a form made from the action's JSON
//! Schema (the seed's labels, enums as selects, a file picker for files and images, the group
//! chosen from the groups the connection knows); a live preview of the message as DingTalk
//! shows it (the simulator's renderer, `dingtalk-render`); send, through the same validation
//! and queue as the REST API.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Multipart, Query};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::i18n::Lang;
use super::{Page, SignedIn, check};
use crate::actions::{ActionDef, MessageSpec, Step};
use crate::api::AppState;
use crate::connections::{Connection, ConnectionKind};
use crate::store::Role;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/send", get(page).post(send))
        .route("/console/send/preview", post(preview))
}

/// One input of an action's form, from its JSON Schema.
#[derive(Debug, serde::Serialize)]
struct FormField {
    name: String,
    /// The seed's label for it, in the reader's language.
    label: String,
    /// text, textarea, select, checkbox, number, lines (a list of strings), file (a file picked
    /// from disk), json (anything else)
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
fn form_fields(schema: &Value, lang: Lang) -> Vec<FormField> {
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
            } else if p["properties"]["content_base64"].is_object() {
                "file"
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
                label: lang.label(name).unwrap_or(name).to_owned(),
                name: name.clone(),
                kind,
                required: required.contains(&name.as_str()),
                options,
                help: lang
                    .help(name)
                    .or(p["description"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
                default: p.get("default").cloned(),
            }
        })
        .collect()
}

/// A posted Send form: its text fields and its files (name, bytes).
#[derive(Default)]
struct Posted {
    text: HashMap<String, String>,
    files: HashMap<String, (String, Vec<u8>)>,
}

impl Posted {
    async fn read(mut m: Multipart) -> Result<Posted, String> {
        let mut p = Posted::default();
        while let Some(field) = m.next_field().await.map_err(|e| e.body_text())? {
            let name = field.name().unwrap_or_default().to_owned();
            match field.file_name().map(str::to_owned) {
                Some(file_name) => {
                    let bytes = field.bytes().await.map_err(|e| e.body_text())?;
                    // An empty picker posts a part with no name and no bytes.
                    if !file_name.is_empty() {
                        p.files.insert(name, (file_name, bytes.to_vec()));
                    }
                }
                None => {
                    let text = field.text().await.map_err(|e| e.body_text())?;
                    p.text.insert(name, text);
                }
            }
        }
        Ok(p)
    }

    fn get(&self, key: &str) -> &str {
        self.text.get(key).map_or("", String::as_str)
    }
}

/// The action's input from the posted form; a field that cannot be read is an error at it.
/// With `preview`, a picked file stands for itself by name only (the browser does not send its
/// bytes while the user types).
fn input_from_form(
    fields: &[FormField],
    form: &Posted,
    preview: bool,
) -> Result<Value, (String, String)> {
    let mut input = Map::new();
    for f in fields {
        let raw = form.get(&f.name).trim();
        let value = match f.kind {
            "checkbox" => {
                if !form.text.contains_key(&format!("__bool_{}", f.name)) {
                    continue;
                }
                Value::Bool(form.text.contains_key(&f.name))
            }
            "file" => {
                let picked = match form.files.get(&f.name) {
                    Some((name, bytes)) => Some((name.clone(), bytes.clone())),
                    None if preview => form
                        .text
                        .get(&format!("__picked_{}", f.name))
                        .filter(|n| !n.is_empty())
                        .map(|n| (n.clone(), vec![0u8])),
                    None => None,
                };
                let Some((name, bytes)) = picked else {
                    continue;
                };
                json!({"name": name,
                       "content_base64": base64::engine::general_purpose::STANDARD.encode(bytes)})
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
            _ => Value::from(form.get(&f.name)),
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
    /// A group to fill in (from the Conversations page).
    #[serde(default)]
    group: String,
}

async fn page(c: SignedIn, Query(q): Query<SendQuery>) -> Response {
    check!(c.may(Role::Operator));
    let mut values = Map::new();
    if !q.group.is_empty() {
        values.insert("group_chat_id".into(), Value::from(q.group.clone()));
    }
    render(
        &c,
        &q.connection,
        &q.action,
        values,
        Map::new(),
        StatusCode::OK,
    )
    .await
}

/// The groups a connection knows, newest first: the Send page offers them.
async fn known_groups(page: &Page, connection_id: uuid::Uuid) -> Vec<String> {
    // The groups its robot has heard from (Stream mode), then those it has sent to.
    let heard: Vec<String> = match page.state.store.list_conversations(connection_id).await {
        Ok(list) => list
            .into_iter()
            .filter(|c| c.conversation.group)
            .map(|c| c.conversation.id)
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "could not list the conversations a connection knows");
            Vec::new()
        }
    };
    match page.state.store.recent_groups(connection_id, 500).await {
        Ok(sent) => {
            let mut groups = heard;
            for g in sent {
                if !groups.contains(&g) {
                    groups.push(g);
                }
            }
            groups
        }
        // Only a convenience is missing: the field still takes any id.
        Err(e) => {
            tracing::warn!(error = %e, "could not list the groups a connection knows");
            Vec::new()
        }
    }
}

fn actions_for(kind: ConnectionKind) -> Vec<&'static ActionDef> {
    crate::actions::catalog()
        .iter()
        .filter(|d| d.connection_kind == kind)
        .collect()
}

async fn render(
    page: &Page,
    connection: &str,
    action: &str,
    values: Map<String, Value>,
    errors: Map<String, Value>,
    status: StatusCode,
) -> Response {
    let connections = match page.state.store.connection_names().await {
        Ok(c) => c,
        Err(e) => return page.failed(crate::api::error::ApiError::internal(e)),
    };
    let chosen = connections
        .iter()
        .find(|c| c.name == connection)
        .or(connections.first());
    let kind = chosen.map_or(ConnectionKind::AppRobot, |c| c.kind);
    let actions = actions_for(kind);
    let def = actions
        .iter()
        .find(|d| d.name == action)
        .or(actions.first())
        .copied();
    let fields = def
        .map(|d| form_fields(&d.input_schema, page.lang))
        .unwrap_or_default();
    let mut values = values;
    for f in &fields {
        if let (false, Some(d)) = (values.contains_key(&f.name), &f.default) {
            values.insert(f.name.clone(), d.clone());
        }
    }
    let groups = match chosen {
        Some(conn) => known_groups(page, conn.id).await,
        None => Vec::new(),
    };
    let list: Vec<Value> = connections
        .iter()
        .map(|c| json!({"name": c.name}))
        .collect();
    let acts: Vec<Value> = actions
        .iter()
        .map(|d| json!({"name": d.name, "title": format!("{} — {}", d.name, page.lang.action_title(d.name).unwrap_or(d.title))}))
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
                "description": def.map(|d| d.description),
                "fields": fields,
                "values": values,
                "errors": errors,
                "groups": groups,
                "path": "/console/send",
            }),
        ),
    )
        .into_response()
}

/// The posted form's connection, action and fields, or the page that says what is missing.
async fn chosen(
    page: &Page,
    form: &Posted,
) -> Result<(Connection, &'static ActionDef, Vec<FormField>), (String, String)> {
    let connection = form.get("__connection");
    let action = form.get("__action");
    let conn = page.state.connections.get(connection).await.map_err(|_| {
        (
            "_form".to_owned(),
            format!("{}: {connection}", page.word("not_found")),
        )
    })?;
    let def = crate::actions::spec(action).ok_or_else(|| {
        (
            "_form".to_owned(),
            format!("{}: {action}", page.word("not_found")),
        )
    })?;
    Ok((conn, def, form_fields(&def.input_schema, page.lang)))
}

/// A refusal of the API's validation, at the form's field it is about (`buttons[1].url` is
/// shown at `buttons`).
fn at_field(fields: &[FormField], e: &crate::api::error::ApiError) -> (String, String) {
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
    (field, reason)
}

async fn send(c: SignedIn, m: Multipart) -> Response {
    let form = match Posted::read(m).await {
        Ok(f) => f,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    check!(c.post(Role::Operator, form.get("csrf")));
    let connection = form.get("__connection").to_owned();
    let action = form.get("__action").to_owned();
    let values: Map<String, Value> = form
        .text
        .iter()
        .filter(|(k, _)| !k.starts_with("__") && *k != "csrf")
        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
        .collect();
    let again = |field: String, reason: String, status: StatusCode| {
        let mut errors = Map::new();
        errors.insert(field, Value::from(c.lang.reason(&reason)));
        render(&c, &connection, &action, values.clone(), errors, status)
    };
    let (conn, def, fields) = match chosen(&c, &form).await {
        Ok(x) => x,
        Err((field, reason)) => return again(field, reason, StatusCode::NOT_FOUND).await,
    };
    let input = match input_from_form(&fields, &form, false) {
        Ok(i) => i,
        Err((field, reason)) => return again(field, reason, StatusCode::BAD_REQUEST).await,
    };
    match crate::api::actions::queue(&c.state, &conn, def, input).await {
        Ok(d) => Redirect::to(&format!("/console/deliveries/{}", d.id)).into_response(),
        Err(e) => {
            let (field, reason) = at_field(&fields, &e);
            let status =
                StatusCode::from_u16(e.status().as_u16()).unwrap_or(StatusCode::BAD_REQUEST);
            again(field, reason, status).await
        }
    }
}

/// The live preview: the message(s) the form would send, as the DingTalk client shows them,
/// or why it would be refused. Nothing is sent or stored.
async fn preview(c: SignedIn, m: Multipart) -> Response {
    let form = match Posted::read(m).await {
        Ok(f) => f,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    check!(c.post(Role::Operator, form.get("csrf")));
    let refused = |field: String, reason: String| {
        let at = if field == "_form" {
            String::new()
        } else {
            format!("{field}: ")
        };
        Html(format!(
            r#"<p class="error" data-field="{}">{}{}</p>"#,
            dingtalk_render::esc(&field),
            dingtalk_render::esc(&at),
            dingtalk_render::esc(&reason)
        ))
        .into_response()
    };
    let (conn, def, fields) = match chosen(&c, &form).await {
        Ok(x) => x,
        Err((field, reason)) => return refused(field, reason),
    };
    let input = match input_from_form(&fields, &form, true) {
        Ok(i) => i,
        Err((field, reason)) => return refused(field, reason),
    };
    let validated = match def.validate(input) {
        Ok(v) => v,
        Err(e) => {
            let e = crate::api::error::ApiError::from(e);
            let (field, reason) = at_field(&fields, &e);
            return refused(field, reason);
        }
    };
    if let Err(e) = validated.check_keywords(&conn.keywords) {
        let (field, reason) = at_field(&fields, &e.into());
        return refused(field, reason);
    }
    Html(preview_html(validated.steps())).into_response()
}

/// Each message a plan sends, rendered; a plan that sends none (recall, query) says what it does.
pub(super) fn preview_html(steps: &[Step]) -> String {
    let media = dingtalk_render::NoMedia;
    let mut uploaded: Option<String> = None;
    let mut html = String::new();
    for step in steps {
        let bubble = match step {
            Step::Upload { file_name, .. } => {
                uploaded = Some(file_name.clone());
                continue;
            }
            Step::GroupSend { message, .. }
            | Step::OtoSend { message, .. }
            | Step::Reply { message, .. } => app_bubble(&media, message, uploaded.as_deref()),
            Step::Webhook { message, mentions } => {
                let body = crate::actions::webhook_message(message, mentions)
                    .to_body()
                    .ok();
                let body: Value = body
                    .and_then(|b| serde_json::from_str(&b).ok())
                    .unwrap_or(Value::Null);
                let msgtype = body["msgtype"].as_str().unwrap_or_default();
                dingtalk_render::webhook_message(&media, msgtype, &body[msgtype], body.get("at"))
            }
            Step::Query { .. } | Step::Recall { .. } => {
                r#"<p class="muted">This action sends no message.</p>"#.to_owned()
            }
        };
        html.push_str(&format!(r#"<div class="msg">{bubble}</div>"#));
    }
    html
}

fn app_bubble(
    media: &dyn dingtalk_render::Media,
    message: &MessageSpec,
    uploaded: Option<&str>,
) -> String {
    // An upload's media id is known only once DingTalk has it: the preview names the file.
    let placeholder = uploaded.map(|name| format!("@{name}"));
    match message.to_message(placeholder.as_deref()) {
        Ok(m) => dingtalk_render::app_message(media, &m.msg_key(), &m.msg_param_value()),
        Err(e) => format!(
            r#"<p class="error">{}</p>"#,
            dingtalk_render::esc(&e.reason())
        ),
    }
}
