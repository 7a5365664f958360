//! Connections: the credentials a user stores once (the seed's "New Connection" dialog) and
//! addresses by id or name. Secrets (`app_secret`, `access_token`, the webhook signing `secret`)
//! are write-only: sealed with the master key before they reach the store, never serialized,
//! never in an error message.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::secrets::{self, Keyring, SecretsError};
use crate::store::{
    ConnectionFields, ConnectionRecord, SealedSecretsUpdate, Store, StoreError, Timestamps,
};

pub use crate::store::ConnectionKind;

/// DingTalk's per-app, per-API QPS limit on the standard edition; paid editions allow up to 60.
pub const DEFAULT_QPS_QUOTA: u32 = 20;
pub const MAX_QPS_QUOTA: u32 = 60;
pub const MAX_NAME_CHARS: usize = 64;
pub const MAX_DESCRIPTION_CHARS: usize = 500;
pub const MAX_KEYWORDS: usize = 10;

/// How often an update or rotation is retried when a concurrent writer changed the row.
const CONFLICT_RETRIES: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("a connection named {name:?} already exists")]
    Duplicate { name: String },
    /// The field cannot be given to (or change) a connection of this kind: valid in itself,
    /// but not for the connection as it is.
    #[error("{field} {reason}")]
    WrongKind { field: &'static str, reason: String },
    #[error("connection {id_or_name:?} not found")]
    NotFound { id_or_name: String },
    #[error(transparent)]
    Store(StoreError),
    #[error("connection secrets: {0}")]
    Crypto(#[from] SecretsError),
}

impl From<StoreError> for ConnectionError {
    fn from(e: StoreError) -> Self {
        ConnectionError::Store(e)
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConnectionError {
    ConnectionError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A connection as the API shows it: no secrets, only whether the optional one is set.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Connection {
    pub id: Uuid,
    pub name: String,
    pub kind: ConnectionKind,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub robot_code: Option<String>,
    /// Absent when there are none (its schema says so through `default`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// `None`: [`DEFAULT_QPS_QUOTA`].
    pub qps_quota: Option<u32>,
    /// Stream mode: `dtc serve` receives the robot's messages (app robots).
    pub stream: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    sealed: Sealed,
}

impl Connection {
    /// The quota the sender applies: the connection's own, or the default.
    pub fn effective_qps_quota(&self) -> u32 {
        self.qps_quota.unwrap_or(DEFAULT_QPS_QUOTA)
    }

    pub(crate) fn from_record(record: ConnectionRecord) -> Self {
        let ConnectionRecord { id, fields, times } = record;
        let Timestamps {
            created_at,
            updated_at,
        } = times;
        Connection {
            id,
            name: fields.name,
            kind: fields.kind,
            description: fields.description,
            app_key: fields.app_key,
            robot_code: fields.robot_code,
            keywords: fields.keywords,
            // The store only ever holds validated quotas (1..=60); a negative one cannot appear.
            qps_quota: fields.qps_quota.and_then(|q| u32::try_from(q).ok()),
            stream: fields.stream,
            created_at,
            updated_at,
            sealed: Sealed(fields.sealed_secrets),
        }
    }
}

/// Ciphertext of a connection's secrets; kept out of `Debug` output and serialization anyway.
#[derive(Clone, PartialEq)]
struct Sealed(String);

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealed(..)")
    }
}

/// A connection's decrypted secrets, for the sender only.
#[derive(Debug)]
pub enum ConnectionSecrets {
    AppRobot {
        app_secret: SecretString,
    },
    WebhookRobot {
        access_token: SecretString,
        /// The `SEC…` signing secret, if the robot's security setting is "signature".
        secret: Option<SecretString>,
    },
}

/// `POST /v1/connections`: the seed's New Connection dialog (Name, AppKey, AppSecret,
/// RobotCode, Description), or a webhook robot (access token, signing secret, keywords).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = new_connection_rules)]
pub struct NewConnection {
    /// How the connection is addressed: letters, digits, `-`, `_`, `.`; not a UUID.
    pub name: String,
    /// Defaults to `app_robot`, the seed's only kind.
    #[serde(default = "default_kind")]
    pub kind: ConnectionKind,
    #[serde(default)]
    pub description: String,
    /// The app's AppKey (Client ID) — app robots.
    pub app_key: Option<String>,
    /// The app's AppSecret (Client Secret) — app robots; write-only.
    #[schemars(with = "Option<String>")]
    pub app_secret: Option<SecretString>,
    /// The robot's RobotCode, usually the AppKey — app robots.
    pub robot_code: Option<String>,
    /// The webhook robot's `access_token` — webhook robots; write-only.
    #[schemars(with = "Option<String>")]
    pub access_token: Option<SecretString>,
    /// The `SEC…` signing secret, if the robot's security setting is "signature" — webhook
    /// robots; write-only.
    #[schemars(with = "Option<String>")]
    pub secret: Option<SecretString>,
    /// Words one of which every message must contain, if the robot's security setting is
    /// "custom keywords" — webhook robots.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// This app's QPS quota per API (1 to 60); default 20, DingTalk's standard edition.
    pub qps_quota: Option<u32>,
    /// Stream mode (app robots): `dtc serve` keeps a socket to DingTalk and receives what
    /// people write to the robot.
    #[serde(default)]
    pub stream: bool,
}

/// The rules of [`Draft::validate`], stated for the JSON Schema.
fn field_rules() -> serde_json::Value {
    use crate::actions::types::{no_space, not_blank};
    let token = serde_json::json!({ "type": "string", "minLength": 1, "pattern": no_space() });
    serde_json::json!({ "properties": {
        "name": {
            "minLength": 1,
            "maxLength": MAX_NAME_CHARS,
            "pattern": crate::actions::types::PLAIN_NAME,
            "not": { "pattern": r"^(?:[0-9A-Fa-f]{32}|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})$",
                     "description": "must not be a UUID" }
        },
        "description": { "maxLength": MAX_DESCRIPTION_CHARS },
        "app_key": token, "app_secret": token, "robot_code": token, "access_token": token,
        "secret": { "pattern": crate::actions::types::prefixed_token("SEC") },
        "keywords": { "maxItems": MAX_KEYWORDS, "items": { "minLength": 1, "pattern": not_blank() } },
        "qps_quota": { "minimum": 1, "maximum": MAX_QPS_QUOTA }
    } })
}

fn forbidden(fields: &[&str], kind: ConnectionKind) -> serde_json::Value {
    let any: Vec<_> = fields
        .iter()
        .map(|f| serde_json::json!({ "required": [f] }))
        .collect();
    serde_json::json!({ "anyOf": any, "description": format!("is not used by {kind} connections") })
}

fn new_connection_rules(schema: &mut schemars::Schema) {
    crate::actions::types::add_rule(schema, field_rules());
    crate::actions::types::add_rule(
        schema,
        serde_json::json!({
            "if": { "required": ["kind"], "properties": { "kind": { "const": "webhook_robot" } } },
            "then": {
                "required": ["access_token"],
                "not": forbidden(&["app_key", "app_secret", "robot_code"], ConnectionKind::WebhookRobot),
                "properties": { "stream": { "const": false, "description": "webhook robots cannot receive messages" } }
            },
            "else": {
                "required": ["app_key", "app_secret", "robot_code"],
                "not": forbidden(&["access_token", "secret"], ConnectionKind::AppRobot),
                "properties": { "keywords": { "maxItems": 0 } }
            }
        }),
    );
}

fn patch_rules(schema: &mut schemars::Schema) {
    crate::actions::types::add_rule(schema, field_rules());
}

fn default_kind() -> ConnectionKind {
    ConnectionKind::AppRobot
}

/// `PATCH /v1/connections/{id_or_name}`: absent fields stay as they are; `"secret": null` and
/// `"qps_quota": null` clear those optional values.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = patch_rules)]
pub struct ConnectionPatch {
    pub name: Option<String>,
    /// Accepted only if it equals the current kind: a connection's kind cannot change.
    pub kind: Option<ConnectionKind>,
    pub description: Option<String>,
    pub app_key: Option<String>,
    /// Replaced only when given; write-only.
    #[schemars(with = "Option<String>")]
    pub app_secret: Option<SecretString>,
    pub robot_code: Option<String>,
    /// Replaced only when given; write-only.
    #[schemars(with = "Option<String>")]
    pub access_token: Option<SecretString>,
    /// `null` removes the signing secret; write-only.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<String>", extend("x-null" = "removes the signing secret"))]
    pub secret: Option<Option<SecretString>>,
    pub keywords: Option<Vec<String>>,
    /// `null` returns to the default quota.
    #[serde(default, deserialize_with = "present")]
    #[schemars(extend("x-null" = "returns to the default quota"))]
    pub qps_quota: Option<Option<u32>>,
    /// Stream mode on or off (app robots).
    pub stream: Option<bool>,
}

/// Tells "absent" (`None`, via `default`) from "null" (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Everything a connection is, secrets in clear, before validation and sealing.
struct Draft {
    name: String,
    kind: ConnectionKind,
    description: String,
    app_key: Option<String>,
    robot_code: Option<String>,
    keywords: Vec<String>,
    qps_quota: Option<u32>,
    stream: bool,
    app_secret: Option<SecretString>,
    access_token: Option<SecretString>,
    secret: Option<SecretString>,
}

/// The sealed JSON document of a connection's secrets.
#[derive(Serialize, Deserialize)]
struct SecretsDoc<'a> {
    #[serde(skip_serializing_if = "Option::is_none", borrow)]
    app_secret: Option<std::borrow::Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none", borrow)]
    access_token: Option<std::borrow::Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none", borrow)]
    secret: Option<std::borrow::Cow<'a, str>>,
}

fn secrets_context(id: Uuid) -> String {
    format!("connection:{id}:secrets")
}

impl Draft {
    fn validate(&self) -> Result<(), ConnectionError> {
        validate_name(&self.name)?;
        if self.description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(invalid(
                "description",
                format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
            ));
        }
        if self
            .qps_quota
            .is_some_and(|q| !(1..=MAX_QPS_QUOTA).contains(&q))
        {
            return Err(invalid(
                "qps_quota",
                format!("must be between 1 and {MAX_QPS_QUOTA}"),
            ));
        }
        match self.kind {
            ConnectionKind::AppRobot => {
                require_token("app_key", self.app_key.as_deref())?;
                require_token(
                    "app_secret",
                    self.app_secret.as_ref().map(|s| s.expose_secret()),
                )?;
                require_token("robot_code", self.robot_code.as_deref())?;
                forbid("access_token", self.access_token.is_some(), self.kind)?;
                forbid("secret", self.secret.is_some(), self.kind)?;
                forbid("keywords", !self.keywords.is_empty(), self.kind)?;
            }
            ConnectionKind::WebhookRobot => {
                require_token(
                    "access_token",
                    self.access_token.as_ref().map(|s| s.expose_secret()),
                )?;
                if let Some(secret) = &self.secret {
                    let secret = secret.expose_secret();
                    no_whitespace("secret", secret)?;
                    if !secret.starts_with("SEC") {
                        return Err(invalid("secret", "must start with SEC"));
                    }
                }
                if self.keywords.len() > MAX_KEYWORDS {
                    return Err(invalid(
                        "keywords",
                        format!("at most {MAX_KEYWORDS} keywords"),
                    ));
                }
                if self
                    .keywords
                    .iter()
                    .any(|k| k.chars().all(crate::actions::types::is_blank))
                {
                    return Err(invalid("keywords", "keywords must not be empty"));
                }
                forbid("app_key", self.app_key.is_some(), self.kind)?;
                forbid("app_secret", self.app_secret.is_some(), self.kind)?;
                forbid("robot_code", self.robot_code.is_some(), self.kind)?;
                // A custom robot only sends; DingTalk has no Stream mode for it.
                forbid("stream", self.stream, self.kind)?;
            }
        }
        Ok(())
    }

    fn seal(self, id: Uuid, keyring: &Keyring) -> Result<ConnectionFields, ConnectionError> {
        let doc = SecretsDoc {
            app_secret: self.app_secret.as_ref().map(|s| s.expose_secret().into()),
            access_token: self.access_token.as_ref().map(|s| s.expose_secret().into()),
            secret: self.secret.as_ref().map(|s| s.expose_secret().into()),
        };
        // Serializing borrowed strings into JSON cannot fail.
        let plaintext =
            Zeroizing::new(serde_json::to_string(&doc).expect("secrets document serializes"));
        let sealed_secrets = secrets::seal(keyring, &secrets_context(id), &plaintext)?;
        Ok(ConnectionFields {
            name: self.name,
            kind: self.kind,
            description: self.description,
            app_key: self.app_key,
            robot_code: self.robot_code,
            keywords: self.keywords,
            qps_quota: self.qps_quota.map(|q| q as i32),
            stream: self.stream,
            sealed_secrets,
        })
    }
}

