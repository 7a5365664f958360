//! `POST /media/upload?access_token=…` (docs/dingtalk-api.md §3): multipart `media` + `type`,
//! HTTP 200 with errcode on every failure.

mod common;

use common::{Ctx, json_of, start};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0];

async fn upload(ctx: &Ctx, query: &str, form: Form) -> Value {
    let resp = ctx
        .http
        .post(ctx.url(&format!("/media/upload?{query}")))
        .multipart(form)
        .send()
        .await
        .expect("request");
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "old API: always 200");
    body
}

fn form(media_type: &str, name: &str, bytes: Vec<u8>) -> Form {
    Form::new()
        .text("type", media_type.to_string())
        .part("media", Part::bytes(bytes).file_name(name.to_string()))
}

#[tokio::test]
async fn image_upload_returns_a_media_id_and_the_bytes_are_served() {
    let ctx = start().await;
    let token = ctx.token().await;
    let body = upload(
        &ctx,
        &format!("access_token={token}"),
        form("image", "chart.png", PNG.to_vec()),
    )
    .await;
    assert_eq!(body["errcode"], 0, "{body}");
    assert_eq!(body["errmsg"], "ok");
    assert_eq!(body["type"], "image");
    assert!(body["created_at"].as_i64().expect("created_at ms") > 1_600_000_000_000);
    let id = body["media_id"].as_str().expect("media_id");
    assert!(id.starts_with("@lADO"), "{id}");

    let encoded = common::urlencode(id);
    let resp = ctx
        .http
        .get(ctx.url(&format!("/_sim/media/{encoded}")))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.expect("bytes").as_ref(), PNG);

    let list: Value = ctx
        .http
        .get(ctx.url("/_sim/uploads"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(list[0]["file_name"], "chart.png");
    assert_eq!(list[0]["size"], PNG.len());
}

#[tokio::test]
async fn type_may_come_from_the_query_and_files_are_accepted() {
    let ctx = start().await;
    let token = ctx.token().await;
    let f = Form::new().part(
        "media",
        Part::bytes(b"%PDF-1.4".to_vec()).file_name("report.pdf"),
    );
    let body = upload(&ctx, &format!("access_token={token}&type=file"), f).await;
    assert_eq!(body["errcode"], 0, "{body}");
    assert_eq!(body["type"], "file");
}

#[tokio::test]
async fn token_errors() {
    let ctx = start().await;
    let body = upload(&ctx, "", form("image", "a.png", PNG.to_vec())).await;
    assert_eq!(
        body,
        json!({"errcode": 41001, "errmsg": "缺少access_token参数"})
    );
    let body = upload(
        &ctx,
        "access_token=nope",
        form("image", "a.png", PNG.to_vec()),
    )
    .await;
    assert_eq!(
        body,
        json!({"errcode": 40014, "errmsg": "不合法的access_token"})
    );
}

#[tokio::test]
async fn bad_type_format_size_and_missing_media() {
    let ctx = start().await;
    let token = ctx.token().await;
    let q = format!("access_token={token}");
    let body = upload(&ctx, &q, form("picture", "a.png", PNG.to_vec())).await;
    assert_eq!(
        body,
        json!({"errcode": 40004, "errmsg": "不合法的媒体文件类型"})
    );
    let body = upload(&ctx, &q, form("image", "a.tiff", PNG.to_vec())).await;
    assert_eq!(
        body,
        json!({"errcode": 40005, "errmsg": "不合法的文件类型"})
    );
    let body = upload(&ctx, &q, form("file", "a.exe", b"MZ".to_vec())).await;
    assert_eq!(body["errcode"], 40005);
    let body = upload(
        &ctx,
        &q,
        form("voice", "a.mp3", vec![0u8; 2 * 1024 * 1024 + 1]),
    )
    .await;
    assert_eq!(
        body,
        json!({"errcode": 40006, "errmsg": "不合法的文件大小"})
    );
    let body = upload(&ctx, &q, form("voice", "a.mp3", vec![0u8; 2 * 1024 * 1024])).await;
    assert_eq!(body["errcode"], 0, "exactly 2 MB is allowed");
    let body = upload(&ctx, &q, Form::new().text("type", "image")).await;
    assert_eq!(body, json!({"errcode": 40035, "errmsg": "不合法的参数"}));
    assert_eq!(ctx.sim.stats().rejected["40005"], 2);
}

#[tokio::test]
async fn a_21_mb_image_is_too_big() {
    let ctx = start().await;
    let token = ctx.token().await;
    let body = upload(
        &ctx,
        &format!("access_token={token}"),
        form("image", "big.jpg", vec![0u8; 21 * 1024 * 1024]),
    )
    .await;
    assert_eq!(body["errcode"], 40006);
}
