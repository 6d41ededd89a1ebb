//! The webrtc-echoes signaling the examples share: natter-io's
//! [`natter_io::echoes`], which `natter echo` speaks too.

pub use natter_io::echoes::*;
