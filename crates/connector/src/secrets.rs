//! Encryption of connection secrets at rest.
//!
//! Every secret is sealed with XChaCha20-Poly1305 under the instance's master key, with a fresh
//! random 24-byte nonce per value (large enough that random nonces never collide in practice).
//! A sealed value reads `v1:<key_id>:<base64(nonce || ciphertext)>`; the key id names the master
//! key so that `dtc admin rotate-key` can still open values sealed under a previous key. The key
//! id and a caller-chosen context (such as `connection:<id>:secrets`) are bound as associated data,
//! so a sealed value copied into another row, or relabelled with another key id, fails to open.
//!
//! Errors never carry plaintext or key material.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use secrecy::zeroize::{Zeroize, Zeroizing};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Environment variable holding the master key (base64 of 32 bytes).
pub const MASTER_KEY_ENV: &str = "DTC_MASTER_KEY";
/// File name of the generated master key inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const FORMAT_VERSION: &str = "v1";

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("{source_name} is not a valid master key: {reason}")]
    MalformedKey {
        source_name: String,
        reason: &'static str,
    },
    #[error(
        "master key file {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    InsecureKeyFile { path: PathBuf, mode: u32 },
    #[error("master key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sealed value is malformed: {0}")]
    Malformed(&'static str),
    #[error("sealed value uses key {key_id}, which is not in the keyring")]
    UnknownKey { key_id: String },
    /// Wrong key, tampered ciphertext, or a value moved to another context.
    #[error("sealed value failed authentication (wrong key, tampered, or wrong context)")]
    Authentication,
    #[error("sealed value is not UTF-8 text")]
    NotUtf8,
    #[error("encryption failed")]
    Encrypt,
}

