
pub mod peer_filter;
