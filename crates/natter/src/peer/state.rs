//! The aggregate connection state (W3C webrtc-pc §4.3.3
//! `RTCPeerConnectionState`) of the one ICE transport and the one DTLS
//! transport that max-bundle leaves (RFC 8843).

use std::fmt;

use natter_ice::ConnectionState as IceState;

use crate::dtls::DtlsState;

/// W3C webrtc-pc §4.3.3 `RTCPeerConnectionState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerConnectionState {
    New,
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

impl PeerConnectionState {
    /// The W3C name, such as `connecting`.
    pub fn name(self) -> &'static str {
        match self {
            PeerConnectionState::New => "new",
            PeerConnectionState::Connecting => "connecting",
            PeerConnectionState::Connected => "connected",
            PeerConnectionState::Disconnected => "disconnected",
            PeerConnectionState::Failed => "failed",
            PeerConnectionState::Closed => "closed",
        }
    }

    /// The table of W3C webrtc-pc §4.3.3, for one ICE transport and one
    /// DTLS transport (`None`: not started, W3C's `new`), checked in the
    /// table's order.
    pub(super) fn aggregate(closed: bool, ice: IceState, dtls: Option<DtlsState>) -> Self {
        use PeerConnectionState as S;
        let dtls_new_or_closed = matches!(dtls, None | Some(DtlsState::Closed));
        if closed {
            S::Closed
        } else if ice == IceState::Failed || dtls == Some(DtlsState::Failed) {
            S::Failed
        } else if ice == IceState::Disconnected {
            S::Disconnected
        } else if matches!(ice, IceState::New | IceState::Closed) && dtls_new_or_closed {
            S::New
        } else if matches!(ice, IceState::New | IceState::Checking)
            || dtls.is_none()
            || dtls == Some(DtlsState::Handshaking)
        {
            S::Connecting
        } else {
            // ICE connected or completed (or closed with DTLS connected),
            // DTLS connected or closed.
            S::Connected
        }
    }
}

impl fmt::Display for PeerConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::PeerConnectionState as S;
    use super::*;

    #[test]
    fn the_w3c_table() {
        let cases = [
            (false, IceState::New, None, S::New),
            (false, IceState::Checking, None, S::Connecting),
            (false, IceState::Connected, None, S::Connecting),
            (false, IceState::Connected, Some(DtlsState::Handshaking), S::Connecting),
            (false, IceState::Completed, Some(DtlsState::Connected), S::Connected),
            (false, IceState::Connected, Some(DtlsState::Closed), S::Connected),
            (
                false,
                IceState::Disconnected,
                Some(DtlsState::Connected),
                S::Disconnected,
            ),
            (false, IceState::Connected, Some(DtlsState::Failed), S::Failed),
            (false, IceState::Failed, None, S::Failed),
            (false, IceState::Closed, Some(DtlsState::Closed), S::New),
            (true, IceState::Connected, Some(DtlsState::Connected), S::Closed),
        ];
        for (closed, ice, dtls, want) in cases {
            assert_eq!(S::aggregate(closed, ice, dtls), want, "{ice:?} {dtls:?}");
        }
    }
}
