//! Password rules and bcrypt. Requests hash through the bounded pool
//! ([`super::pool`]) with the blocking forms; the async forms are for
//! start-up work.

use crate::error::{Error, bad_request};

/// Shortest accepted password, in bytes.
pub const MIN_PASSWORD_BYTES: usize = 8;
/// Longest accepted password, in bytes (bcrypt's own limit; never truncated).
pub const MAX_PASSWORD_BYTES: usize = 72;

/// Checks the length rules of a new password.
pub fn validate(password: &str) -> Result<(), Error> {
    let n = password.len();
    if n < MIN_PASSWORD_BYTES {
        return Err(bad_request(format!("password must be at least {MIN_PASSWORD_BYTES} bytes")));
    }
    if n > MAX_PASSWORD_BYTES {
        return Err(bad_request(format!("password must be at most {MAX_PASSWORD_BYTES} bytes")));
    }
    Ok(())
}

/// Hashes a password with bcrypt at `cost`, off the async workers.
pub async fn hash(password: String, cost: u32) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || bcrypt::hash(password, cost))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::Internal(format!("bcrypt: {e}")))
}

/// Checks a password against a bcrypt hash, off the async workers. A
/// malformed hash counts as a mismatch.
pub async fn verify(password: String, hash: String) -> Result<bool, Error> {
    tokio::task::spawn_blocking(move || verify_blocking(&password, &hash))
        .await
        .map_err(|e| Error::Internal(e.to_string()))
}

/// [`hash`] on the calling thread (run it on the pool).
pub fn hash_blocking(password: &str, cost: u32) -> Result<String, Error> {
    bcrypt::hash(password, cost).map_err(|e| Error::Internal(format!("bcrypt: {e}")))
}

/// [`verify`] on the calling thread (run it on the pool).
pub fn verify_blocking(password: &str, hash: &str) -> bool {
    password.len() <= MAX_PASSWORD_BYTES && bcrypt::verify(password, hash).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_enforced_in_bytes() {
        assert!(validate("short").is_err());
        assert!(validate("longenough").is_ok());
        assert!(validate(&"x".repeat(72)).is_ok());
        assert!(validate(&"x".repeat(73)).is_err());
        assert!(validate(&"é".repeat(37)).is_err()); // 74 bytes
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let h = hash("correct horse".into(), 4).await.unwrap();
        assert!(verify("correct horse".into(), h.clone()).await.unwrap());
        assert!(!verify("wrong horse!".into(), h).await.unwrap());
        assert!(!verify("x".into(), "not a hash".into()).await.unwrap());
    }
}
