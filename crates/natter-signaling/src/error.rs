//! The error codes of the protocol (`docs/signaling.md`, "Errors").

use serde::Serialize;

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    BadJson,
    BadMessage,
    UnknownType,
    TooLarge,
    RateLimited,
    NotJoined,
    AlreadyJoined,
    UnknownPeer,
    UnsupportedVersion,
    TokenRequired,
    TokenInvalid,
    TokenExpired,
    RoomFull,
    ResumeFailed,
}

impl ErrorCode {
    /// Every code, for metrics.
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::BadJson,
        ErrorCode::BadMessage,
        ErrorCode::UnknownType,
        ErrorCode::TooLarge,
        ErrorCode::RateLimited,
        ErrorCode::NotJoined,
        ErrorCode::AlreadyJoined,
        ErrorCode::UnknownPeer,
        ErrorCode::UnsupportedVersion,
        ErrorCode::TokenRequired,
        ErrorCode::TokenInvalid,
        ErrorCode::TokenExpired,
        ErrorCode::RoomFull,
        ErrorCode::ResumeFailed,
    ];

    /// The code as the protocol spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad-json",
            ErrorCode::BadMessage => "bad-message",
            ErrorCode::UnknownType => "unknown-type",
            ErrorCode::TooLarge => "too-large",
            ErrorCode::RateLimited => "rate-limited",
            ErrorCode::NotJoined => "not-joined",
            ErrorCode::AlreadyJoined => "already-joined",
            ErrorCode::UnknownPeer => "unknown-peer",
            ErrorCode::UnsupportedVersion => "unsupported-version",
            ErrorCode::TokenRequired => "token-required",
            ErrorCode::TokenInvalid => "token-invalid",
            ErrorCode::TokenExpired => "token-expired",
            ErrorCode::RoomFull => "room-full",
            ErrorCode::ResumeFailed => "resume-failed",
        }
    }

    /// The WebSocket close code that follows the error, for the errors
    /// that end the session: 4000 plus an HTTP-like status.
    pub fn close_code(self) -> Option<u16> {
        match self {
            ErrorCode::UnsupportedVersion => Some(4400),
            ErrorCode::TokenRequired | ErrorCode::TokenInvalid | ErrorCode::TokenExpired => Some(4401),
            ErrorCode::RoomFull => Some(4403),
            _ => None,
        }
    }
}

/// A refused message: the code, a message for people, and the type of
/// the message refused when it is known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
    pub reference: Option<String>,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
            reference: None,
        }
    }

    /// The same refusal, naming the type of the refused message.
    pub fn with_ref(mut self, kind: &str) -> Self {
        self.reference = Some(kind.chars().take(crate::message::MAX_NAME_CHARS).collect());
        self
    }
}
