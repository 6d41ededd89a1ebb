//! natter-sctp: WebRTC data channels (RFC 8831) over SCTP (RFC 8261),
//! with the Data Channel Establishment Protocol (RFC 8832).
