//! The two DingTalk error dialects (docs/dingtalk-api.md §8.1): api.dingtalk.com answers errors with
//! HTTP 4xx/5xx and `{"code","message","requestid"}`; oapi.dingtalk.com always answers HTTP 200
//! with `{"errcode","errmsg"}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::state::{SimState, request_id};

const NEW_API_CONTENT_TYPE: &str = "application/json;charset=utf-8";

/// A new-API success: the bare fields, with the gateway's headers.
pub(crate) fn new_ok(body: Value) -> Response {
    new_api_response(StatusCode::OK, body, &request_id())
}

/// A new-API error, counted in the stats under its code.
pub(crate) fn new_err(sim: &SimState, status: StatusCode, code: &str, message: &str) -> Response {
    sim.record_rejection(code);
    let rid = request_id();
    new_api_response(
        status,
        json!({"requestid": rid, "code": code, "message": message}),
        &rid,
    )
}

/// A new-API 400 with the message this simulator uses for that code.
pub(crate) fn bad_request(sim: &SimState, code: &str) -> Response {
    new_err(sim, StatusCode::BAD_REQUEST, code, new_api_message(code))
}

fn new_api_response(status: StatusCode, body: Value, rid: &str) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(NEW_API_CONTENT_TYPE),
    );
    h.insert(header::SERVER, HeaderValue::from_static("DingTalk/1.0.0"));
    if let Ok(v) = HeaderValue::from_str(rid) {
        h.insert("x-acs-request-id", v);
    }
    resp
}

/// An old-API success: `{"errcode":0,"errmsg":"ok", ...fields}`.
pub(crate) fn old_ok(fields: Value) -> Response {
    let mut body = json!({"errcode": 0, "errmsg": "ok"});
    if let (Some(obj), Value::Object(extra)) = (body.as_object_mut(), fields) {
        obj.extend(extra);
    }
    old_response(body)
}

/// An old-API error: still HTTP 200, counted in the stats under the errcode.
pub(crate) fn old_err(sim: &SimState, errcode: i64, errmsg: &str) -> Response {
    sim.record_rejection(&errcode.to_string());
    old_response(json!({"errcode": errcode, "errmsg": errmsg}))
}

