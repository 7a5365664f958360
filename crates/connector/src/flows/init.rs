//! Ready flows for the commonest workflows (`dtc flow init alertmanager|grafana|json`): a YAML
//! document the user edits and applies. The Alertmanager one sends one markdown message per
//! notification — status and counts in the title, firing and resolved alerts grouped, severity,
//! summary, description, the labels that differ, start time and duration in local time, links
//! to the graph and to Alertmanager — routed by the `team` label to one or several groups, with
//! @-mentions chosen by the `severity` label (on webhook robots the numbers also go into the
//! text, which DingTalk needs to render the @).

use crate::connections::ConnectionKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitFormat {
    Alertmanager,
    Grafana,
    Json,
    /// A chat command answered in the conversation it was asked in.
    Chat,
}

impl InitFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "alertmanager" => Some(InitFormat::Alertmanager),
            "grafana" => Some(InitFormat::Grafana),
            "json" => Some(InitFormat::Json),
            "chat" => Some(InitFormat::Chat),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InitFormat::Alertmanager => "alertmanager",
            InitFormat::Grafana => "grafana",
            InitFormat::Json => "json",
            InitFormat::Chat => "chat",
        }
    }
}

/// What to fill in.
#[derive(Debug, Clone)]
pub struct InitOptions<'a> {
    pub format: InitFormat,
    /// The flow's name (also its hook path).
    pub name: &'a str,
    pub connection: &'a str,
    pub kind: ConnectionKind,
    /// The group chat (app robots; a webhook robot has its own group).
    pub group: Option<&'a str>,
    /// The hook's bearer token (Alertmanager, JSON) or HMAC secret (Grafana).
    pub secret: &'a str,
}

/// The flow document, YAML.
pub fn init(o: &InitOptions<'_>) -> Result<String, String> {
    if o.format == InitFormat::Chat {
        return chat(o);
    }
    let group = match (o.kind, o.group) {
        (ConnectionKind::AppRobot, Some(g)) if !g.trim().is_empty() => g.trim(),
        (ConnectionKind::AppRobot, _) => {
            return Err(format!(
                "`{}` is an app robot: say which group chat to send to (--group cid…==)",
                o.connection
            ));
        }
        (ConnectionKind::WebhookRobot, _) => "",
    };
    let yaml_str = |s: &str| serde_json::to_string(s).expect("a string serializes");
    let route = match o.kind {
        ConnectionKind::AppRobot => format!(
            "{{connection: {}, group: {}}}",
            yaml_str(o.connection),
            yaml_str(group)
        ),
        ConnectionKind::WebhookRobot => format!("{{connection: {}}}", yaml_str(o.connection)),
    };
    let (trigger, subject, content) = match o.format {
        InitFormat::Alertmanager => (
            format!(
                "  type: webhook\n  format: alertmanager\n  # Alertmanager's webhook_configs: http_config.authorization.credentials\n  auth:\n    bearer:\n      token: {}",
                yaml_str(o.secret)
            ),
            AM_SUBJECT,
            AM_CONTENT,
        ),
        InitFormat::Grafana => (
            format!(
                "  type: webhook\n  format: grafana\n  # Grafana's webhook contact point: HMAC signature, with this secret\n  auth:\n    hmac:\n      secret: {}\n      timestamp_header: X-Grafana-Alerting-Signature-Timestamp",
                yaml_str(o.secret)
            ),
            GRAFANA_SUBJECT,
            GRAFANA_CONTENT,
        ),
        InitFormat::Json => (
            format!(
                "  type: webhook\n  format: json\n  auth:\n    bearer:\n      token: {}",
                yaml_str(o.secret)
            ),
            JSON_SUBJECT,
            JSON_CONTENT,
        ),
        InitFormat::Chat => unreachable!("written by chat()"),
    };
    let (action, input) = match o.kind {
        ConnectionKind::AppRobot => (
            "send_markdown",
            format!(
                "      group_chat_id: \"{{{{ item.group }}}}\"\n      subject: {}\n      content: |\n{}",
                yaml_str(subject),
                indent(content, 8)
            ),
        ),
        ConnectionKind::WebhookRobot => (
            "webhook_send",
            format!(
                "      msg_type: markdown\n      subject: {}\n      content: |\n{}{}\n      at_mobiles: \"{{{{ {MOBILES} }}}}\"",
                yaml_str(subject),
                indent(content, 8),
                indent(AT_LINE, 8).trim_end_matches('\n'),
            ),
        ),
    };
    Ok(format!(
        "# {format} → DingTalk. Edit, then: dtc flow apply {name}.yaml
name: {name}
description: {description}
trigger:
{trigger}
# Times in messages are shown in this zone.
timezone: Asia/Shanghai
vars:
  # Where to send, by the alerts' `team` label; `default` for every other team. A route is a
  # list: one alert can go to several groups (and connections of the same kind).
  routes:
    default:
      - {route}
    # db:
    #   - {route}
  # Who to @, by the alerts' `severity` label (mobile numbers; webhook robots only).
  mentions:
    critical: []
steps:
  - id: notify
    action: {action}
    connection: \"{{{{ item.connection }}}}\"
    for_each: \"{ROUTES}\"
    input:
{input}
",
        format = o.format.as_str(),
        name = o.name,
        description = match o.format {
            InitFormat::Alertmanager =>
                "Prometheus Alertmanager notifications, one markdown message each",
            InitFormat::Grafana => "Grafana alert notifications, one markdown message each",
            InitFormat::Json => "Any JSON posted to the hook, as a markdown message",
            InitFormat::Chat => unreachable!("written by chat()"),
        },
    ))
}

