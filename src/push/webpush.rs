//! Web Push: RFC 8291 `aes128gcm` payload encryption (ECDH P-256, HKDF-
//! SHA-256, AES-128-GCM, one record) and RFC 8292 VAPID (an ES256 JWT per
//! push service origin). Pure functions; [`super::deliver`] sends.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use p256::{PublicKey, SecretKey};
use sha2::Sha256;

use crate::error::Error;

/// The file name of the generated VAPID key inside the data directory.
pub const GENERATED_VAPID_FILE: &str = "vapid-p256.pem";

/// The record size announced in the header: one record carries the whole
/// payload (at most [`MAX_PLAINTEXT`] bytes).
const RECORD_SIZE: u32 = 4096;

/// Most plaintext bytes in one notification (RFC 8291: a push service must
/// accept 4096 bytes of body; header 86 + tag 16 + delimiter 1 leave 3993).
pub const MAX_PLAINTEXT: usize = 3993;

/// Why a subscription's keys cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// `p256dh` is not a base64url uncompressed P-256 point.
    #[error("p256dh is not a base64url P-256 public key")]
    P256dh,
    /// `auth` is not 16 base64url-encoded bytes.
    #[error("auth is not 16 base64url bytes")]
    Auth,
}

/// A subscription's decoded keys.
pub struct Subscriber {
    public: PublicKey,
    auth: [u8; 16],
}

impl Subscriber {
    /// Decodes `p256dh` and `auth` as `PushSubscription.toJSON()` gives
    /// them (base64url; padding tolerated).
    pub fn parse(p256dh: &str, auth: &str) -> Result<Subscriber, KeyError> {
        let raw = decode(p256dh).ok_or(KeyError::P256dh)?;
        if raw.len() != 65 {
            return Err(KeyError::P256dh);
        }
        let public = PublicKey::from_sec1_bytes(&raw).map_err(|_| KeyError::P256dh)?;
        let auth: [u8; 16] = decode(auth).and_then(|a| a.try_into().ok()).ok_or(KeyError::Auth)?;
        Ok(Subscriber { public, auth })
    }
}

fn decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    Ok(b)
}

fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], out: &mut [u8]) -> Result<(), Error> {
    Hkdf::<Sha256>::new(Some(salt), ikm).expand(info, out).map_err(|_| Error::Internal("hkdf length".into()))
}

/// Encrypts `plaintext` for `to` (RFC 8291, `Content-Encoding: aes128gcm`):
/// a fresh ephemeral key and salt per call. The plaintext must be at most
/// [`MAX_PLAINTEXT`] bytes.
pub fn encrypt(to: &Subscriber, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(Error::Internal("web push payload too large".into()));
    }
    let ephemeral = SecretKey::from_bytes(&random::<32>()?.into())
        .map_err(|_| Error::Internal("ephemeral key out of range".into()))?;
    let as_public = ephemeral.public_key().to_encoded_point(false);
    let ua_public = to.public.to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), to.public.as_affine());
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(ua_public.as_bytes());
    key_info.extend_from_slice(as_public.as_bytes());
    let mut ikm = [0u8; 32];
    hkdf(&to.auth, shared.raw_secret_bytes(), &key_info, &mut ikm)?;
    let salt = random::<16>()?;
    let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
    hkdf(&salt, &ikm, b"Content-Encoding: aes128gcm\0", &mut cek)?;
    hkdf(&salt, &ikm, b"Content-Encoding: nonce\0", &mut nonce)?;
    let mut record = plaintext.to_vec();
    record.push(2); // the last (and only) record's delimiter, no padding
    let cipher = Aes128Gcm::new_from_slice(&cek).map_err(|_| Error::Internal("aes key length".into()))?;
    let sealed = cipher
        .encrypt(&Nonce::from(nonce), record.as_slice())
        .map_err(|_| Error::Internal("aes-gcm encryption failed".into()))?;
    let mut body = Vec::with_capacity(86 + sealed.len());
    body.extend_from_slice(&salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(65);
    body.extend_from_slice(as_public.as_bytes());
    body.extend_from_slice(&sealed);
    Ok(body)
}

/// The VAPID key pair (RFC 8292): signs a JWT per push service origin.
pub struct Vapid {
    key: SigningKey,
    /// The public key, base64url uncompressed point: `k=` and what clients
    /// pass as `applicationServerKey`.
    pub public_key: String,
    subject: String,
    /// Signed headers by audience, with their expiry (Unix seconds): an
    /// ECDSA signature per notification was most of a send's CPU, and a
    /// push service accepts the same token until it expires.
    signed: std::sync::Mutex<std::collections::HashMap<String, (i64, String)>>,
}

/// How long a signed VAPID token is valid (RFC 8292: at most 24 h).
const TOKEN_SECS: i64 = 12 * 3600;
/// A cached token is used while it has at least this long left.
const TOKEN_MIN_LEFT_SECS: i64 = 6 * 3600;
/// Audiences (push service origins) kept signed; a few in practice.
const MAX_AUDIENCES: usize = 256;

