//! Access tokens (EdDSA JWTs) and refresh tokens (opaque, stored hashed).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::keys::Keys;
use crate::error::Error;
use crate::model::{SessionId, UserId};

const ISSUER: &str = "hubbub";
const ACCESS: &str = "access";

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id (immutable), as a string.
    pub sub: String,
    /// The session (refresh family) this token belongs to.
    pub sid: String,
    pub jti: String,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    /// Token type: always "access".
    pub typ: String,
}

/// Random bytes as lowercase hex.
pub fn random_hex(bytes: usize) -> Result<String, Error> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Signs an access token for `user` in `session`, valid `ttl` seconds.
pub fn issue_access(keys: &Keys, user: UserId, session: &SessionId, ttl: u64) -> Result<String, Error> {
    let now = crate::model::now_ms() as u64 / 1000;
    let claims = Claims {
        sub: user.to_string(),
        sid: session.0.clone(),
        jti: random_hex(12)?,
        iat: now,
        exp: now + ttl,
        iss: ISSUER.into(),
        typ: ACCESS.into(),
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(keys.kid.clone());
    jsonwebtoken::encode(&header, &claims, &keys.encoding).map_err(|e| Error::Internal(format!("signing a token: {e}")))
}

/// The `kid` in a token's header (which key to verify it with).
pub fn kid_of(token: &str) -> Result<String, Error> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| Error::Unauthorized("invalid access token: malformed".into()))?;
    header.kid.ok_or_else(|| Error::Unauthorized("invalid access token: no key id".into()))
}

/// Verifies signature, issuer, type and expiry; returns the user and session.
pub fn verify_access(keys: &Keys, token: &str) -> Result<(UserId, SessionId), Error> {
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_issuer(&[ISSUER]);
    v.set_required_spec_claims(&["exp", "sub", "iss"]);
    v.leeway = 5;
    let data = jsonwebtoken::decode::<Claims>(token, &keys.decoding, &v)
        .map_err(|e| Error::Unauthorized(format!("invalid access token: {}", describe(&e))))?;
    let c = data.claims;
    if c.typ != ACCESS {
        return Err(Error::Unauthorized("invalid access token: not an access token".into()));
    }
    let user = UserId::parse(&c.sub).ok_or_else(|| Error::Unauthorized("invalid access token".into()))?;
    Ok((user, SessionId(c.sid)))
}

fn describe(e: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "expired",
        K::InvalidSignature => "bad signature",
        K::InvalidIssuer => "wrong issuer",
        K::InvalidAlgorithm => "wrong algorithm",
        _ => "malformed",
    }
}

/// A new refresh token for `session`: `(token, sha256 of its secret)`.
/// The token is `<session id>.<secret>`; only the hash is stored.
pub fn new_refresh(session: &SessionId) -> Result<(String, Vec<u8>), Error> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    let secret = URL_SAFE_NO_PAD.encode(secret);
    let hash = Sha256::digest(secret.as_bytes()).to_vec();
    Ok((format!("{}.{}", session.0, secret), hash))
}

/// Splits a presented refresh token into its session and secret hash.
pub fn parse_refresh(token: &str) -> Result<(SessionId, Vec<u8>), Error> {
    let bad = || Error::Unauthorized("invalid refresh token".into());
    let (sid, secret) = token.split_once('.').ok_or_else(bad)?;
    if sid.len() != 32 || !sid.bytes().all(|b| b.is_ascii_hexdigit()) || secret.is_empty() || secret.len() > 64 {
        return Err(bad());
    }
    Ok((SessionId(sid.to_owned()), Sha256::digest(secret.as_bytes()).to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        Keys::load_or_generate(None, dir.path()).unwrap()
    }

    #[test]
    fn access_tokens_round_trip_and_reject_tampering() {
        let k = keys();
        let sid = SessionId(random_hex(16).unwrap());
        let t = issue_access(&k, UserId(42), &sid, 60).unwrap();
        assert_eq!(verify_access(&k, &t).unwrap(), (UserId(42), sid));
        let mut bad = t.clone();
        bad.pop();
        bad.push(if t.ends_with('A') { 'B' } else { 'A' });
        assert!(verify_access(&k, &bad).is_err());
        assert!(verify_access(&keys(), &t).is_err(), "another key must not verify");
    }

    #[test]
    fn refresh_tokens_parse_back_to_their_hash() {
        let sid = SessionId(random_hex(16).unwrap());
        let (t, h) = new_refresh(&sid).unwrap();
        assert_eq!(parse_refresh(&t).unwrap(), (sid, h));
        assert!(parse_refresh("nonsense").is_err());
        assert!(parse_refresh("abc.def").is_err());
    }
}