/// A chat command: "@robot status db-1" answered in the conversation, with who asked.
fn chat(o: &InitOptions<'_>) -> Result<String, String> {
    if o.kind != ConnectionKind::AppRobot {
        return Err(format!(
            "`{}` is a webhook robot, which cannot receive messages: a chat flow needs an app robot with Stream mode on",
            o.connection
        ));
    }
    let connection = serde_json::to_string(o.connection).expect("a string serializes");
    Ok(format!(
        "# A chat command. Edit, then: dtc flow apply {name}.yaml
name: {name}
description: Answers \"@robot status <host>\" in the conversation it was asked in
trigger:
  type: chat
  # An app robot with Stream mode on; its robot hears @-mentions in its groups and 1:1 chats.
  connection: {connection}
  # The first word; the rest are trigger.args. Or a regular expression:
  #   pattern: '^status (?P<host>\\S+)$'   (groups in trigger.match)
  command: status
  # conversation: group        # or one_to_one; default any
  # senders: [manager1234]     # userIds or nicks; default anyone
steps:
  - id: answer
    action: reply
    input:
      msg_type: markdown
      content: |
        ### Status of {{{{ trigger.args[0] or 'everything' }}}}
        Asked by {{{{ trigger.sender.nick }}}} at {{{{ now | localtime }}}}.
",
        name = o.name,
    ))
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_owned()
            } else {
                format!("{pad}{l}\n")
            }
        })
        .collect()
}

/// The route list for the notification's `team` label.
const ROUTES: &str =
    "vars.routes[trigger.body.commonLabels.team | default('default')] or vars.routes.default";
/// The mobiles to @ for the notification's `severity` label.
const MOBILES: &str = "vars.mentions[trigger.body.commonLabels.severity | default('')] or []";
const AT_LINE: &str = "{% for m in vars.mentions[trigger.body.commonLabels.severity | default('')] or [] %}@{{ m }} {% endfor %}";

const AM_SUBJECT: &str = "{% set b = trigger.body %}[{{ b.status | upper }}:{{ b.alerts | selectattr('status', 'equalto', 'firing') | list | length }}] {{ b.groupLabels.alertname or b.commonLabels.alertname or 'alerts' }}";

const AM_CONTENT: &str = r#"{% set b = trigger.body -%}
{% set firing = b.alerts | selectattr('status', 'equalto', 'firing') | list -%}
{% set resolved = b.alerts | selectattr('status', 'equalto', 'resolved') | list -%}
{#- Labels worth showing: those that differ between the alerts (with one alert, all but the
    grouping labels), never severity, which is in each heading. -#}
{% set shared = b.commonLabels if b.alerts | length > 1 else b.groupLabels -%}
### {{ '🔥' if firing else '✅' }} [{{ b.status | upper }}] {{ (b.groupLabels.alertname or b.commonLabels.alertname or 'alerts') | md_escape }}
{{ firing | length }} firing, {{ resolved | length }} resolved
{% if firing %}
**Firing**
{% for a in firing %}
#### [{{ (a.labels.severity or 'none') | upper }}] {{ (a.annotations.summary or a.labels.alertname) | md_escape }}
{% if a.annotations.description %}{{ a.annotations.description | md_escape }}

