//! Rooms and the WebSocket signaling protocol of `natter serve`, sans-IO.
//!
//! The protocol (version 1) is specified in `docs/signaling.md`: JSON text
//! frames that join a room, relay JSEP session descriptions (RFC 8829) and
//! trickled ICE candidates (RFC 8838) between participants, report
//! presence, and answer every bad message with a documented error code.
//!
//! - [`message`]: parsing and validation of client messages, and the
//!   server's messages.
//! - [`token`]: join tokens, JWTs (RFC 7519) signed with HS256.
//! - [`rooms`]: the [`Signaling`] state machine: rooms, sessions with
//!   resume, heartbeats, limits, and TURN REST credentials for each
//!   participant.
//!
//! ```
//! use std::time::Instant;
//! use natter_signaling::{Config, Output, Signaling, TokenKey};
//!
//! let mut config = Config::new(TokenKey::new(b"server secret"));
//! config.dev = true;
//! let mut signaling = Signaling::new(config, [7; 32]);
//! let now = Instant::now();
//! let conn = signaling.handle_connect(now);
//! signaling.handle_text(conn, r#"{"type":"join","version":1,"room":"demo","name":"Ann"}"#, now, 0);
//! let Some(Output::Send { text, .. }) = signaling.poll_output() else { panic!() };
//! assert!(text.starts_with(r#"{"type":"welcome""#));
//! ```

pub mod error;
pub mod message;
pub mod rooms;
pub mod token;

pub use error::{ErrorCode, Refusal};
pub use message::{ClientMessage, VERSION};
pub use rooms::{ApiError, Config, ConnectionId, Output, RoomInfo, SfuInput, Signaling, TurnService};
pub use token::{JoinClaims, TokenKey};
