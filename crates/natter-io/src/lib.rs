//! natter-io: runs [`natter::PeerConnection`]s on UDP sockets with tokio,
//! one per set of sockets or many on an [`Endpoint`].
//!
//! [`PeerConnection::spawn`] binds a UDP socket per local address, makes
//! the sans-IO connection, and starts one task that owns both: it feeds
//! every datagram to `handle_receive` with the socket's address as the
//! destination, sends what `poll_transmit` yields from the socket it
//! names, sleeps until `poll_timeout` and calls `handle_timeout`, and
//! answers the connection's mDNS questions (RFC 8828 §5, see [`mdns`]).
//! The application talks to that task through a cloneable handle whose
//! async methods are RTCPeerConnection's (`create_offer`,
//! `set_remote_description`, `create_data_channel`...), and reads
//! [`PeerEvent`]s from a tokio channel. Nothing is shared or locked: the
//! handle sends commands, the task answers each on a oneshot channel.
//!
//! ```no_run
//! # async fn example() -> Result<(), natter_io::Error> {
//! use natter_io::{Config, DataChannelInit, LocalAddresses, PeerConnection, PeerEvent};
//!
//! let config = Config {
//!     local_addresses: LocalAddresses::Addresses(vec!["127.0.0.1:0".parse().unwrap()]),
//!     ..Config::default()
//! };
//! let (pc, mut events) = PeerConnection::spawn(config)?;
//! let chat = pc.create_data_channel("chat", DataChannelInit::default()).await?;
//! let offer = pc.create_offer().await?;
//! pc.set_local_description(offer).await?;
//! // ... send the offer and the candidates to the peer, apply its answer ...
//! while let Some(event) = events.recv().await {
//!     match event {
//!         PeerEvent::IceCandidate(candidate) => { /* signal it */ }
//!         PeerEvent::DataChannelOpen(id) if id == chat.id() => chat.send("hello").await?,
//!         PeerEvent::DataChannelMessage { data, .. } => println!("{} bytes", data.len()),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Local addresses
//!
//! [`Config::local_addresses`] says which sockets to open: the addresses
//! given ([`LocalAddresses::Addresses`], port 0 for any free port), or by
//! default one socket on every address of the host's interfaces
//! ([`LocalAddresses::Host`]): IPv4 and global IPv6, loopback only when
//! asked for (browsers gather no loopback candidates by default either).
//!
//! # Many connections on one socket
//!
//! [`Endpoint::bind`] opens the sockets once; [`Endpoint::connect`] makes
//! each connection on them, in the same task, with a handle and events
//! like [`PeerConnection::spawn`]'s. The sans-IO
//! [`natter::endpoint::Endpoint`] routes datagrams by ICE ufrag,
//! transaction and address (RFC 7983) and drops and counts the rest
//! ([`Endpoint::stats`]). `PeerConnection::spawn` is the same task with
//! one connection on sockets of its own.
//!
//! # Backpressure
//!
//! What natter-io holds for the application is bounded in bytes. Each
//! data channel may have 1 MiB of messages handed over and unread (in
//! the event channel, or in its own [`ChannelMessages`] when the
//! application reads it apart with [`DataChannel::messages`]), one
//! message more when it has none, so messages of 256 KiB and more pass;
//! its later messages wait in the task while other channels' go past
//! them. Once 4 MiB are held in all (or 256 events wait in the task),
//! the connection's data channels are not read
//! ([`natter::PeerConnection::pause_data_channels`]): their messages wait
//! in SCTP's receive buffer, the window it advertises closes (RFC 9260
//! §6.2) and the peer stops sending until the application catches up;
//! nothing is dropped. Resuming hands over what waited in SCTP at once,
//! so at most 4 MiB plus the receive window
//! ([`natter::PeerConfig::sctp`]`.receive_window`) are held
//! ([`PeerConnection::delivery_stats`]). SCTP has one window per
//! association, not per stream: a channel whose reader is slow or gone
//! holds back only its own messages until it has taken the 4 MiB, and
//! then the window; from then on every channel of the connection waits
//! for it. [`Config::event_capacity`] bounds the event channel in events.
//! Media has no window: while 256 events other than
//! data channel messages wait, the connection is paused
//! ([`natter::endpoint::Endpoint::set_paused`]): what keeps it up (ICE
//! checks and consent, DTLS handshake and alerts) still reaches it, its
//! media and data channel packets are dropped and counted. Other
//! connections on the sockets are not slowed down; commands keep being
//! served. [`DataChannel::send`] fails
//! once a channel has [`natter::PeerConfig::sctp`]`.max_buffered_amount`
//! bytes queued: watch [`DataChannel::buffered_amount`] and
//! [`PeerEvent::BufferedAmountLow`].
//! Unlike a browser's, the buffered amount also falls while the
//! application awaits its sends: a refill loop should stop only once an
//! amount read after its last send is above the low threshold. One that
//! only counts what it sent may stop with the amount already below the
//! threshold, and then no event follows (the `datachannel_bench` example
//! shows the loop).
//!
//! # Batched system calls
//!
//! Sockets are read with `recvmmsg` and GRO (through quinn-udp). A
//! connection's same-size datagrams to one destination leave as one GSO
//! send; the single datagrams that a flush collects, to any
//! destinations, leave with one `sendmmsg` per [`batch::BATCH`] (Linux;
//! elsewhere one call each). A full socket buffer makes the task wait
//! until the socket is writable: nothing is dropped. [`batch`] holds the
//! system calls, the only `unsafe` in natter-io; natter-server's TURN
//! workers use it too.
//!
//! # Not yet
//!
//! - TURN over TCP or TLS and ICE-TCP: transmits on TCP or TLS are
//!   dropped (and logged); relayed candidates over UDP work.
//! - Host names in ICE server URLs: give IP addresses.
//! - mDNS for IPv6 (`AAAA` over `ff02::fb`): only IPv4 names resolve.

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub mod batch;
mod delivery;
mod driver;
pub mod echoes;
mod endpoint;
mod error;
mod handle;
mod local_addresses;
pub mod mdns;
pub mod media_file;
mod rtp;
mod udp;