{% endif -%}
- **Since:** {{ a.startsAt | localtime }} ({{ a.startsAt | since }})
- **Labels:** {% for k, v in a.labels | items %}{% if k not in shared and k != 'severity' %}{{ k }}={{ v | md_escape }} {% endif %}{% endfor %}
{% if a.generatorURL %}- [Graph]({{ a.generatorURL }})
{% endif %}{% endfor %}{% endif %}
{% if resolved %}
**Resolved**
{% for a in resolved %}
#### [RESOLVED] {{ (a.annotations.summary or a.labels.alertname) | md_escape }}
- **From** {{ a.startsAt | localtime }} **for** {{ a.startsAt | since(a.endsAt) }}
- **Labels:** {% for k, v in a.labels | items %}{% if k not in shared and k != 'severity' %}{{ k }}={{ v | md_escape }} {% endif %}{% endfor %}
{% endfor %}{% endif %}
{% if b.externalURL %}[Alertmanager]({{ b.externalURL }}){% endif %}
"#;

const GRAFANA_SUBJECT: &str = "{{ trigger.body.title or 'Grafana alert' }}";

const GRAFANA_CONTENT: &str = r#"{% set b = trigger.body -%}
### {{ '🔥' if b.state == 'alerting' else '✅' }} {{ (b.title or 'Grafana alert') | md_escape }}
{% for a in b.alerts %}
#### {{ (a.labels.alertname or 'alert') | md_escape }} ({{ a.status }})
{% if a.annotations.summary %}{{ a.annotations.summary | md_escape }}

{% endif -%}
{% if a.values %}- **Values:** {% for k, v in a.values | items %}{{ k }}={{ v }} {% endfor %}
{% endif -%}
- **Since:** {{ a.startsAt | localtime }}{% if a.status == 'resolved' %}, for {{ a.startsAt | since(a.endsAt) }}{% endif %}
{% if a.panelURL %}- [Panel]({{ a.panelURL }}){% endif %}{% if a.dashboardURL %} · [Dashboard]({{ a.dashboardURL }}){% endif %}{% if a.silenceURL %} · [Silence]({{ a.silenceURL }}){% endif %}
{% if a.imageURL %}
![image]({{ a.imageURL }})
{% endif %}{% endfor %}
{% if not b.alerts and b.message %}{{ b.message }}
{% endif %}"#;

const JSON_SUBJECT: &str = "{{ trigger.body.title or 'Notification' }}";

const JSON_CONTENT: &str = r#"{% set b = trigger.body -%}
### {{ (b.title or 'Notification') | md_escape }}
{{ b.text or b.message or (b | tojson) }}
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::check::check;
    use crate::flows::doc::parse;

    fn known(name: &str) -> Option<crate::flows::check::KnownConnection> {
        let kind = match name {
            "ops" => ConnectionKind::AppRobot,
            "hook" => ConnectionKind::WebhookRobot,
            _ => return None,
        };
        Some(crate::flows::check::KnownConnection {
            kind,
            stream: false,
        })
    }

    #[test]
    fn every_ready_flow_applies_as_written() {
        for format in [
            InitFormat::Alertmanager,
            InitFormat::Grafana,
            InitFormat::Json,
        ] {
            for (connection, kind) in [
                ("ops", ConnectionKind::AppRobot),
                ("hook", ConnectionKind::WebhookRobot),
            ] {
                let yaml = init(&InitOptions {
                    format,
                    name: "alerts",
                    connection,
                    kind,
                    group: Some("cidSandboxOps0000000000=="),
                    secret: "t0ken",
                })
                .unwrap();
                let parsed = parse(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
                let problems = check(&parsed, &known);
                assert!(
                    problems.is_empty(),
                    "{format:?} {kind:?}: {problems:?}\n{yaml}"
                );
            }
        }
    }

    #[test]
    fn the_chat_template_checks_clean_on_a_listening_app_robot() {
        let yaml = init(&InitOptions {
            format: InitFormat::Chat,
            name: "status",
            connection: "ops",
            kind: ConnectionKind::AppRobot,
            group: None,
            secret: "",
        })
        .unwrap();
        let parsed = parse(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let listening = |name: &str| {
            known(name).map(|k| crate::flows::check::KnownConnection { stream: true, ..k })
        };
        let problems = check(&parsed, &listening);
        assert!(problems.is_empty(), "{problems:?}\n{yaml}");
        let e = init(&InitOptions {
            format: InitFormat::Chat,
            name: "status",
            connection: "hook",
            kind: ConnectionKind::WebhookRobot,
            group: None,
            secret: "",
        })
        .unwrap_err();
        assert!(e.contains("cannot receive"), "{e}");
    }

    #[test]
    fn an_app_robot_needs_a_group() {
        let e = init(&InitOptions {
            format: InitFormat::Alertmanager,
            name: "a",
            connection: "ops",
            kind: ConnectionKind::AppRobot,
            group: None,
            secret: "t",
        })
        .unwrap_err();
        assert!(e.contains("--group"), "{e}");
    }
}