fn validate_name(name: &str) -> Result<(), ConnectionError> {
    match name_problem(name) {
        Some(reason) => Err(invalid("name", reason)),
        None => Ok(()),
    }
}

/// What is wrong with a name (of a connection or a flow: both are addresses), if anything.
pub(crate) fn name_problem(name: &str) -> Option<String> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME_CHARS {
        return Some(format!("must be 1 to {MAX_NAME_CHARS} characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Some(format!(
            "may contain only letters, digits, '-', '_' and '.', not {c:?}"
        ));
    }
    // `.` and `..` are path segments: `/v1/connections/..` is not that connection's address.
    if name.chars().all(|c| c == '.') {
        return Some("must not be only dots".into());
    }
    // Connections are addressed by id or name; a name that parses as a UUID would be ambiguous.
    if Uuid::parse_str(name).is_ok() {
        return Some("must not be a UUID".into());
    }
    None
}

/// Required, non-empty, no whitespace; the value itself is never echoed (it may be a secret).
fn require_token(field: &'static str, value: Option<&str>) -> Result<(), ConnectionError> {
    match value {
        None => Err(invalid(field, "is required")),
        Some("") => Err(invalid(field, "must not be empty")),
        Some(v) => no_whitespace(field, v),
    }
}

fn no_whitespace(field: &'static str, value: &str) -> Result<(), ConnectionError> {
    if value.chars().any(crate::actions::types::is_blank) {
        return Err(invalid(field, "must not contain whitespace"));
    }
    Ok(())
}

