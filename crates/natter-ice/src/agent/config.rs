//! Agent configuration: role, full or lite (RFC 8445 §2.5), servers,
//! and the timers of RFC 8445 §14 and RFC 7675.

use std::net::SocketAddr;
use std::time::Duration;

use crate::transaction::RetransmitPolicy;
use crate::turn_client::TurnServer;
use crate::Credentials;

/// RFC 8445 §6.1.1: the controlling agent nominates, the controlled one
/// follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Controlling,
    Controlled,
}

/// Which candidates the agent may use (W3C `RTCIceTransportPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TransportPolicy {
    /// Every candidate type.
    #[default]
    All,
    /// Only relayed candidates are announced and paired.
    Relay,
}

/// How an [`super::Agent`] behaves. `Default` gives a controlling full
/// agent with RFC 8445 and RFC 7675's recommended timers.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub role: Role,
    /// RFC 8445 §2.5: a lite agent only has host candidates, never sends
    /// checks and is always controlled.
    pub lite: bool,
    /// Local ufrag and password; `None` draws them from the agent's RNG.
    pub credentials: Option<Credentials>,
    /// Servers for server-reflexive candidates (RFC 8445 §5.1.1.2).
    pub stun_servers: Vec<SocketAddr>,
    /// Servers for relayed candidates (RFC 8656), one allocation per
    /// (UDP host, server) of the same address family.
    pub turn_servers: Vec<TurnServer>,
    pub transport_policy: TransportPolicy,
    /// RFC 8445 §14.2: the pacing of new checks, 50 ms by default.
    pub ta: Duration,
    /// RFC 8445 §14.3: retransmission of connectivity checks over UDP.
    pub check_retransmit: RetransmitPolicy,
    /// Retransmission of Binding requests to STUN servers while gathering.
    pub gather_retransmit: RetransmitPolicy,
    /// How long the controlling agent waits after the first valid pair
    /// for better pairs to succeed before it nominates (RFC 8445 §8.1.1
    /// leaves this to the implementation). Nomination happens at once
    /// when no pair of higher priority is still being checked.
    pub nomination_delay: Duration,
    /// RFC 8445 §6.1.2.5: the maximum number of pairs in the check list.
    pub max_pairs: usize,
    /// RFC 7675 §5.1: mean interval of consent checks (randomised ±20%).
    pub consent_interval: Duration,
    /// An unanswered consent check older than this makes the state
    /// `disconnected` (W3C; browsers use about 2.5 s).
    pub disconnected_timeout: Duration,
    /// RFC 7675 §5.1: consent expires after 30 s without a response,
    /// and the state becomes `failed`. A lite agent, which sends no
    /// checks, fails after this long without a check or keepalive from
    /// the peer on the selected pair (the peer went away). Keep it above
    /// the peer's consent interval (RFC 7675 §5.1: 5 s ± 20%).
    pub consent_timeout: Duration,
    /// RFC 8445 §11: a Binding indication after this long without
    /// sending on the selected pair (used where consent checks are not
    /// sent, i.e. by lite agents).
    pub keepalive_interval: Duration,
    /// Seeds the RNG of tie-breaker, transaction ids, credentials and
    /// jitter, for reproducible tests; `None` seeds from the OS.
    pub seed: Option<u64>,
    /// draft-hancke-webrtc-sped: embed the DTLS handshake in checks and
    /// their responses (see [`crate::sped`]). Off by default; when on,
    /// the agent falls back by itself on a peer whose checks carry none
    /// of its attributes, and [`super::Agent::sped_mut`] turns it off when the
    /// peer's description does not offer it.
    pub sped: bool,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            role: Role::Controlling,
            lite: false,
            credentials: None,
            stun_servers: Vec::new(),
            turn_servers: Vec::new(),
            transport_policy: TransportPolicy::All,
            ta: Duration::from_millis(50),
            check_retransmit: RetransmitPolicy {
                initial_rto: Duration::from_millis(250),
                max_rto: Duration::from_secs(1),
                max_transmissions: 7,
                last_wait_factor: 8,
            },
            gather_retransmit: RetransmitPolicy {
                initial_rto: Duration::from_millis(500),
                max_rto: Duration::from_millis(1600),
                max_transmissions: 7,
                last_wait_factor: 4,
            },
            nomination_delay: Duration::from_millis(300),
            max_pairs: 100,
            consent_interval: Duration::from_secs(5),
            disconnected_timeout: Duration::from_millis(2500),
            consent_timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(15),
            seed: None,
            sped: false,
        }
    }
}
