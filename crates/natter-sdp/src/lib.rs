//! natter-sdp: Session Description Protocol (RFC 8866) parsing and
//! serialization, with typed access to the attributes WebRTC uses.
