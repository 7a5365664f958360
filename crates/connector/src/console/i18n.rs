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

impl Lang {
    fn pick(
        self,
        table: &'static [(&str, &'static str, &'static str)],
        key: &str,
    ) -> Option<&'static str> {
        table
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, en, zh)| if self == Lang::Zh { *zh } else { *en })
    }

    /// The seed's label of an action input (`group_chat_id` → "Group Chat ID").
    pub fn label(self, field: &str) -> Option<&'static str> {
        self.pick(LABELS, field)
    }

    /// The seed's description of an input, where it has one (else the schema's is shown).
    pub fn help(self, field: &str) -> Option<&'static str> {
        self.pick(HELP, field)
    }

    /// A reason the domain layer gave (in English, as the API answers), in the reader's
    /// language where it is one of the common ones; otherwise as given.
    pub fn reason(self, reason: &str) -> String {
        if self == Lang::En {
            return reason.to_owned();
        }
        for (en, zh) in REASONS {
            if let Some(rest) = reason.strip_prefix(en) {
                return format!("{zh}{rest}");
            }
        }
        reason.to_owned()
    }

    /// The seed's name of an action.
    pub fn action_title(self, action: &str) -> Option<&'static str> {
        self.pick(ACTIONS, action)
    }
}

/// The seed's parameter names (ROMA Connect's DingTalk connector), then dtc's own inputs.
const LABELS: &[(&str, &str, &str)] = &[
    ("group_chat_id", "Group Chat ID", "群会话 ID"),
    ("subject", "Subject", "消息标题"),
    ("content", "Content", "消息内容"),
    ("image_url", "Image URL", "图片链接"),
    ("redirect_url", "Redirection URL", "跳转链接"),
    ("button_text", "Redirect Button", "跳转按钮"),
    ("media_id", "Media File ID", "媒体文件 ID"),
    ("file_name", "File Name", "文件名"),
    ("file_type", "File Type", "文件类型"),
    ("file", "File", "文件"),
    ("file_url", "File URL", "文件链接"),
    ("msg_type", "Message Type", "消息类型"),
    ("user_ids", "User IDs", "用户 ID"),
    ("media_type", "Media Type", "媒体类型"),
    ("buttons", "Buttons", "按钮"),
    ("button_layout", "Button Layout", "按钮排列"),
    ("process_query_key", "Process Query Key", "消息查询 Key"),
    (
        "process_query_keys",
        "Process Query Keys",
        "消息查询 Key 列表",
    ),
    ("links", "Links", "链接列表"),
    ("at_mobiles", "@ Mobiles", "@ 手机号"),
    ("at_user_ids", "@ User IDs", "@ 用户 ID"),
    ("at_all", "@ Everyone", "@ 所有人"),
    ("split", "Split long messages", "超长消息自动拆分"),
    ("max_results", "Max Results", "最大条数"),
    ("next_token", "Next Token", "分页标记"),
];

const HELP: &[(&str, &str, &str)] = &[
    (
        "group_chat_id",
        "The group's openConversationId (cid…==): from DingTalk's API for creating a group, or, for an existing group, the JSAPI biz.chat.chooseConversationByCorpId.",
        "群的 openConversationId（cid…==）：创建企业内部群等接口返回；已有的群可通过 JSAPI biz.chat.chooseConversationByCorpId 获取。",
    ),
    ("subject", "Message subject.", "消息标题。"),
    ("content", "Message content.", "消息内容。"),
    (
        "image_url",
        "Link to the preview image.",
        "预览图片的链接。",
    ),
    (
        "redirect_url",
        "Redirection link opened after clicking the message.",
        "点击消息后打开的跳转链接。",
    ),
    (
        "button_text",
        "Text displayed on the redirect button.",
        "跳转按钮上显示的文字。",
    ),
    (
        "media_id",
        "Value of media_id of the API for uploading media files.",
        "上传媒体文件接口返回的 media_id。",
    ),
    (
        "file_name",
        "Name of the file to be sent.",
        "要发送的文件名。",
    ),
    (
        "file_type",
        "xlsx, pdf, zip, rar, doc and docx files are supported.",
        "支持 xlsx、pdf、zip、rar、doc、docx 文件。",
    ),
    (
        "file",
        "A file from this computer, uploaded to DingTalk first.",
        "本机上的文件，先上传到钉钉。",
    ),
];

