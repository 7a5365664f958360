//! Media upload on the old API: `POST /media/upload?access_token=…` (docs/dingtalk-api.md §3), and
//! admin routes to list uploads and fetch stored image bytes for the chat page.

use axum::Extension;
use axum::Json;
use axum::extract::{Multipart, Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::auth::query_map;
use crate::model::RouteName;
use crate::reply::{
    FaultAnswer, OLD_QPS_ERRCODE, QPS_MESSAGE, SERVER_BUSY_ERRCODE, SERVER_BUSY_ERRMSG,
    fault_answer, old_err, old_ok,
};
use crate::server::ConnControl;
use crate::state::{Sim, Upload, media_id};

const MB: usize = 1024 * 1024;
/// Images up to this size keep their bytes so the chat page can show them.
const KEEP_IMAGE_BYTES: usize = 5 * MB;
const BAD_TOKEN: (i64, &str) = (40014, "不合法的access_token");

/// Allowed formats and size per media type (current upload page; older, stricter limits are
/// UNCONFIRMED and not enforced).
fn rules(media_type: &str) -> Option<(&'static [&'static str], usize)> {
    match media_type {
        "image" => Some((&["jpg", "jpeg", "gif", "png", "bmp"], 20 * MB)),
        "voice" => Some((&["amr", "mp3", "wav"], 2 * MB)),
        "video" => Some((&["mp4"], 20 * MB)),
        "file" => Some((
            &[
                "doc", "docx", "xls", "xlsx", "ppt", "pptx", "zip", "pdf", "rar",
            ],
            20 * MB,
        )),
        _ => None,
    }
}

struct Part {
    file_name: String,
    content_type: String,
    bytes: Bytes,
}

pub(crate) async fn upload(
    State(sim): State<Sim>,
    Extension(conn): Extension<ConnControl>,
    RawQuery(query): RawQuery,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    if let Some(answer) = fault_answer(&sim, &conn, RouteName::MediaUpload).await {
        return match answer {
            FaultAnswer::QpsLimit => old_err(&sim, OLD_QPS_ERRCODE, QPS_MESSAGE),
            FaultAnswer::ServerError => old_err(&sim, SERVER_BUSY_ERRCODE, SERVER_BUSY_ERRMSG),
            FaultAnswer::TokenInvalid => old_err(&sim, BAD_TOKEN.0, BAD_TOKEN.1),
        };
    }
    let params = query_map(query.as_deref());
    let Some(token) = params.get("access_token") else {
        return old_err(&sim, 41001, "缺少access_token参数");
    };
    let Some(app_key) = sim.token_app(token) else {
        return old_err(&sim, BAD_TOKEN.0, BAD_TOKEN.1);
    };
    if !sim.admit_app_request(&app_key, RouteName::MediaUpload) {
        return old_err(&sim, OLD_QPS_ERRCODE, QPS_MESSAGE);
    }
    let Ok(mut multipart) = multipart else {
        return old_err(&sim, 40035, "不合法的参数");
    };
    let mut media_type = params.get("type").cloned();
    let mut media: Option<Part> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return old_err(&sim, 40006, "不合法的文件大小");
            }
            Err(_) => return old_err(&sim, 40035, "不合法的参数"),
        };
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().unwrap_or_default().to_string();
        let content_type = field.content_type().unwrap_or_default().to_string();
        let bytes = match field.bytes().await {
            Ok(b) => b,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return old_err(&sim, 40006, "不合法的文件大小");
            }
            Err(_) => return old_err(&sim, 40035, "不合法的参数"),
        };
        match name.as_str() {
            "type" => media_type = Some(String::from_utf8_lossy(&bytes).trim().to_string()),
            "media" => {
                media = Some(Part {
                    file_name,
                    content_type,
                    bytes,
                })
            }
            // Other parts (e.g. SDK extras) are ignored, as a lenient server would.
            _ => {}
        }
    }
    let media_type = media_type.unwrap_or_default();
    let Some((formats, max_size)) = rules(&media_type) else {
        return old_err(&sim, 40004, "不合法的媒体文件类型");
    };
    let Some(part) = media else {
        return old_err(&sim, 40035, "不合法的参数");
    };
    let ext = extension(&part.file_name, &part.content_type);
    if !formats.contains(&ext.as_str()) {
        return old_err(&sim, 40005, "不合法的文件类型");
    }
    if part.bytes.len() > max_size {
        return old_err(&sim, 40006, "不合法的文件大小");
    }
    let id = media_id();
    let keep = media_type == "image" && part.bytes.len() <= KEEP_IMAGE_BYTES;
    let upload = Upload {
        media_id: id.clone(),
        file_name: part.file_name,
        media_type: media_type.clone(),
        size: part.bytes.len(),
        content_type: if part.content_type.is_empty() {
            content_type_for(&ext).to_string()
        } else {
            part.content_type
        },
        bytes: keep.then_some(part.bytes),
    };
    sim.lock().uploads.push(upload);
    old_ok(json!({"media_id": id, "created_at": sim.now_ms(), "type": media_type}))
}

/// The file's format: the file name's extension, else the MIME subtype.
fn extension(file_name: &str, content_type: &str) -> String {
    if let Some((_, ext)) = file_name.rsplit_once('.') {
        return ext.to_ascii_lowercase();
    }
    match content_type.to_ascii_lowercase().as_str() {
        "image/jpeg" => "jpg".into(),
        "audio/mpeg" => "mp3".into(),
        ct => ct.rsplit('/').next().unwrap_or_default().to_string(),
    }
}

fn content_type_for(ext: &str) -> &'static str {
    match ext {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        _ => "application/octet-stream",
    }
}

pub(crate) async fn download(State(sim): State<Sim>, Path(id): Path<String>) -> Response {
    let inner = sim.lock();
    let found = inner
        .uploads
        .iter()
        .find(|u| u.media_id == id)
        .and_then(|u| Some((u.bytes.clone()?, u.content_type.clone())));
    drop(inner);
    match found {
        Some((bytes, ct)) => {
            let mut resp = bytes.into_response();
            if let Ok(v) = HeaderValue::from_str(&ct) {
                resp.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            resp
        }
        None => (StatusCode::NOT_FOUND, "no stored bytes for this media id").into_response(),
    }
}

/// `GET /_sim/uploads`: metadata of every upload.
pub(crate) async fn list(State(sim): State<Sim>) -> Json<Value> {
    let inner = sim.lock();
    Json(Value::Array(
        inner
            .uploads
            .iter()
            .map(|u| {
                json!({
                    "media_id": u.media_id,
                    "file_name": u.file_name,
                    "type": u.media_type,
                    "size": u.size,
                    "content_type": u.content_type,
                })
            })
            .collect(),
    ))
}

/// Metadata for the chat page (file name and type of a media id).
pub(crate) fn describe(sim: &Sim, id: &str) -> Option<(String, String, usize)> {
    sim.lock()
        .uploads
        .iter()
        .find(|u| u.media_id == id)
        .map(|u| (u.file_name.clone(), u.media_type.clone(), u.size))
}
