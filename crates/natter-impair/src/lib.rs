//! natter-impair: the one model of a network path that Natter's tests
//! and benches use.
//!
//! - [`Link`] is one direction of a path as a sans-IO state machine:
//!   a bottleneck (a rate that may change on a [`RateSchedule`], in
//!   front of a drop-tail queue sized in time or bytes; optionally a
//!   token bucket with a burst, as Linux's `tbf` shapes), then
//!   propagation delay with jitter, random or Gilbert-Elliott burst
//!   loss, reordering and duplication, all drawn from a seed, with
//!   [`LinkStats`] counters. Packets go in with `handle_packet(now,
//!   packet)` and come out with `poll_packet(now)` when due;
//!   `poll_timeout()` says when. The deterministic two-peer tests run it
//!   under their virtual clock.
//! - [`Proxy`] (in-process) and the `natter-impair` binary put two links
//!   between real peers: a UDP relay from the clients of a listening
//!   address to one upstream address, one upstream socket per client.
//!
//! No kernel support is needed (this machine has no `netem`). The model
//! of a path is that of RFC 8867 §4 (a bottleneck with a drop-tail
//! queue, then delay, jitter and loss); Gilbert-Elliott bursts are the
//! two-state chain of E. N. Gilbert (1960) and E. O. Elliott (1963).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use natter_impair::{Link, LinkConfig};
//!
//! let mut config = LinkConfig::default();
//! config.set("delay", "50ms")?;
//! config.set("rate", "1mbit")?; // a 1250-byte packet takes 10 ms to send
//! config.set("queue", "100ms")?;
//! let start = Instant::now();
//! let mut link = Link::new(config, 7, start)?;
//! link.handle_packet(start, vec![0u8; 1250]);
//! assert_eq!(link.poll_timeout(), Some(start + Duration::from_millis(60)));
//! assert_eq!(link.poll_packet(start + Duration::from_millis(59)), None);
//! assert_eq!(link.poll_packet(start + Duration::from_millis(60)).map(|p| p.len()), Some(1250));
//! # Ok::<(), natter_impair::ConfigError>(())
//! ```
//!
//! # Putting the proxy between a browser and natter
//!
//! A browser reaches natter through the proxy only if the proxy's
//! listening address is the only candidate of natter's it knows, and
//! natter answers it only through the proxy:
//!
//! 1. Start natter's `echo` example on a known port (`--address
//!    127.0.0.1 --port 5000`) and `natter-impair --listen 127.0.0.1:0
//!    --upstream 127.0.0.1:5000 ...`; read the proxy's address from its
//!    `listening on` line.
//! 2. Before the browser takes natter's answer, rewrite every
//!    `a=candidate` line of it to carry the proxy's address and port
//!    (`candidate:1 1 udp 2130706431 127.0.0.1 41234 typ host`) and drop
//!    the lines for other addresses. ICE only compares the address the
//!    browser sends to with the one replies come from, and the proxy
//!    replies from its listening socket.
//! 3. Keep natter from reaching the browser directly: strip the
//!    browser's `a=candidate` lines from the offer before POSTing it
//!    (natter then learns the browser as a peer-reflexive candidate at
//!    the proxy's upstream socket, and checks back through it), or run
//!    the example with `--ice-lite`, which sends no checks of its own.
//!
//! natter itself needs no change for this. What would make step 2
//! unnecessary is an option of the echo example (and a `PeerConfig`
//! field of natter-io) that announces a given address instead of the
//! socket's (`--announce 127.0.0.1:41234`, like coturn's
//! `--external-ip`), keeping the socket bound where it is.

mod config;
mod error;
mod link;
mod loss;
mod proxy;
mod quantity;
mod schedule;
mod stats;

pub use config::{LinkConfig, QueueLimit, KEYS};
pub use error::ConfigError;
pub use link::Link;
pub use loss::LossModel;
pub use proxy::{relay, Proxy, ProxyConfig, ProxyStats};
pub use quantity::{parse_bytes, parse_duration, parse_probability, Rate};
pub use schedule::RateSchedule;
pub use stats::LinkStats;