/// Common refusals: the English start of a reason, and its Chinese. What follows the start (a
/// character, a number) is kept.
const REASONS: &[(&str, &str)] = &[
    ("is required", "必填"),
    ("must not be empty", "不能为空"),
    ("must not be blank", "不能为空白"),
    ("must not contain whitespace", "不能包含空白字符"),
    ("must start with SEC", "必须以 SEC 开头"),
    (
        "may contain only letters, digits, '-', '_' and '.', not",
        "只能包含字母、数字、'-'、'_' 和 '.'，不能包含",
    ),
    ("must not be only dots", "不能只由点组成"),
    ("must not be a UUID", "不能是 UUID"),
    ("must be 1 to", "长度必须在 1 到"),
    ("must be at most", "最多"),
    (
        "is not used by app_robot connections",
        "企业内部应用机器人连接不使用此项",
    ),
    (
        "is not used by webhook_robot connections",
        "自定义机器人连接不使用此项",
    ),
    ("keywords must not be empty", "关键词不能为空"),
    ("must be a whole number", "必须是整数"),
    ("is not valid JSON", "不是有效的 JSON"),
];

/// The seed's action names.
const ACTIONS: &[(&str, &str, &str)] = &[
    (
        "send_text",
        "Send a text message by chatbot",
        "机器人发送文本消息",
    ),
    (
        "send_markdown",
        "Send a Markdown message by chatbot",
        "机器人发送 Markdown 消息",
    ),
    (
        "send_link",
        "Send a link message by chatbot",
        "机器人发送链接消息",
    ),
    (
        "send_image",
        "Send an image message by chatbot",
        "机器人发送图片消息",
    ),
    (
        "send_file",
        "Send a file message by chatbot",
        "机器人发送文件消息",
    ),
    (
        "send_action_card",
        "Send an ActionCard message by chatbot",
        "机器人发送 ActionCard 消息",
    ),
];

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
    ("edit", "Edit", "编辑"),
    ("edit_connection", "Edit connection", "编辑连接"),
    ("updated", "Connection saved", "连接已保存"),
    (
        "remove_signing_secret",
        "Remove the signing secret",
        "移除加签密钥",
    ),
    ("last_test", "Last test", "最近测试"),
    ("last_used", "Last used", "最近使用"),
    ("never", "never", "从未"),
    ("preview", "Preview", "预览"),
    (
        "preview_help",
        "As DingTalk will show it; updates as you type.",
        "钉钉中的显示效果，随输入更新。",
    ),
    (
        "known_groups",
        "Groups this connection has sent to",
        "此连接发送过的群",
    ),
    ("choose_file", "Choose a file", "选择文件"),
    ("tokens", "API tokens", "API 令牌"),
    ("new_token", "New token", "新建令牌"),
    ("create_token", "Create token", "创建令牌"),
    ("token_made", "Token created", "令牌已创建"),
    (
        "token_once",
        "Copy it now: it is shown only this once and stored only as a hash.",
        "请立即复制：令牌只显示这一次，服务端只保存其哈希。",
    ),
    ("existing_tokens", "Tokens", "令牌列表"),
    ("label", "Label", "标签"),
    ("revoke", "Revoke", "吊销"),
    (
        "revoke_confirm",
        "Revoke this token? Programs and sessions using it stop working.",
        "吊销此令牌？使用它的程序和会话将立即失效。",
    ),
    ("role_viewer", "viewer — read only", "只读（viewer）"),
    (
        "role_operator",
        "operator — send, run flows, retry",
        "操作员（operator）：发送、运行流程、重试",
    ),
    (
        "role_admin",
        "admin — everything",
        "管理员（admin）：全部权限",
    ),
    ("flows", "Flows", "流程"),
    ("flow", "Flow", "流程"),
    ("new_flow", "New flow", "新建流程"),
    ("runs", "Runs", "运行记录"),
    ("run", "Run", "运行"),
    ("ready_flows", "Ready flows", "现成流程"),
    (
        "ready_flows_help",
        "Alerts from Prometheus Alertmanager or Grafana, or any JSON, to a DingTalk group: pick one, check it, apply.",
        "把 Prometheus Alertmanager、Grafana 告警或任意 JSON 发到钉钉群：选一个模板，检查后应用。",
    ),
    ("template", "Template", "模板"),
    ("any_json", "Any JSON webhook", "任意 JSON Webhook"),
    (
        "chat_command",
        "Chat command (@robot status …)",
        "聊天命令（@机器人 status …）",
    ),
    ("use_template", "Open in the editor", "在编辑器中打开"),
    ("trigger", "Trigger", "触发方式"),
    ("version", "Version", "版本"),
    ("updated_at", "Changed", "修改时间"),
    ("next_fire", "Next", "下次运行"),
    ("no_flows", "No flows yet.", "还没有流程。"),
    ("hook_url", "Hook", "Webhook 地址"),
    (
        "template_secret_note",
        "The hook secret below was made for you: copy it into the sender's configuration before applying. Once applied it is stored sealed and shown as <set>.",
        "下面的 Webhook 密钥是新生成的：应用前请复制到发送方的配置中。应用后它会加密保存，并显示为 <set>。",
    ),
    ("flow_problems", "The flow was not applied:", "流程未应用："),
    ("line", "line", "第"),
    (
        "flow_document",
        "Flow (YAML or JSON)",
        "流程（YAML 或 JSON）",
    ),
    (
        "flow_editor_help",
        "Secrets show as <set>: leave them so to keep them. Tab indents; Escape then Tab leaves the editor.",
        "密钥显示为 <set>，保持不变即沿用原密钥。Tab 键缩进；先按 Esc 再按 Tab 离开编辑器。",
    ),
    ("apply", "Apply", "应用"),
    ("flow_applied", "Flow applied", "流程已应用"),
    ("try_flow", "Try it", "试运行"),
    (
        "sample_trigger",
        "Sample trigger body (JSON)",
        "示例触发数据（JSON）",
    ),
    ("dry_run", "Dry run (sends nothing)", "试运行（不发送）"),
    ("run_now", "Run now", "立即运行"),
    ("dry_run_result", "What it would send", "将会发送的消息"),
    ("step", "Step", "步骤"),
    ("would_send", "would send", "将发送"),
    ("skipped", "skipped", "跳过"),
    ("would_fail", "would fail", "将失败"),
    ("delete_flow", "Delete flow", "删除流程"),
    (
        "delete_flow_confirm",
        "Delete this flow? Its runs stay.",
        "删除此流程？运行记录会保留。",
    ),
    ("run_running", "running", "运行中"),
    ("run_succeeded", "succeeded", "成功"),
    ("run_failed", "failed", "失败"),
    ("no_runs", "No runs match.", "没有匹配的运行记录。"),
    ("finished_at", "Finished", "结束时间"),
    ("steps", "Steps", "步骤"),
    (
        "no_steps_yet",
        "No step has finished yet.",
        "还没有完成的步骤。",
    ),
    ("trigger_data", "Trigger data", "触发数据"),
    ("search", "Search", "搜索"),
    ("back_to_console", "Back to the console", "返回控制台"),
    (
        "stream_mode",
        "Receive messages (Stream mode)",
        "接收消息（Stream 模式）",
    ),
    (
        "stream_mode_help",
        "dtc keeps a connection to DingTalk and hears what people write to the robot: chat flows, and the groups it is in (write \"@robot id\" in a group to get its id).",
        "dtc 与钉钉保持长连接，接收用户发给机器人的消息：用于聊天流程，并记录机器人所在的群（在群里 @机器人 发送 “id” 即可获得群 ID）。",
    ),
    ("conversations", "Conversations", "会话"),
    (
        "conversation_id",
        "openConversationId",
        "openConversationId",
    ),
    ("copy", "Copy", "复制"),
    ("copied", "Copied", "已复制"),
    ("last_seen", "Last message", "最近消息"),
    ("messages_count", "Messages", "消息数"),
    ("kind_group", "group", "群聊"),
    ("kind_single", "1:1", "单聊"),
    (
        "no_conversations",
        "The robot has heard from no conversation yet. Turn on Stream mode for the connection, then @-mention the robot in a group (\"@robot id\" answers with the group's id).",
        "机器人还没有收到任何会话的消息。为连接打开 Stream 模式，然后在群里 @机器人（发送 “id” 会回复群 ID）。",
    ),
    (
        "no_stream_connections",
        "No connection has Stream mode on: edit an app-robot connection and tick \"Receive messages\".",
        "没有打开 Stream 模式的连接：编辑一个企业内部应用机器人连接，勾选“接收消息”。",
    ),
    ("pages", "Pages", "分页"),
    ("previous", "Previous", "上一页"),
    ("next", "Next", "下一页"),
];
