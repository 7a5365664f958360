//! Administration on a server's own database and key, run where the server runs (`dtc admin`):
//! API tokens and master-key rotation.

use std::path::PathBuf;

use secrecy::SecretString;

use crate::connections::Connections;
use crate::secrets::{Keyring, MasterKey, SecretsError};
use crate::settings::Settings;
use crate::store::{self, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("secret-encryption key: {0}")]
    Key(#[from] SecretsError),
    #[error("rotating the connections' secrets failed, they are unchanged: {0}")]
    Rotation(crate::connections::ConnectionError),
    /// Flows' hook secrets are re-sealed first; those already done open with either key file.
    #[error("rotating the flows' hook secrets failed (connections unchanged): {0}")]
    FlowRotation(String),
    #[error(
        "secrets were re-encrypted with the key in {staged}, but it could not replace {key_file}: {reason}"
    )]
    Replace {
        staged: PathBuf,
        key_file: PathBuf,
        reason: std::io::Error,
    },
}

/// A new API token for the server of `settings` (shown once; only its hash is stored).
pub async fn create_token(
    settings: &Settings,
    label: &str,
    role: store::Role,
) -> Result<SecretString, AdminError> {
    let store = store::connect(&settings.database_url()).await?;
    let (_, token) = crate::app::create_api_token_with_role(store.as_ref(), label, role).await?;
    Ok(token)
}

/// What a key rotation did.
#[derive(Debug)]
pub struct Rotation {
    pub rotated_connections: usize,
    /// Flows whose webhook secrets were re-sealed.
    pub rotated_flows: usize,
    pub old_key_id: String,
    pub new_key_id: String,
    /// Where the new key now is, when the key is kept in a file.
    pub key_file: Option<PathBuf>,
    /// The new key, when the old one came from `DTC_MASTER_KEY`: the operator must set it
    /// before the next start.
    pub new_master_key: Option<SecretString>,
}

/// Re-encrypts every stored secret with a new master key and replaces the key. Crash-safe: the
/// new key file is written beside the old one first, so either file still opens what the
/// database holds; instances that are running keep the old key until they restart (their
/// deliveries wait, see `ErrorCode::ConnectionKeyUnknown`).
pub async fn rotate_key(settings: &Settings) -> Result<Rotation, AdminError> {
    let load = || MasterKey::load(settings.master_key.as_ref(), &settings.data_dir);
    let old = load()?;
    let new = MasterKey::generate();
    let store = store::connect(&settings.database_url()).await?;
    let (old_key_id, new_key_id) = (old.key_id().to_owned(), new.key_id().to_owned());
    let connections = Connections::new(store.clone(), Keyring::new(old));
    let key_file = settings.data_dir.join("master.key");
    let staged = settings.data_dir.join("master.key.new");
    let from_env = settings.master_key.is_some();
    if !from_env {
        new.write_new_file(&staged)?;
    }
    let rotated_flows = crate::flows::service::rotate_key(
        store.as_ref(),
        &Keyring {
            current: new.clone(),
            previous: vec![load()?],
        },
    )
    .await
    .map_err(AdminError::FlowRotation)?;
    let rotated_connections = connections
        .rotate_key(Keyring {
            current: new.clone(),
            previous: vec![load()?],
        })
        .await
        .map_err(AdminError::Rotation)?;
    if from_env {
        return Ok(Rotation {
            rotated_connections,
            rotated_flows,
            old_key_id,
            new_key_id,
            key_file: None,
            new_master_key: Some(new.to_base64()),
        });
    }
    std::fs::rename(&staged, &key_file).map_err(|reason| AdminError::Replace {
        staged,
        key_file: key_file.clone(),
        reason,
    })?;
    Ok(Rotation {
        rotated_connections,
        rotated_flows,
        old_key_id,
        new_key_id,
        key_file: Some(key_file),
        new_master_key: None,
    })
}
