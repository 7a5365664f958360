//! Newtypes for DingTalk identifiers and secrets, so that a group id can never be passed where a
//! robot code is expected and a secret can never be printed by accident.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

id_newtype!(
    /// An app's Client ID (formerly AppKey), e.g. `dingue4kfzdxbyn0pjqd`.
    AppKey
);
id_newtype!(
    /// A robot's code; for an enterprise-internal app robot it equals the app's AppKey.
    RobotCode
);
id_newtype!(
    /// A group chat id as the new APIs take it: `cid…==`, may contain `+`, `/` and `=`.
    OpenConversationId
);
id_newtype!(
    /// The opaque key a robot send returns, used to query read status and to recall.
    ProcessQueryKey
);
id_newtype!(
    /// A media id returned by `/media/upload`, e.g. `@lADOADmaWMzazQKA`.
    MediaId
);
id_newtype!(
    /// A user's userId (staffId) inside the organisation.
    UserId
);

macro_rules! secret_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(SecretString::from(value.into()))
            }
            /// The clear value, for putting on the wire. Never log it.
            pub fn expose(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(***)", stringify!($name))
            }
        }

        impl From<SecretString> for $name {
            fn from(s: SecretString) -> Self {
                Self(s)
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.expose() == other.expose()
            }
        }
    };
}

secret_newtype!(
    /// An app's Client Secret (formerly AppSecret).
    AppSecret
);
secret_newtype!(
    /// An access token from `/v1.0/oauth2/accessToken` or `/gettoken`.
    AccessToken
);
secret_newtype!(
    /// A custom (webhook) robot's `access_token` from its webhook URL.
    WebhookToken
);
secret_newtype!(
    /// A custom robot's signing secret (`SEC…`).
    WebhookSecret
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_show_in_debug() {
        let s = AppSecret::new("very-secret");
        assert_eq!(format!("{s:?}"), "AppSecret(***)");
        assert_eq!(s.expose(), "very-secret");
    }

    #[test]
    fn ids_serialize_as_plain_strings() {
        let id = OpenConversationId::new("cidAB+/==");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"cidAB+/==\"");
    }
}