impl Vapid {
    /// Loads `configured` (PKCS#8 PEM, P-256), or the generated key in
    /// `data_dir`, generating it on first start. `subject` is the JWT's
    /// `sub` (a `mailto:` or `https:` contact for push services).
    pub fn load_or_generate(configured: Option<&Path>, data_dir: &Path, subject: &str) -> Result<Vapid, Error> {
        let path = match configured {
            Some(p) => p.to_path_buf(),
            None => {
                let p = data_dir.join(GENERATED_VAPID_FILE);
                if !p.exists() {
                    let key = SecretKey::from_bytes(&random::<32>()?.into())
                        .map_err(|_| Error::Internal("VAPID key out of range".into()))?;
                    let pem = key
                        .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
                        .map_err(|e| Error::Internal(format!("encoding VAPID key: {e}")))?;
                    crate::auth::keys::install_private(&p, pem.as_bytes(), "VAPID key")?;
                }
                p
            }
        };
        let pem = std::fs::read_to_string(&path)
            .map_err(|e| Error::Internal(format!("reading VAPID key {}: {e}", path.display())))?;
        let secret = SecretKey::from_pkcs8_pem(&pem)
            .map_err(|e| Error::Internal(format!("VAPID key {} is not a P-256 PKCS#8 PEM: {e}", path.display())))?;
        let public_key = URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false).as_bytes());
        Ok(Vapid { key: SigningKey::from(secret), public_key, subject: subject.to_owned(), signed: Default::default() })
    }

    /// The `Authorization` header for `audience` at `now` (Unix seconds):
    /// the one signed last for it while it has [`TOKEN_MIN_LEFT_SECS`]
    /// left, else a new one valid for [`TOKEN_SECS`].
    pub fn authorization_at(&self, audience: &str, now: i64) -> String {
        let mut signed = self.signed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((exp, header)) = signed.get(audience)
            && *exp - now >= TOKEN_MIN_LEFT_SECS
        {
            return header.clone();
        }
        let exp = now + TOKEN_SECS;
        let header = self.authorization(audience, exp);
        if signed.len() >= MAX_AUDIENCES {
            signed.clear();
        }
        signed.insert(audience.to_owned(), (exp, header.clone()));
        header
    }

    /// The `Authorization` header value for a push to `audience` (a push
    /// service origin), newly signed, valid until `exp` (Unix seconds; at
    /// most 24 h ahead per RFC 8292).
    pub fn authorization(&self, audience: &str, exp: i64) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({ "aud": audience, "exp": exp, "sub": self.subject });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{claims}");
        let sig: Signature = self.key.sign(input.as_bytes());
        let jwt = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()));
        format!("vapid t={jwt}, k={}", self.public_key)
    }
}

/// The origin (`scheme://host[:port]`) of a URL: the VAPID audience.
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty()).then(|| format!("{scheme}://{host}"))
}

/// The `Topic` header for a conversation: 32 URL-safe characters (hex of
/// a SHA-256 prefix), the same for every notification of it, so a push
/// service keeps only the newest one undelivered.
pub fn topic(conversation: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(conversation.as_bytes())[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypt_then_decrypt_by_the_rfc_steps() {
        let ua = SecretKey::from_bytes(&[7u8; 32].into()).unwrap();
        let ua_pub = ua.public_key().to_encoded_point(false);
        let auth = [9u8; 16];
        let sub = Subscriber::parse(&URL_SAFE_NO_PAD.encode(ua_pub.as_bytes()), &URL_SAFE_NO_PAD.encode(auth)).unwrap();
        let body = encrypt(&sub, b"hello").unwrap();
        assert_eq!(body.len(), 86 + 5 + 1 + 16);
        let (salt, as_pub) = (&body[..16], &body[21..86]);
        let shared =
            p256::ecdh::diffie_hellman(ua.to_nonzero_scalar(), PublicKey::from_sec1_bytes(as_pub).unwrap().as_affine());
        let mut info = b"WebPush: info\0".to_vec();
        info.extend_from_slice(ua_pub.as_bytes());
        info.extend_from_slice(as_pub);
        let mut ikm = [0u8; 32];
        hkdf(&auth, shared.raw_secret_bytes(), &info, &mut ikm).unwrap();
        let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
        hkdf(salt, &ikm, b"Content-Encoding: aes128gcm\0", &mut cek).unwrap();
        hkdf(salt, &ikm, b"Content-Encoding: nonce\0", &mut nonce).unwrap();
        let plain = Aes128Gcm::new_from_slice(&cek).unwrap().decrypt(&Nonce::from(nonce), &body[86..]).unwrap();
        assert_eq!(plain, b"hello\x02");
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(matches!(Subscriber::parse("abc", "AAAAAAAAAAAAAAAAAAAAAA"), Err(KeyError::P256dh)));
        let ua = SecretKey::from_bytes(&[7u8; 32].into()).unwrap();
        let p = URL_SAFE_NO_PAD.encode(ua.public_key().to_encoded_point(false).as_bytes());
        assert!(matches!(Subscriber::parse(&p, "AAAA"), Err(KeyError::Auth)));
    }

    #[test]
    fn a_signed_token_is_reused_until_it_runs_low() {
        let dir = tempfile::tempdir().unwrap();
        let v = Vapid::load_or_generate(None, dir.path(), "mailto:ops@example.com").unwrap();
        let (a, b) = ("https://fcm.googleapis.com", "https://updates.push.services.mozilla.com");
        let first = v.authorization_at(a, 1_000_000);
        assert_eq!(v.authorization_at(a, 1_000_000 + TOKEN_SECS - TOKEN_MIN_LEFT_SECS), first);
        assert_ne!(v.authorization_at(b, 1_000_000), first, "one token per audience");
        let renewed = v.authorization_at(a, 1_000_001 + TOKEN_SECS - TOKEN_MIN_LEFT_SECS);
        assert_ne!(renewed, first);
        let claims = renewed.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        assert_eq!(claims["exp"], 1_000_001 + TOKEN_SECS - TOKEN_MIN_LEFT_SECS + TOKEN_SECS);
        assert_eq!(claims["aud"], a);
    }

    #[test]
    fn origin_and_topic() {
        assert_eq!(origin("https://fcm.googleapis.com/fcm/send/abc").as_deref(), Some("https://fcm.googleapis.com"));
        assert_eq!(origin("http://127.0.0.1:9/x?y").as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(topic("1-2").len(), 32);
    }
}
