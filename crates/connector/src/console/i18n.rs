//! The console's words in English and Simplified Chinese. The language is the `dtc_lang`
//! cookie (switchable on every page, remembered), else the browser's `Accept-Language`.

use axum::http::request::Parts;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "en" => Some(Lang::En),
            "zh" | "zh-CN" => Some(Lang::Zh),
            _ => None,
        }
    }

    pub fn of(parts: &Parts) -> Self {
        if let Some(l) = super::session::cookie(parts, "dtc_lang").and_then(Lang::parse) {
            return l;
        }
        let accept = parts
            .headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if accept.trim_start().to_ascii_lowercase().starts_with("zh") {
            Lang::Zh
        } else {
            Lang::En
        }
    }

    /// Every word, by key, for templates (`{{ t.new_connection }}`).
    pub fn words(self) -> Value {
        let mut m = Map::new();
        for (key, en, zh) in WORDS {
            m.insert(
                (*key).to_owned(),
                Value::from(match self {
                    Lang::En => *en,
                    Lang::Zh => *zh,
                }),
            );
        }
        Value::Object(m)
    }
}

/// (key, English, 简体中文)
const WORDS: &[(&str, &str, &str)] = &[
    ("console", "dtc console", "dtc 控制台"),
    ("sign_in", "Sign in", "登录"),
    (
        "sign_in_intro",
        "Sign in with an API token (dtc serve prints one).",
        "使用 API 令牌登录（dtc serve 启动时会打印）。",
    ),
    ("api_token", "API token", "API 令牌"),
    ("sign_in_failed", "This token is not valid.", "令牌无效。"),
    ("sign_out", "Sign out", "退出"),
    ("language", "Language", "语言"),
    ("connector", "Connector", "连接器"),
    ("connections", "Connections", "连接"),
    ("new_connection", "New Connection", "新建连接"),
    ("connector_type", "Connector", "连接器类型"),
    (
        "dingtalk_app_robot",
        "DingTalk (app robot)",
        "钉钉（企业内部应用机器人）",
    ),
    (
        "dingtalk_webhook_robot",
        "DingTalk (webhook robot)",
        "钉钉（自定义机器人 Webhook）",
    ),
    ("name", "Name", "连接名称"),
    (
        "name_help",
        "Letters, digits, '-', '_' and '.'; how actions and flows refer to it.",
        "字母、数字、'-'、'_'、'.'；动作和流程用它来引用连接。",
    ),
    ("app_key", "AppKey", "AppKey"),
    ("app_secret", "AppSecret", "AppSecret"),
    ("robot_code", "RobotCode", "RobotCode"),
    (
        "robot_code_help",
        "Usually the same as the AppKey.",
        "通常与 AppKey 相同。",
    ),
    ("description", "Description", "描述"),
    ("access_token", "Access token", "Access token"),
    (
        "signing_secret",
        "Signing secret (SEC…)",
        "加签密钥（SEC…）",
    ),
    (
        "keywords",
        "Keywords (comma-separated)",
        "自定义关键词（逗号分隔）",
    ),
    ("ok", "OK", "确定"),
    ("cancel", "Cancel", "取消"),
    ("delete", "Delete", "删除"),
    (
        "delete_confirm",
        "Delete this connection? Its delivery log stays.",
        "删除此连接？投递记录会保留。",
    ),
    ("test", "Test", "测试"),
    ("test_ok", "Connection works", "连接正常"),
    ("test_failed", "Connection test failed", "连接测试失败"),
    ("created", "Connection created", "连接已创建"),
    ("deleted", "Connection deleted", "连接已删除"),
    (
        "no_connections",
        "No connections yet. Create one with New Connection.",
        "还没有连接。点击“新建连接”创建一个。",
    ),
    ("kind", "Type", "类型"),
    ("actions", "Actions", "操作"),
    ("secret_set", "set", "已设置"),
    (
        "secret_replace_help",
        "Leave empty to keep the current secret.",
        "留空则保持原密钥不变。",
    ),
    (
        "sandbox_banner",
        "Sandbox: messages go to the local DingTalk simulator, not to DingTalk.",
        "沙箱模式：消息发送到本地钉钉模拟器，而不是钉钉。",
    ),
    (
        "open_chat",
        "Open the simulator's chat page",
        "打开模拟器聊天页面",
    ),
    ("role", "Role", "角色"),
    ("required", "Required", "必填"),
    (
        "fix_errors",
        "Please correct the marked fields.",
        "请修改标出的字段。",
    ),
    (
        "forbidden",
        "Your role may not do this.",
        "你的角色无权执行此操作。",
    ),
    ("not_found", "Not found.", "未找到。"),
    ("dingtalk_code", "DingTalk code", "钉钉错误码"),
    ("send", "Send", "发送"),
    ("send_button", "Send", "发送"),
    ("choose", "Choose", "选择"),
    ("one_per_line", "one per line", "每行一个"),
    ("deliveries", "Deliveries", "投递记录"),
    ("delivery", "Delivery", "投递"),
    ("dead_letters", "Failed (dead letters)", "失败（死信）"),
    ("auto_refresh", "Refresh every 5 s", "每 5 秒刷新"),
    ("filters", "Filters", "筛选"),
    ("status", "Status", "状态"),
    ("all", "All", "全部"),
    ("connection", "Connection", "连接"),
    ("group", "Group chat", "群会话"),
    ("since", "Since", "起始时间"),
    ("apply_filters", "Filter", "筛选"),
    ("created_at", "Created", "创建时间"),
    ("action", "Action", "动作"),
    ("attempts", "Attempts", "尝试次数"),
    ("last_error", "Last error", "最近错误"),
    ("older", "Older deliveries", "更早的投递"),
    ("no_deliveries", "No deliveries match.", "没有匹配的投递。"),
    ("retry", "Retry", "重试"),
    ("retried", "Queued again", "已重新排队"),
    ("result", "Result", "结果"),
    ("payload", "Payload", "内容"),
    ("started", "Started", "开始时间"),
    ("outcome", "Outcome", "结果"),
    ("status_queued", "queued", "排队中"),
    ("status_in_flight", "sending", "发送中"),
    ("status_retrying", "retrying", "重试中"),
    ("status_delivered", "delivered", "已送达"),
    ("status_failed", "failed", "失败"),
];