/// A 256-bit master key. `Debug` shows only its key id; the bytes are zeroed on drop.
#[derive(Clone)]
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    key_id: String,
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let key_id = key_id_of(&bytes);
        MasterKey {
            bytes: Zeroizing::new(bytes),
            key_id,
        }
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut bytes);
        let key = Self::from_bytes(bytes);
        bytes.zeroize();
        key
    }

    /// Parses base64 of exactly 32 bytes; `source_name` (e.g. `DTC_MASTER_KEY`) names where the
    /// text came from in the error.
    pub fn from_base64(text: &str, source_name: &str) -> Result<Self, SecretsError> {
        let malformed = |reason| SecretsError::MalformedKey {
            source_name: source_name.to_owned(),
            reason,
        };
        let decoded = Zeroizing::new(
            B64.decode(text.trim())
                .map_err(|_| malformed("not valid base64"))?,
        );
        let bytes: [u8; KEY_LEN] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| malformed("must decode to exactly 32 bytes"))?;
        Ok(Self::from_bytes(bytes))
    }

    /// The key as base64, for writing it to a file or showing it once to an operator.
    pub fn to_base64(&self) -> SecretString {
        SecretString::from(B64.encode(self.bytes.as_slice()))
    }

    /// First 8 hex characters of sha256(key): identifies the key without revealing it.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key from `DTC_MASTER_KEY` if given (the caller reads the environment, so settings
    /// layering stays in one place), otherwise from `<data_dir>/master.key`, generating that
    /// file with mode 0600 on first use.
    pub fn load(env_value: Option<&SecretString>, data_dir: &Path) -> Result<Self, SecretsError> {
        match env_value {
            Some(text) => Self::from_base64(text.expose_secret(), MASTER_KEY_ENV),
            None => Self::load_or_generate_file(&data_dir.join(MASTER_KEY_FILE)),
        }
    }

    /// Reads the key file, or creates it (and its directory) with a new key if it is missing.
    /// Refuses a file that group or others can read: the key would no longer be secret.
    pub fn load_or_generate_file(path: &Path) -> Result<Self, SecretsError> {
        let io_err = |source| SecretsError::KeyFile {
            path: path.to_owned(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private(path)?;
                let text = Zeroizing::new(text);
                Self::from_base64(&text, &path.display().to_string())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(io_err)?;
                }
                let key = Self::generate();
                match key.write_new_file(path) {
                    Ok(()) => Ok(key),
                    // Another process created it between our read and create: use theirs.
                    Err(SecretsError::KeyFile { source, .. })
                        if source.kind() == std::io::ErrorKind::AlreadyExists =>
                    {
                        Self::load_or_generate_file(path)
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// Writes the key to a file that must not exist yet, readable by the owner only.
    pub fn write_new_file(&self, path: &Path) -> Result<(), SecretsError> {
        let io_err = |source| SecretsError::KeyFile {
            path: path.to_owned(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io_err)?;
        let mut line = Zeroizing::new(self.to_base64().expose_secret().to_owned());
        line.push('\n');
        file.write_all(line.as_bytes()).map_err(io_err)?;
        file.sync_all().map_err(io_err)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.bytes.as_slice().into())
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

fn key_id_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!("{digest:x}")[..8].to_owned()
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), SecretsError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|source| SecretsError::KeyFile {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(SecretsError::InsecureKeyFile {
            path: path.to_owned(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), SecretsError> {
    Ok(())
}

/// The current key (used to seal) and previous keys (still accepted to open), so a rotation can
/// read values sealed before it.
#[derive(Clone, Debug)]
pub struct Keyring {
    pub current: MasterKey,
    pub previous: Vec<MasterKey>,
}

impl Keyring {
    pub fn new(current: MasterKey) -> Self {
        Keyring {
            current,
            previous: Vec::new(),
        }
    }

    fn find(&self, key_id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.key_id() == key_id)
    }
}

fn associated_data(key_id: &str, context: &str) -> Vec<u8> {
    format!("dtc-secret:{FORMAT_VERSION}:{key_id}:{context}").into_bytes()
}

/// Seals `plaintext` under the keyring's current key, bound to `context`.
pub fn seal(keyring: &Keyring, context: &str, plaintext: &str) -> Result<String, SecretsError> {
    let key = &keyring.current;
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let aad = associated_data(key.key_id(), context);
    let ciphertext = key
        .cipher()
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext.as_bytes(),
                aad: &aad,
            },
        )
        .map_err(|_| SecretsError::Encrypt)?;
    let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&ciphertext);
    Ok(format!(
        "{FORMAT_VERSION}:{}:{}",
        key.key_id(),
        B64.encode(blob)
    ))
}

/// Opens a value sealed by [`seal`] with the same `context`, using whichever key of the keyring
/// its key id names.
pub fn open(keyring: &Keyring, context: &str, sealed: &str) -> Result<SecretString, SecretsError> {
    let (key_id, blob) = parse(sealed)?;
    let key = keyring
        .find(key_id)
        .ok_or_else(|| SecretsError::UnknownKey {
            key_id: key_id.to_owned(),
        })?;
    let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
    let aad = associated_data(key_id, context);
    let plaintext = Zeroizing::new(
        key.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SecretsError::Authentication)?,
    );
    let text = std::str::from_utf8(&plaintext).map_err(|_| SecretsError::NotUtf8)?;
    Ok(SecretString::from(text.to_owned()))
}

/// The key id a sealed value names, without opening it.
pub fn sealed_key_id(sealed: &str) -> Result<&str, SecretsError> {
    parse(sealed).map(|(key_id, _)| key_id)
}

fn parse(sealed: &str) -> Result<(&str, Vec<u8>), SecretsError> {
    let mut parts = sealed.splitn(3, ':');
    let (Some(version), Some(key_id), Some(payload)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(SecretsError::Malformed("expected v1:<key_id>:<payload>"));
    };
    if version != FORMAT_VERSION {
        return Err(SecretsError::Malformed("unknown format version"));
    }
    let blob = B64
        .decode(payload)
        .map_err(|_| SecretsError::Malformed("payload is not base64"))?;
    // A Poly1305 tag is 16 bytes, so anything shorter than nonce + tag cannot be genuine.
    if blob.len() < NONCE_LEN + 16 {
        return Err(SecretsError::Malformed("payload too short"));
    }
    Ok((key_id, blob))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: &str = "connection:1:secrets";

    fn ring() -> Keyring {
        Keyring::new(MasterKey::generate())
    }

    #[test]
    fn sealed_value_opens_to_the_plaintext() {
        let ring = ring();
        let sealed = seal(&ring, CTX, "s3cr3t-value").unwrap();
        assert!(sealed.starts_with(&format!("v1:{}:", ring.current.key_id())));
        assert!(!sealed.contains("s3cr3t-value"));
        assert_eq!(
            open(&ring, CTX, &sealed).unwrap().expose_secret(),
            "s3cr3t-value"
        );
    }

    #[test]
    fn sealing_twice_uses_a_fresh_nonce() {
        let ring = ring();
        let a = seal(&ring, CTX, "same").unwrap();
        let b = seal(&ring, CTX, "same").unwrap();
        assert_ne!(a, b);
        assert_ne!(
            parse(&a).unwrap().1[..NONCE_LEN],
            parse(&b).unwrap().1[..NONCE_LEN]
        );
    }

    #[test]
    fn tampered_ciphertext_is_rejected() {
        let ring = ring();
        let sealed = seal(&ring, CTX, "value").unwrap();
        let (key_id, mut blob) = parse(&sealed).unwrap();
        let last = blob.len() - 1;
        blob[last] ^= 1;
        let tampered = format!("v1:{key_id}:{}", B64.encode(&blob));
        assert!(matches!(
            open(&ring, CTX, &tampered),
            Err(SecretsError::Authentication)
        ));
    }

    #[test]
    fn a_different_key_cannot_open() {
        let sealed = seal(&ring(), CTX, "value").unwrap();
        let other = ring();
        assert!(matches!(
            open(&other, CTX, &sealed),
            Err(SecretsError::UnknownKey { .. })
        ));
        // Same key id claimed, different key bytes: authentication must fail, not garbage out.
        let (_, blob) = parse(&sealed).unwrap();
        let relabelled = format!("v1:{}:{}", other.current.key_id(), B64.encode(&blob));
        assert!(matches!(
            open(&other, CTX, &relabelled),
            Err(SecretsError::Authentication)
        ));
    }

    #[test]
    fn a_value_moved_to_another_context_does_not_open() {
        let ring = ring();
        let sealed = seal(&ring, "connection:1:secrets", "value").unwrap();
        assert!(matches!(
            open(&ring, "connection:2:secrets", &sealed),
            Err(SecretsError::Authentication)
        ));
    }

    #[test]
    fn malformed_values_are_rejected_without_echoing_them() {
        let ring = ring();
        for bad in [
            "",
            "v1:abc",
            "v2:abc:AAAA",
            "v1:abc:not base64!",
            "v1:abc:AAAA",
        ] {
            let err = open(&ring, CTX, bad).unwrap_err();
            assert!(matches!(err, SecretsError::Malformed(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn rotation_opens_old_values_and_reseals_under_the_new_key() {
        let old = MasterKey::generate();
        let sealed_old = seal(&Keyring::new(old.clone()), CTX, "value").unwrap();
        let new = MasterKey::generate();
        let rotated = Keyring {
            current: new.clone(),
            previous: vec![old.clone()],
        };
        let opened = open(&rotated, CTX, &sealed_old).unwrap();
        assert_eq!(opened.expose_secret(), "value");
        let resealed = seal(&rotated, CTX, opened.expose_secret()).unwrap();
        assert_eq!(sealed_key_id(&resealed).unwrap(), new.key_id());
        assert_ne!(new.key_id(), old.key_id());
        // After rotation the old key is no longer needed.
        let open_new_only = open(&Keyring::new(new), CTX, &resealed).unwrap();
        assert_eq!(open_new_only.expose_secret(), "value");
    }

    #[test]
    fn debug_shows_only_the_key_id() {
        let key = MasterKey::from_bytes([7u8; 32]);
        let shown = format!("{key:?}");
        assert!(shown.contains(key.key_id()));
        assert!(!shown.contains(key.to_base64().expose_secret()));
        assert_eq!(key.key_id().len(), 8);
    }

    #[test]
    fn malformed_env_key_gets_a_clear_error() {
        let err = MasterKey::from_base64("not base64!", MASTER_KEY_ENV).unwrap_err();
        assert_eq!(
            err.to_string(),
            "DTC_MASTER_KEY is not a valid master key: not valid base64"
        );
        let short = B64.encode([1u8; 16]);
        let err = MasterKey::from_base64(&short, MASTER_KEY_ENV).unwrap_err();
        assert!(err.to_string().contains("exactly 32 bytes"));
        let key = MasterKey::generate();
        let back = MasterKey::from_base64(key.to_base64().expose_secret(), MASTER_KEY_ENV).unwrap();
        assert_eq!(back.key_id(), key.key_id());
    }

    #[test]
    fn key_file_is_generated_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("dtc-data");
        let first = MasterKey::load(None, &data_dir).unwrap();
        let path = data_dir.join(MASTER_KEY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = MasterKey::load(None, &data_dir).unwrap();
        assert_eq!(first.key_id(), second.key_id());
        // The environment wins over the file.
        let env_key = MasterKey::generate();
        let from_env = MasterKey::load(Some(&env_key.to_base64()), &data_dir).unwrap();
        assert_eq!(from_env.key_id(), env_key.key_id());
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_key_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MASTER_KEY_FILE);
        MasterKey::load_or_generate_file(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = MasterKey::load_or_generate_file(&path).unwrap_err();
        assert!(
            matches!(err, SecretsError::InsecureKeyFile { mode: 0o644, .. }),
            "{err}"
        );
    }
}
