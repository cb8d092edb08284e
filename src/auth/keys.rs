//! The Ed25519 key pair that signs access tokens: loaded from a configured
//! PKCS#8 PEM file, or generated on first start into the data directory
//! (mode 0600) so a fresh `cargo run` works. [`super::keyring`] holds
//! several of them for rotation.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{DecodingKey, EncodingKey};
use sha2::{Digest, Sha256};

use crate::error::Error;

/// Signing and verification keys, plus what `/.well-known/jwks.json` shows.
pub struct Keys {
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// Key id: the first 16 hex digits of SHA-256 of the public key.
    pub kid: String,
    /// The public key, base64url (the JWK `x` member).
    pub public_x: String,
}

/// The file name of the generated key inside the data directory.
pub const GENERATED_KEY_FILE: &str = "jwt-ed25519.pem";

impl Keys {
    /// Loads `configured`, or the generated key in `data_dir`, generating it if missing.
    pub fn load_or_generate(configured: Option<&Path>, data_dir: &Path) -> Result<Keys, Error> {
        let path = match configured {
            Some(p) => p.to_path_buf(),
            None => {
                let p = data_dir.join(GENERATED_KEY_FILE);
                if !p.exists() {
                    generate_into(&p)?;
                }
                p
            }
        };
        Keys::load(&path)
    }

    /// Loads the Ed25519 PKCS#8 PEM key at `path`.
    pub fn load(path: &Path) -> Result<Keys, Error> {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| Error::Internal(format!("reading JWT key {}: {e}", path.display())))?;
        let signing = SigningKey::from_pkcs8_pem(&pem)
            .map_err(|e| Error::Internal(format!("JWT key {} is not an Ed25519 PKCS#8 PEM: {e}", path.display())))?;
        Keys::from_signing_key(&signing)
    }

    /// A new random key as PKCS#8 PEM, and its key id.
    pub fn generate_pem() -> Result<(String, String), Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
        let key = SigningKey::from_bytes(&seed);
        let pem = key
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| Error::Internal(format!("encoding JWT key: {e}")))?;
        Ok((pem.to_string(), Keys::from_signing_key(&key)?.kid))
    }

    fn from_signing_key(signing: &SigningKey) -> Result<Keys, Error> {
        let der = signing.to_pkcs8_der().map_err(|e| Error::Internal(format!("encoding JWT key: {e}")))?;
        let public = signing.verifying_key().to_bytes();
        let kid = Sha256::digest(public)[..8].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Keys {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            decoding: DecodingKey::from_ed_der(&public),
            kid,
            public_x: URL_SAFE_NO_PAD.encode(public),
        })
    }
}

fn generate_into(path: &Path) -> Result<(), Error> {
    let (pem, _) = Keys::generate_pem()?;
    install_private(path, pem.as_bytes(), "JWT key")
}

/// Writes a generated private key `pem` to `path` (mode 0600) unless a key
/// is there already; `what` names it in messages. Shared by the JWT and
/// the VAPID key.
pub(crate) fn install_private(path: &Path, pem: &[u8], what: &str) -> Result<(), Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::Internal(format!("creating {}: {e}", dir.display())))?;
    }
    // Written whole to a private temporary file, then linked into place:
    // nodes starting together on one data directory never read half a key,
    // and if another node linked its key first, that one is used.
    let mut suffix = [0u8; 8];
    let _ = getrandom::fill(&mut suffix);
    let tmp = path.with_extension(format!("tmp-{}", u64::from_le_bytes(suffix)));
    write_private(&tmp, pem).map_err(|e| Error::Internal(format!("writing {what} {}: {e}", tmp.display())))?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => tracing::info!(path = %path.display(), "generated a new {what}"),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::Internal(format!("writing {what} {}: {e}", path.display()))),
    }
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, data)
}
