//! The application error type and its mapping to protocol error codes.
//! This is the one place where internal errors become client-visible codes
//! and messages; internal details (backend text, paths) never cross it.

use crate::protocol::ErrorCode;

/// Errors from a storage backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated (e.g. username taken).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The backend did not answer in time or is shutting down.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else the backend reported.
    #[error("storage backend: {0}")]
    Backend(String),
    /// The acting user (or a user the write names) no longer exists, checked
    /// in the same transaction as the write (the account was deleted):
    /// nothing was written.
    #[error("this account no longer exists")]
    UserGone,
    /// A direct message refused because the sender blocks the recipient
    /// (checked with the write: nothing was written).
    #[error("you blocked this user; unblock them to message")]
    SenderBlocks,
    /// A direct message refused because the recipient blocks the sender.
    #[error("you cannot message this user")]
    RecipientBlocks,
}

/// Errors from a broker backend.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The broker did not answer in time, refused, or is unreachable.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// A lease (e.g. a snowflake worker id) is held by another node.
    #[error("{0}")]
    LeaseHeld(String),
}

/// Every failure a request can end in.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("unknown request type `{0}`")]
    UnknownType(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("internal: {0}")]
    Internal(String),
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The stable protocol code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::BadRequest(_) => ErrorCode::BadRequest,
            Error::UnknownType(_) => ErrorCode::UnknownType,
            Error::Unauthorized(_) | Error::Store(StoreError::UserGone) => ErrorCode::Unauthorized,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::Store(StoreError::SenderBlocks | StoreError::RecipientBlocks) => ErrorCode::Forbidden,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Conflict(_) | Error::Store(StoreError::Conflict(_)) => ErrorCode::Conflict,
            Error::RateLimited(_) => ErrorCode::RateLimited,
            Error::TooLarge(_) => ErrorCode::TooLarge,
            Error::LimitExceeded(_) => ErrorCode::LimitExceeded,
            Error::Store(StoreError::Unavailable(_)) | Error::Broker(_) => ErrorCode::Unavailable,
            Error::Store(StoreError::Backend(_)) | Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The message a client may see: the text for client errors, a fixed
    /// sentence for server-side failures.
    pub fn client_message(&self) -> String {
        match self.code() {
            ErrorCode::Unavailable => "the server is temporarily unable to do this; retry later".into(),
            ErrorCode::Internal => "internal server error".into(),
            ErrorCode::Conflict => match self {
                Error::Store(StoreError::Conflict(what)) => format!("{what} already exists"),
                other => other.to_string(),
            },
            _ => self.to_string(),
        }
    }

    /// True when the error is the server's fault and worth logging.
    pub fn is_server_side(&self) -> bool {
        matches!(self.code(), ErrorCode::Unavailable | ErrorCode::Internal)
    }
}

/// Builds an [`Error::BadRequest`] from anything printable.
pub fn bad_request(msg: impl Into<String>) -> Error {
    Error::BadRequest(msg.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_side_details_never_reach_the_client() {
        let e = Error::Store(StoreError::Backend("disk I/O error at /secret/path".into()));
        assert_eq!(e.code(), ErrorCode::Internal);
        assert!(!e.client_message().contains("secret"));
        let e = Error::Store(StoreError::Unavailable("timeout".into()));
        assert_eq!(e.code(), ErrorCode::Unavailable);
    }
}
