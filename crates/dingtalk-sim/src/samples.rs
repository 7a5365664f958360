//! Sample files the simulator hosts (`GET /_sim/samples/{name}`), so a sandbox's link cards,
//! images and `file_url`s work without the internet.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// `(name, content type, bytes)` of every sample.
pub const SAMPLES: &[(&str, &str, &[u8])] = &[
    (
        "chart.png",
        "image/png",
        include_bytes!("../assets/chart.png"),
    ),
    (
        "logo.png",
        "image/png",
        include_bytes!("../assets/logo.png"),
    ),
    (
        "report.pdf",
        "application/pdf",
        include_bytes!("../assets/report.pdf"),
    ),
];

pub(crate) async fn sample(Path(name): Path<String>) -> Response {
    match SAMPLES.iter().find(|(n, ..)| *n == name) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            *bytes,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({
                "error": format!("no sample `{name}`; there are chart.png, logo.png and report.pdf")
            })),
        )
            .into_response(),
    }
}