fn old_response(body: Value) -> Response {
    let mut resp = (StatusCode::OK, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// New-API throttling answer (docs/dingtalk-api.md §5).
pub(crate) const QPS_CODE: &str = "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi";
pub(crate) const QPS_MESSAGE: &str = "您的企业应用调用钉钉开放平台当前接口的所有请求都被暂时禁用了";

/// Message texts. DingTalk documents the codes; most live texts are UNCONFIRMED, so these follow
/// the `错误描述:…;解决方案:…;` pattern seen in real traffic. Clients must match on codes only.
pub(crate) fn new_api_message(code: &str) -> &'static str {
    match code {
        "AuthenticationFailed.MissingParameter" => "缺少参数：x-acs-dingtalk-access-token",
        "InvalidAuthentication" => "不合法的access_token",
        "invalidClientIdOrSecret" => "无效的clientId或者clientSecret",
        "Missingbody" => "body is mandatory for this action.",
        "Invalidbody" => "Specified parameter body is not valid. JSON parsing error",
        "system.error" => "系统错误",
        "invalidParameter.msgBody.invalid" => "错误描述:请求体格式不正确;解决方案:请使用json格式;",
        "invalidParameter.robotCode.missing" => "错误描述:缺少robotCode;解决方案:请填写robotCode;",
        "invalidParameter.robotCode.notExsit" => {
            "错误描述: robot 不存在；解决方案:请确认 robotCode 是否正确；"
        }
        "invalidParameter.robotCode.auth" => {
            "错误描述:robotCode与accessToken的应用不匹配;解决方案:请使用机器人所属应用的accessToken;"
        }
        "invalidParameter.robotCode.empty" => {
            "错误描述:机器人不在群内或robotCode无效;解决方案:请确认机器人已添加到该群;"
        }
        "miss.openConversationId" => "错误描述:缺少openConversationId;解决方案:请填写群会话ID;",
        "invalid.openConversationId" => {
            "错误描述:openConversationId无效;解决方案:请确认群会话ID正确;"
        }
        "invalidParameter.msgKey.empty" => "错误描述:msgKey为空;解决方案:请填写msgKey;",
        "invalidParameter.msgKey.invalid" => {
            "错误描述: 不支持类型 msgKey ;解决方案:请使用支持的类型;"
        }
        "invalidParameter.msgParam.invalid" => {
            "错误描述:msgParam格式不正确;解决方案:请使用json格式;"
        }
        "invalidParameter.msgParam.tooLong" => {
            "错误描述:msgParam超过长度限制;解决方案:请将msgParam控制在15000字节以内;"
        }
        "invalidParameter.userIds.empty" => "错误描述:userIds为空;解决方案:请填写接收人;",
        "invalidParameter.userIds.overMax" => "错误描述:userIds超过上限20;解决方案:请分批发送;",
        "invalidParameter.pageSize.invalid" => {
            "错误描述:maxResults不合法;解决方案:请填写1到200之间的值;"
        }
        "invalidParameter.cursor.invalid" => {
            "错误描述:nextToken不合法;解决方案:请使用上次返回的nextToken;"
        }
        "invalidParameter.processQueryKey.missing" => {
            "错误描述:缺少processQueryKey;解决方案:请填写processQueryKey;"
        }
        "invalid.processQueryKey" => {
            "错误描述:processQueryKey无效;解决方案:请确认processQueryKey正确;"
        }
        "processQueryKey.expireTime" => {
            "错误描述:processQueryKey已过期;解决方案:只能查询24小时内的消息;"
        }
        "robot.processQueryKey.expired" => {
            "错误描述:processQueryKey已过期;解决方案:只能撤回24小时内的消息;"
        }
        "invalidParameter.processQueryKeys.overMax" => {
            "错误描述:processQueryKeys超过上限20;解决方案:请分批撤回;"
        }
        c if c.starts_with("miss.param.") => {
            "错误描述:msgParam缺少必填参数;解决方案:请按消息模板填写参数;"
        }
        _ => "错误描述:参数错误;",
    }
}

/// A fault that replaces the normal answer (delay and drop are handled by [`fault_answer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultAnswer {
    QpsLimit,
    ServerError,
    TokenInvalid,
}

/// Applies a scripted fault for this route, if one fires: waits for `delay`, never returns for
/// `drop` (the connection is closed), and hands back the faults that need an API-specific answer.
pub(crate) async fn fault_answer(
    sim: &SimState,
    conn: &crate::server::ConnControl,
    route: crate::model::RouteName,
) -> Option<FaultAnswer> {
    use crate::model::FaultKind;
    let hit = sim.take_fault(route)?;
    match hit.kind {
        FaultKind::Delay => {
            tokio::time::sleep(std::time::Duration::from_millis(hit.delay_ms)).await;
            None
        }
        FaultKind::Drop => conn.drop_connection().await,
        FaultKind::QpsLimit => Some(FaultAnswer::QpsLimit),
        FaultKind::ServerError => Some(FaultAnswer::ServerError),
        FaultKind::TokenInvalid => Some(FaultAnswer::TokenInvalid),
    }
}

/// The new-API (api.dingtalk.com) answer to an injected fault.
pub(crate) fn new_api_fault(sim: &SimState, answer: FaultAnswer) -> Response {
    match answer {
        FaultAnswer::QpsLimit => new_err(sim, StatusCode::FORBIDDEN, QPS_CODE, QPS_MESSAGE),
        FaultAnswer::ServerError => new_err(
            sim,
            StatusCode::INTERNAL_SERVER_ERROR,
            "system.error",
            new_api_message("system.error"),
        ),
        FaultAnswer::TokenInvalid => bad_request(sim, "InvalidAuthentication"),
    }
}

/// Old-API throttling errcode (docs/dingtalk-api.md §5); its live errmsg is UNCONFIRMED.
pub(crate) const OLD_QPS_ERRCODE: i64 = 90018;
pub(crate) const SERVER_BUSY_ERRCODE: i64 = -1;
pub(crate) const SERVER_BUSY_ERRMSG: &str = "系统繁忙";