fn forbid(field: &'static str, given: bool, kind: ConnectionKind) -> Result<(), ConnectionError> {
    if given {
        return Err(ConnectionError::WrongKind {
            field,
            reason: format!("is not used by {kind} connections"),
        });
    }
    Ok(())
}

/// The connection service: validation, sealing and lookup over a [`Store`].
#[derive(Debug)]
pub struct Connections {
    store: Arc<dyn Store>,
    keyring: RwLock<Arc<Keyring>>,
}

impl Connections {
    pub fn new(store: Arc<dyn Store>, keyring: Keyring) -> Self {
        Connections {
            store,
            keyring: RwLock::new(Arc::new(keyring)),
        }
    }

    pub(crate) fn keyring(&self) -> Arc<Keyring> {
        // The lock only guards swapping one Arc for another, which cannot be left half-done.
        self.keyring
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub async fn create(&self, new: NewConnection) -> Result<Connection, ConnectionError> {
        let draft = Draft {
            name: new.name,
            kind: new.kind,
            description: new.description,
            app_key: new.app_key,
            robot_code: new.robot_code,
            keywords: new.keywords,
            qps_quota: new.qps_quota,
            stream: new.stream,
            app_secret: new.app_secret,
            access_token: new.access_token,
            secret: new.secret,
        };
        draft.validate()?;
        let id = Uuid::new_v4();
        let name = draft.name.clone();
        let fields = draft.seal(id, &self.keyring())?;
        match self.store.insert_connection(id, &fields).await {
            Ok(record) => Ok(Connection::from_record(record)),
            Err(StoreError::Duplicate { .. }) => Err(ConnectionError::Duplicate { name }),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn list(&self) -> Result<Vec<Connection>, ConnectionError> {
        Ok(self
            .store
            .list_connections()
            .await?
            .into_iter()
            .map(Connection::from_record)
            .collect())
    }

    /// By id if `id_or_name` is a UUID, otherwise by name (names can never be UUIDs).
    pub async fn get(&self, id_or_name: &str) -> Result<Connection, ConnectionError> {
        self.find(id_or_name).await.map(Connection::from_record)
    }

    async fn find(&self, id_or_name: &str) -> Result<ConnectionRecord, ConnectionError> {
        let found = match Uuid::parse_str(id_or_name) {
            Ok(id) => self.store.get_connection(id).await?,
            // No name holds a NUL (names are letters, digits, `-`, `_`, `.`), and PostgreSQL
            // cannot compare text with one.
            Err(_) if id_or_name.contains('\0') => None,
            Err(_) => self.store.get_connection_by_name(id_or_name).await?,
        };
        found.ok_or_else(|| ConnectionError::NotFound {
            id_or_name: id_or_name.to_owned(),
        })
    }

    pub async fn update(
        &self,
        id_or_name: &str,
        patch: ConnectionPatch,
    ) -> Result<Connection, ConnectionError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let record = self.find(id_or_name).await?;
            let keyring = self.keyring();
            let draft = self.apply(&record, &patch, &keyring)?;
            draft.validate()?;
            let name = draft.name.clone();
            let fields = draft.seal(record.id, &keyring)?;
            match self
                .store
                .update_connection(record.id, &fields, record.times.updated_at)
                .await
            {
                Ok(updated) => return Ok(Connection::from_record(updated)),
                Err(StoreError::Duplicate { .. }) => {
                    return Err(ConnectionError::Duplicate { name });
                }
                Err(StoreError::NotFound { .. }) => {
                    return Err(ConnectionError::NotFound {
                        id_or_name: id_or_name.to_owned(),
                    });
                }
                // Someone else changed it between our read and write: apply the patch again
                // to what is there now.
                Err(StoreError::Conflict { .. }) if tries < CONFLICT_RETRIES => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn apply(
        &self,
        record: &ConnectionRecord,
        patch: &ConnectionPatch,
        keyring: &Keyring,
    ) -> Result<Draft, ConnectionError> {
        let current = &record.fields;
        if patch.kind.is_some_and(|kind| kind != current.kind) {
            return Err(ConnectionError::WrongKind {
                field: "kind",
                reason: "cannot be changed; create a new connection".into(),
            });
        }
        let (app_secret, access_token, secret) = match open_secrets(record, keyring)? {
            ConnectionSecrets::AppRobot { app_secret } => (Some(app_secret), None, None),
            ConnectionSecrets::WebhookRobot {
                access_token,
                secret,
            } => (None, Some(access_token), secret),
        };
        let dup = |s: &SecretString| SecretString::from(s.expose_secret().to_owned());
        Ok(Draft {
            name: patch.name.clone().unwrap_or_else(|| current.name.clone()),
            kind: current.kind,
            description: patch
                .description
                .clone()
                .unwrap_or_else(|| current.description.clone()),
            app_key: patch.app_key.clone().or_else(|| current.app_key.clone()),
            robot_code: patch
                .robot_code
                .clone()
                .or_else(|| current.robot_code.clone()),
            keywords: patch
                .keywords
                .clone()
                .unwrap_or_else(|| current.keywords.clone()),
            qps_quota: match patch.qps_quota {
                Some(q) => q,
                None => current.qps_quota.and_then(|q| u32::try_from(q).ok()),
            },
            stream: patch.stream.unwrap_or(current.stream),
            app_secret: patch.app_secret.as_ref().map(dup).or(app_secret),
            access_token: patch.access_token.as_ref().map(dup).or(access_token),
            secret: match &patch.secret {
                Some(s) => s.as_ref().map(dup),
                None => secret,
            },
        })
    }

    /// Deletes a connection; [`ConnectionError::NotFound`] if there is none. Its delivery log stays.
    pub async fn delete(&self, id_or_name: &str) -> Result<(), ConnectionError> {
        let record = self.find(id_or_name).await?;
        if self.store.delete_connection(record.id).await? {
            Ok(())
        } else {
            Err(ConnectionError::NotFound {
                id_or_name: id_or_name.to_owned(),
            })
        }
    }

    /// The connection's secrets in clear, for the sender.
    pub fn secrets(&self, connection: &Connection) -> Result<ConnectionSecrets, ConnectionError> {
        open_secrets_parts(
            connection.id,
            connection.kind,
            &connection.sealed.0,
            &self.keyring(),
        )
    }

    /// Re-seals every connection's secrets under `new_keyring.current`, in one transaction, and
    /// makes it this service's keyring. Values can be opened with any key of `new_keyring` or of
    /// the current keyring. Returns how many connections were re-sealed.
    pub async fn rotate_key(&self, new_keyring: Keyring) -> Result<usize, ConnectionError> {
        let old = self.keyring();
        let mut merged = new_keyring;
        for key in std::iter::once(&old.current).chain(&old.previous) {
            if key.key_id() != merged.current.key_id()
                && merged.previous.iter().all(|k| k.key_id() != key.key_id())
            {
                merged.previous.push(key.clone());
            }
        }
        let mut tries = 0;
        loop {
            tries += 1;
            let mut updates = Vec::new();
            for record in self.store.list_connections().await? {
                let secrets = open_secrets(&record, &merged)?;
                let doc = secrets_plaintext(&secrets);
                let new = secrets::seal(&merged, &secrets_context(record.id), &doc)?;
                updates.push(SealedSecretsUpdate {
                    id: record.id,
                    old: record.fields.sealed_secrets,
                    new,
                });
            }
            match self.store.update_sealed_secrets(&updates).await {
                Ok(()) => {
                    *self
                        .keyring
                        .write()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(merged);
                    return Ok(updates.len());
                }
                Err(StoreError::Conflict { .. }) if tries < CONFLICT_RETRIES => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

fn open_secrets(
    record: &ConnectionRecord,
    keyring: &Keyring,
) -> Result<ConnectionSecrets, ConnectionError> {
    open_secrets_parts(
        record.id,
        record.fields.kind,
        &record.fields.sealed_secrets,
        keyring,
    )
}

fn open_secrets_parts(
    id: Uuid,
    kind: ConnectionKind,
    sealed: &str,
    keyring: &Keyring,
) -> Result<ConnectionSecrets, ConnectionError> {
    let plaintext = secrets::open(keyring, &secrets_context(id), sealed)?;
    // The parse error is not shown: serde's message could quote part of the document.
    let doc: SecretsDoc<'_> = serde_json::from_str(plaintext.expose_secret())
        .map_err(|_| ConnectionError::Crypto(SecretsError::Malformed("secrets document")))?;
    let secret =
        |v: Option<std::borrow::Cow<'_, str>>| v.map(|s| SecretString::from(s.into_owned()));
    let missing =
        || ConnectionError::Crypto(SecretsError::Malformed("secrets document incomplete"));
    Ok(match kind {
        ConnectionKind::AppRobot => ConnectionSecrets::AppRobot {
            app_secret: secret(doc.app_secret).ok_or_else(missing)?,
        },
        ConnectionKind::WebhookRobot => ConnectionSecrets::WebhookRobot {
            access_token: secret(doc.access_token).ok_or_else(missing)?,
            secret: secret(doc.secret),
        },
    })
}

fn secrets_plaintext(secrets: &ConnectionSecrets) -> Zeroizing<String> {
    let doc = match secrets {
        ConnectionSecrets::AppRobot { app_secret } => SecretsDoc {
            app_secret: Some(app_secret.expose_secret().into()),
            access_token: None,
            secret: None,
        },
        ConnectionSecrets::WebhookRobot {
            access_token,
            secret,
        } => SecretsDoc {
            app_secret: None,
            access_token: Some(access_token.expose_secret().into()),
            secret: secret.as_ref().map(|s| s.expose_secret().into()),
        },
    };
    // Serializing borrowed strings into JSON cannot fail.
    Zeroizing::new(serde_json::to_string(&doc).expect("secrets document serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app_draft() -> Draft {
        Draft {
            name: "ops-alerts".into(),
            kind: ConnectionKind::AppRobot,
            description: String::new(),
            app_key: Some("dingabc".into()),
            robot_code: Some("dingabc".into()),
            keywords: vec![],
            qps_quota: None,
            stream: false,
            app_secret: Some(SecretString::from("s3cret".to_owned())),
            access_token: None,
            secret: None,
        }
    }

    fn field_of(d: Draft) -> &'static str {
        match d.validate() {
            Err(
                ConnectionError::Invalid { field, .. } | ConnectionError::WrongKind { field, .. },
            ) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_complete_app_robot_is_valid() {
        app_draft().validate().unwrap();
    }

    #[test]
    fn names_are_short_plain_and_never_uuids() {
        for bad in [
            "",
            "has space",
            "ünïcode",
            "a/b",
            &"x".repeat(65),
            "67e55044-10b1-426f-9247-bb680e5fe0c8",
            ".",
            "..",
            "...",
        ] {
            let d = Draft {
                name: bad.to_owned(),
                ..app_draft()
            };
            assert_eq!(field_of(d), "name", "{bad:?}");
        }
        for good in ["a", "ops_alerts.v2", "A-1", ".a", "a..", &"x".repeat(64)] {
            Draft {
                name: good.to_owned(),
                ..app_draft()
            }
            .validate()
            .unwrap();
        }
    }

    #[test]
    fn app_robot_requires_its_credentials_without_whitespace() {
        let d = Draft {
            app_key: None,
            ..app_draft()
        };
        assert_eq!(field_of(d), "app_key");
        let d = Draft {
            app_secret: Some(SecretString::from("has space".to_owned())),
            ..app_draft()
        };
        let err = d.validate().unwrap_err();
        assert!(matches!(
            err,
            ConnectionError::Invalid {
                field: "app_secret",
                ..
            }
        ));
        assert!(!err.to_string().contains("has space"), "{err}");
        let d = Draft {
            robot_code: Some(String::new()),
            ..app_draft()
        };
        assert_eq!(field_of(d), "robot_code");
        let d = Draft {
            access_token: Some(SecretString::from("t".to_owned())),
            ..app_draft()
        };
        assert_eq!(field_of(d), "access_token");
    }

    #[test]
    fn webhook_robot_rules() {
        let webhook = || Draft {
            kind: ConnectionKind::WebhookRobot,
            app_key: None,
            robot_code: None,
            app_secret: None,
            access_token: Some(SecretString::from("abc123".to_owned())),
            ..app_draft()
        };
        webhook().validate().unwrap();
        let d = Draft {
            access_token: None,
            ..webhook()
        };
        assert_eq!(field_of(d), "access_token");
        let d = Draft {
            secret: Some(SecretString::from("notsec".to_owned())),
            ..webhook()
        };
        assert_eq!(field_of(d), "secret");
        Draft {
            secret: Some(SecretString::from("SECabc".to_owned())),
            ..webhook()
        }
        .validate()
        .unwrap();
        let d = Draft {
            keywords: (0..11).map(|i| format!("k{i}")).collect(),
            ..webhook()
        };
        assert_eq!(field_of(d), "keywords");
        let d = Draft {
            app_key: Some("x".into()),
            ..webhook()
        };
        assert_eq!(field_of(d), "app_key");
    }

    #[test]
    fn description_and_quota_limits() {
        let d = Draft {
            description: "d".repeat(501),
            ..app_draft()
        };
        assert_eq!(field_of(d), "description");
        for q in [0, 61] {
            let d = Draft {
                qps_quota: Some(q),
                ..app_draft()
            };
            assert_eq!(field_of(d), "qps_quota");
        }
        Draft {
            qps_quota: Some(60),
            ..app_draft()
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn new_connection_rejects_unknown_fields_and_patch_tells_null_from_absent() {
        let err = serde_json::from_value::<NewConnection>(serde_json::json!({
            "name": "x", "app_key": "k", "app_secret": "s", "robot_code": "r", "colour": "red"
        }))
        .unwrap_err();
        assert!(err.to_string().contains("colour"));
        let patch: ConnectionPatch =
            serde_json::from_value(serde_json::json!({"qps_quota": null})).unwrap();
        assert!(matches!(patch.qps_quota, Some(None)));
        assert!(patch.secret.is_none());
        let patch: ConnectionPatch =
            serde_json::from_value(serde_json::json!({"secret": "SECx"})).unwrap();
        assert!(matches!(patch.secret, Some(Some(_))));
    }

    #[test]
    fn debug_output_of_requests_hides_secrets() {
        let new: NewConnection = serde_json::from_value(serde_json::json!({
            "name": "x", "app_key": "k", "app_secret": "TopSecretValue", "robot_code": "r"
        }))
        .unwrap();
        assert!(!format!("{new:?}").contains("TopSecretValue"));
        let patch: ConnectionPatch =
            serde_json::from_value(serde_json::json!({"access_token": "TopSecretToken"})).unwrap();
        assert!(!format!("{patch:?}").contains("TopSecretToken"));
    }
}
