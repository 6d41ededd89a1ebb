//! Media files read whole for sending: natter-io's [`natter_io::media_file`],
//! which `natter echo` shares.

pub use natter_io::media_file::*;