pub use endpoint::Endpoint;
pub use error::Error;
pub use handle::{
    ChannelMessage, ChannelMessages, DataChannel, DataChannelInfo, DeliveryStats, Message, PeerConnection, Track,
};
pub use local_addresses::LocalAddresses;
pub use natter::endpoint::EndpointStats;
pub use natter::jsep::{SdpType, SignalingState};
pub use natter::peer::{
    DataChannelId, DataChannelInit, DataChannelState, Description, Direction, Format, IceCandidate, IceServer,
    MediaFrame, MediaKind, PeerConfig, PeerConnectionState, PeerEvent, PeerStats, Transceiver, TransceiverId,
};
pub use natter_ice::ConnectionState as IceConnectionState;
pub use rtp::{OutgoingPacket, RtpPacket};
pub use udp::ReceiveClock;

/// How [`PeerConnection::spawn`] sets a connection up, or
/// [`Endpoint::bind`] its sockets and connections.
#[derive(Clone, Debug)]
pub struct Config {
    /// The sans-IO connection's own configuration (ICE servers,
    /// certificate, SCTP settings...).
    pub peer: PeerConfig,
    /// Which UDP sockets to open.
    pub local_addresses: LocalAddresses,
    /// Resolve peers' `.local` host candidates with a multicast DNS query
    /// (see [`mdns`]). When `false`, [`PeerEvent::ResolveMdns`] reaches
    /// the application, which answers with [`PeerConnection::resolve_mdns`].
    pub mdns: bool,
    /// How many events may wait in the channel the application reads.
    pub event_capacity: usize,
    /// The receive buffer: the largest datagram read whole.
    pub max_datagram_size: usize,
    /// `SO_RCVBUF` and `SO_SNDBUF` of each socket (the kernel caps them
    /// at `net.core.rmem_max`/`wmem_max`); `None` keeps the system's.
    pub socket_buffer_size: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            peer: PeerConfig::default(),
            local_addresses: LocalAddresses::default(),
            mdns: true,
            event_capacity: 1024,
            max_datagram_size: 65_535,
            socket_buffer_size: Some(1 << 20),
        }
    }
}
