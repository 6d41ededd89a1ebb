//! What an [`SctpTransport`](crate::SctpTransport) is told when it is made.

use std::time::Duration;

use crate::error::Error;
use crate::sctp::association::{parse_snap_init, SnapError, SnapSide};

/// RFC 8841 §5: the conventional `a=sctp-port` of WebRTC.
pub const DEFAULT_SCTP_PORT: u16 = 5000;
/// The smallest maximum message size we accept to configure: the W3C
/// WebRTC §6.1.1 example and what Chromium advertises in
/// `a=max-message-size`.
pub const MIN_MAX_MESSAGE_SIZE: usize = 262_144;
/// RFC 9260 §3.1, §3.3.1: the common header and a DATA chunk header,
/// which every packet of user data spends before its payload.
pub const SCTP_DATA_OVERHEAD: usize = 12 + 16;
/// RFC 6347 §4.1 (RFC 5246 §6.2.1): the most plaintext a DTLS record
/// carries, so the largest SCTP packet over DTLS (RFC 8261 §5).
pub const MAX_SCTP_PACKET: usize = 16_384;

/// This side's DTLS role, which picks stream-id parity (RFC 8832 §6)
/// and which side sends INIT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DtlsRole {
    /// Opens channels on even stream ids, and sends INIT.
    Client,
    /// Opens channels on odd stream ids, and waits for the peer's INIT.
    Server,
}

/// SNAP (draft-hancke-tsvwg-snap): our INIT chunk, made by
/// [`SctpTransport::snap_init`](crate::SctpTransport::snap_init), and the
/// peer's, both exchanged in SDP's `a=sctp-init`. With them the
/// association is up as soon as it is made, without RFC 9260 §5.1's
/// four-way handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapInits {
    pub local: Vec<u8>,
    pub remote: Vec<u8>,
}

/// Settings of one SCTP association and its data channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SctpConfig {
    pub dtls_role: DtlsRole,
    /// Our `a=sctp-port` (RFC 8841 §5): the source port of our INIT.
    pub local_port: u16,
    /// The peer's `a=sctp-port`: the destination port of our INIT. A
    /// server answers on whatever ports the peer's INIT carried.
    pub remote_port: u16,
    /// The largest message we send or accept, and what the caller
    /// should advertise as `a=max-message-size` (RFC 8841 §6). At least
    /// [`MIN_MAX_MESSAGE_SIZE`].
    pub max_message_size: usize,
    /// The largest SCTP packet handed to DTLS. DTLS, UDP and IP headers
    /// come on top, so 1200 keeps the datagram under a 1280-byte IPv6
    /// path MTU with room for DTLS.
    pub mtu: usize,
    /// RFC 8899 MAX_PLPMTU: with it, packets grow from `mtu` (then the
    /// BASE_PLPMTU) as probes (HEARTBEAT and PAD, RFC 8899 §6.2) find the
    /// path carries them, and fall back to `mtu` on a black hole; DATA
    /// chunks stay cut to `mtu`. At most [`MAX_SCTP_PACKET`]. `None`
    /// (the default): packets stay at `mtu`.
    pub max_mtu: Option<usize>,
    /// Our advertised receiver window (RFC 9260 §6.2), which also bounds
    /// partly received messages: at least twice `max_message_size`.
    pub receive_window: u32,
    /// Per channel, the most bytes [`send`](crate::SctpTransport::send)
    /// queues before refusing more (Chromium refuses past 16 MiB).
    pub max_buffered_amount: usize,
    /// The `bufferedAmountLowThreshold` channels start with.
    pub buffered_amount_low_threshold: usize,
    /// RFC 9260 §16: RTO.Initial.
    pub rto_initial: Duration,
    /// RFC 9260 §16: RTO.Min. 400 ms by default, as Chromium's dcsctp:
    /// RFC 9260's 1 s stalls a fast path for hundreds of its RTTs on a
    /// tail loss, while a smaller value must still exceed a peer's
    /// delayed SACK (200 ms, §6.2) and its RTT so that T3-rtx does not
    /// fire before the SACK could come.
    pub rto_min: Duration,
    /// RFC 9260 §16: RTO.Max.
    pub rto_max: Duration,
    /// Both INITs when both ends offered SNAP; `None` for the four-way
    /// handshake.
    pub snap: Option<SnapInits>,
    /// Offer message interleaving (RFC 8260: I-DATA, I-FORWARD-TSN) in
    /// our INIT (or SNAP INIT) through the Supported Extensions parameter
    /// (RFC 5061 §4.2.7); it is used only when the peer offers it too, so
    /// a small message on one channel need not wait for a 256 KiB one on
    /// another to finish (RFC 8260 §1). Off by default, as in Chromium,
    /// whose dcsctp offers it only under the
    /// `WebRTC-DataChannelMessageInterleaving` field trial.
    pub interleaving: bool,
}

impl SctpConfig {
    /// Defaults for a side with DTLS role `dtls_role`.
    pub fn new(dtls_role: DtlsRole) -> Self {
        SctpConfig {
            dtls_role,
            local_port: DEFAULT_SCTP_PORT,
            remote_port: DEFAULT_SCTP_PORT,
            max_message_size: MIN_MAX_MESSAGE_SIZE,
            mtu: 1200,
            max_mtu: None,
            receive_window: crate::sctp::association::DEFAULT_RECEIVE_WINDOW,
            max_buffered_amount: 16 * 1024 * 1024,
            buffered_amount_low_threshold: 0,
            rto_initial: Duration::from_secs(1),
            rto_min: Duration::from_millis(400),
            rto_max: Duration::from_secs(60),
            snap: None,
            interleaving: false,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.local_port == 0 || self.remote_port == 0 {
            return Err(Error::InvalidConfig("SCTP ports must not be 0 (RFC 9260 §3.1)"));
        }
        if self.max_message_size < MIN_MAX_MESSAGE_SIZE || u32::try_from(self.max_message_size).is_err() {
            return Err(Error::InvalidConfig(
                "max_message_size must be between 262144 and 2^32 - 1",
            ));
        }
        if self.mtu < SCTP_DATA_OVERHEAD + 64 || u32::try_from(self.mtu).is_err() {
            return Err(Error::InvalidConfig(
                "mtu must leave at least 64 bytes of payload per packet",
            ));
        }
        if self.max_mtu.is_some_and(|max| max < self.mtu || max > MAX_SCTP_PACKET) {
            return Err(Error::InvalidConfig(
                "max_mtu must be between mtu and 16384 (a DTLS record's plaintext)",
            ));
        }
        if (self.receive_window as usize) < 2 * self.max_message_size {
            return Err(Error::InvalidConfig(
                "receive_window must be at least twice max_message_size",
            ));
        }
        if self.rto_min > self.rto_max || self.rto_min.is_zero() {
            return Err(Error::InvalidConfig("RTO bounds must satisfy 0 < rto_min <= rto_max"));
        }
        if let Some(snap) = &self.snap {
            let ours = parse_snap_init(&snap.local, SnapSide::Local)?;
            let theirs = parse_snap_init(&snap.remote, SnapSide::Peer)?;
            if ours.initiate_tag == theirs.initiate_tag {
                return Err(SnapError::SameTag(ours.initiate_tag).into());
            }
        }
        Ok(())
    }
}
