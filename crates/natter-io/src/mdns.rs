//! One-shot multicast DNS queries (RFC 6762 §5.1) for the `.local` names
//! browsers put in host candidates instead of their addresses (RFC 8828).
//!
//! The codec ([`encode_query`], [`parse_answers`]) is sans-IO; the
//! resolver around it is the driver's. A query asks for the name's `A`
//! record on `224.0.0.251:5353`, once per IPv4 interface, and again after
//! [`RETRY`]; the name is given up after [`GIVE_UP`] (the candidates that
//! named it are dropped, RFC 8828 §5.2). The resolver listens on port
//! 5353 itself when it can (`SO_REUSEPORT`, beside a host's own
//! responder) and joins the group, so it hears multicast answers; the
//! first query sets the QU bit (RFC 6762 §5.4) so that responders may
//! answer it by unicast. If 5353 cannot be bound it asks from an
//! ephemeral port, which RFC 6762 §6.7 says responders answer by unicast
//! (legacy unicast), but Chromium's does not.
//!
//! What Chromium's responder does (measured with Chromium 156): it
//! announces a new name twice, at once and a second later; it answers
//! queries from port 5353, QU or not, by multicast; it ignores queries
//! from other ports; and it does not repeat a record it multicast less
//! than a second ago (RFC 6762 §6), so a query right after the
//! announcement is answered by the second announcement. Any `A` record
//! for a name being asked for is taken, solicited or not.
//!
//! Not done: IPv6 (`AAAA` over `ff02::fb`), known-answer suppression
//! and caching (every connection asks afresh), probing and announcing
//! (we never answer).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Socket, Type};

/// RFC 6762 §3: the IPv4 mDNS group and port.
pub const MDNS_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
pub const MDNS_PORT: u16 = 5353;
/// RFC 6762 §5.2 asks for at least a second between the first two
/// queries.
pub const RETRY: Duration = Duration::from_secs(1);
/// After this long without an answer the name does not resolve.
pub const GIVE_UP: Duration = Duration::from_secs(3);

/// RFC 1035 §3.2.2 and §3.2.4.
const TYPE_A: u16 = 1;
const CLASS_IN: u16 = 1;
/// RFC 6762 §5.4: the top bit of a question's class asks for a unicast
/// response; §10.2: in a record it is the cache-flush bit.
const CLASS_TOP_BIT: u16 = 0x8000;
/// RFC 1035 §4.1.1: the QR bit, set in responses.
const FLAG_RESPONSE: u16 = 0x8000;

/// Why a datagram was not an mDNS response we could read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MdnsError {
    #[error("mDNS message of {0} bytes is shorter than the 12-byte header")]
    Truncated(usize),
    #[error("mDNS name at offset {0} runs past the end of the message")]
    NameOverrun(usize),
    #[error("mDNS name at offset {0} has a compression pointer loop or is longer than 255 bytes")]
    NameTooLong(usize),
    #[error("mDNS name label type 0x{0:02x} is not supported")]
    LabelType(u8),
    #[error("mDNS record at offset {0} runs past the end of the message")]
    RecordOverrun(usize),
    #[error("`{0}` is not a name mDNS can ask for (labels of 1 to 63 bytes)")]
    InvalidName(String),
}

/// A query for the `A` record of `name` (such as
/// `1f4712db-ea17-4bcf-a596-105139dfd8bf.local`), with the QU bit when
/// `unicast_response`. The id is 0 (RFC 6762 §18.1).
pub fn encode_query(name: &str, unicast_response: bool) -> Result<Vec<u8>, MdnsError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let labels: Vec<&str> = name.split('.').collect();
    if name.len() > 253 || labels.iter().any(|l| l.is_empty() || l.len() > 63) {
        return Err(MdnsError::InvalidName(name.to_owned()));
    }
    let mut out = Vec::with_capacity(12 + name.len() + 6);
    // id 0, flags 0 (a standard query), one question, no records.
    out.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in labels {
        // Checked above: at most 63.
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&TYPE_A.to_be_bytes());
    let class = if unicast_response {
        CLASS_IN | CLASS_TOP_BIT
    } else {
        CLASS_IN
    };
    out.extend_from_slice(&class.to_be_bytes());
    Ok(out)
}

/// The `A` records of a response (answers and additional records alike,
/// RFC 6762 §6), as (name in lower case without the final dot, address).
/// Queries and records of other types are skipped.
pub fn parse_answers(message: &[u8]) -> Result<Vec<(String, Ipv4Addr)>, MdnsError> {
    if message.len() < 12 {
        return Err(MdnsError::Truncated(message.len()));
    }
    let u16_at = |i: usize| u16::from_be_bytes([message[i], message[i + 1]]);
    if u16_at(2) & FLAG_RESPONSE == 0 {
        return Ok(Vec::new());
    }
    let questions = u16_at(4);
    let records = usize::from(u16_at(6)) + usize::from(u16_at(8)) + usize::from(u16_at(10));
    let mut at = 12;
    for _ in 0..questions {
        let (_, next) = read_name(message, at)?;
        at = next + 4;
        if at > message.len() {
            return Err(MdnsError::RecordOverrun(next));
        }
    }
    let mut answers = Vec::new();
    for _ in 0..records {
        let (name, next) = read_name(message, at)?;
        if next + 10 > message.len() {
            return Err(MdnsError::RecordOverrun(at));
        }
        let kind = u16_at(next);
        let class = u16_at(next + 2) & !CLASS_TOP_BIT;
        let length = usize::from(u16_at(next + 8));
        let data = next + 10;
        if data + length > message.len() {
            return Err(MdnsError::RecordOverrun(at));
        }
        if kind == TYPE_A && class == CLASS_IN && length == 4 {
            let ip = Ipv4Addr::new(message[data], message[data + 1], message[data + 2], message[data + 3]);
            answers.push((name, ip));
        }
        at = data + length;
    }
    Ok(answers)
}

/// The name at `at` (RFC 1035 §4.1.4 compression followed), lower case,
/// and the offset after it in the message.
fn read_name(message: &[u8], mut at: usize) -> Result<(String, usize), MdnsError> {
    let start = at;
    let mut name = String::new();
    let mut end = None;
    // Each jump must go backwards, so there is no loop; the length bound
    // guards against long chains all the same.
    let mut limit = at;
    loop {
        let &length = message.get(at).ok_or(MdnsError::NameOverrun(start))?;
        match length & 0xc0 {
            0x00 if length == 0 => {
                return Ok((name, end.unwrap_or(at + 1)));
            }
            0x00 => {
                let label = message
                    .get(at + 1..at + 1 + usize::from(length))
                    .ok_or(MdnsError::NameOverrun(start))?;
                if !name.is_empty() {
                    name.push('.');
                }
                name.push_str(&String::from_utf8_lossy(label).to_lowercase());
                if name.len() > 255 {
                    return Err(MdnsError::NameTooLong(start));
                }
                at += 1 + usize::from(length);
            }
            0xc0 => {
                let &low = message.get(at + 1).ok_or(MdnsError::NameOverrun(start))?;
                let target = usize::from(u16::from_be_bytes([length & 0x3f, low]));
                if target >= limit {
                    return Err(MdnsError::NameTooLong(start));
                }
                end.get_or_insert(at + 2);
                limit = target;
                at = target;
            }
            _ => return Err(MdnsError::LabelType(length)),
        }
    }
}

/// A question in flight.
#[derive(Debug)]
struct Pending {
    /// The name as the candidate spelled it, to answer with.
    name: String,
    retry_at: Option<Instant>,
    give_up_at: Instant,
}

/// The driver's mDNS client: one socket, the questions in flight, and the
/// answers for the connection.
#[derive(Debug)]
pub(crate) struct Resolver {
    socket: tokio::net::UdpSocket,
    /// Where queries go out: each IPv4 interface address, or none for the
    /// route's choice.
    interfaces: Vec<Ipv4Addr>,
    /// By lower-case name.
    pending: HashMap<String, Pending>,
    answers: VecDeque<(String, Option<IpAddr>)>,
    buf: Vec<u8>,
}

impl Resolver {
    /// Must run inside a tokio runtime.
    pub(crate) fn new() -> io::Result<Resolver> {
        let interfaces: Vec<Ipv4Addr> = if_addrs::get_if_addrs()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| match i.ip() {
                IpAddr::V4(ip) if !ip.is_loopback() => Some(ip),
                _ => None,
            })
            .collect();
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        let port_5353 = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, MDNS_PORT);
        if socket.bind(&port_5353.into()).is_ok() {
            for interface in interfaces.iter().copied().chain([Ipv4Addr::UNSPECIFIED]) {
                // Fails for interfaces without multicast; the others do.
                let _ = socket.join_multicast_v4(&MDNS_GROUP_V4, &interface);
            }
        } else {
            // Legacy unicast (RFC 6762 §6.7): answers come back to us.
            let fresh = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
            fresh.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0).into())?;
            return Self::finish(fresh, interfaces);
        }
        Self::finish(socket, interfaces)
    }

    fn finish(socket: Socket, interfaces: Vec<Ipv4Addr>) -> io::Result<Resolver> {
        // RFC 6762 §11: 255, so that receivers can tell it stayed on link.
        socket.set_multicast_ttl_v4(255)?;
        // Responders on this host hear us too.
        socket.set_multicast_loop_v4(true)?;
        socket.set_nonblocking(true)?;
        let socket = tokio::net::UdpSocket::from_std(socket.into())?;
        tracing::debug!(local = ?socket.local_addr().ok(), ?interfaces, "mDNS resolver ready");
        Ok(Resolver {
            socket,
            interfaces,
            pending: HashMap::new(),
            answers: VecDeque::new(),
            buf: vec![0; 9000],
        })
    }

    /// Asks for `name`, unless it is being asked for already.
    pub(crate) fn query(&mut self, name: &str, now: Instant) {
        let key = normalize(name);
        if self.pending.contains_key(&key) {
            return;
        }
        let Ok(query) = encode_query(name, true) else {
            tracing::debug!(name, "not an mDNS name; it does not resolve");
            self.answers.push_back((name.to_owned(), None));
            return;
        };
        self.send(&query);
        self.pending.insert(
            key,
            Pending {
                name: name.to_owned(),
                retry_at: Some(now + RETRY),
                give_up_at: now + GIVE_UP,
            },
        );
    }

    fn send(&self, query: &[u8]) {
        let group = SocketAddr::from((MDNS_GROUP_V4, MDNS_PORT));
        let interfaces = if self.interfaces.is_empty() {
            vec![Ipv4Addr::UNSPECIFIED]
        } else {
            self.interfaces.clone()
        };
        for interface in interfaces {
            // Straight to the socket: tokio's try_send_to refuses until it
            // has seen the socket writable, which a fresh socket it has not.
            let socket = SockRef::from(&self.socket);
            let sent = socket
                .set_multicast_if_v4(&interface)
                .and_then(|()| socket.send_to(query, &group.into()));
            if let Err(error) = sent {
                tracing::debug!(%interface, %error, "mDNS query not sent");
            }
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.pending
            .values()
            .map(|p| p.retry_at.unwrap_or(p.give_up_at).min(p.give_up_at))
            .min()
    }

    /// Retries and gives up what is due.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let mut retries = Vec::new();
        let answers = &mut self.answers;
        self.pending.retain(|_, p| {
            if p.give_up_at <= now {
                tracing::info!(name = %p.name, "mDNS name did not resolve");
                answers.push_back((p.name.clone(), None));
                return false;
            }
            if p.retry_at.is_some_and(|t| t <= now) {
                p.retry_at = None;
                retries.push(p.name.clone());
            }
            true
        });
        for name in retries {
            if let Ok(query) = encode_query(&name, false) {
                self.send(&query);
            }
        }
    }

    /// Waits for a datagram and takes the answers it carries.
    pub(crate) async fn receive(&mut self) {
        match self.socket.recv_from(&mut self.buf).await {
            Ok((n, from)) => match parse_answers(&self.buf[..n]) {
                Ok(records) => {
                    for (name, ip) in records {
                        if let Some(p) = self.pending.remove(&name) {
                            tracing::info!(name = %p.name, %ip, %from, "mDNS name resolved");
                            self.answers.push_back((p.name, Some(IpAddr::V4(ip))));
                        }
                    }
                }
                Err(error) => tracing::debug!(%from, %error, "mDNS datagram dropped"),
            },
            Err(error) => tracing::debug!(%error, "mDNS socket"),
        }
    }

    pub(crate) fn poll_answer(&mut self) -> Option<(String, Option<IpAddr>)> {
        self.answers.pop_front()
    }
}

fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "1f4712db-ea17-4bcf-a596-105139dfd8bf.local";

    /// A response as a responder writes it: the question echoed, then the
    /// answer naming it through a compression pointer.
    fn response(ip: [u8; 4]) -> Vec<u8> {
        let query = encode_query(NAME, false).unwrap();
        let mut out = query.clone();
        out[2] = 0x84; // QR, AA
        out[7] = 1; // one answer
        out.extend_from_slice(&[0xc0, 12]); // the question's name
        out.extend_from_slice(&[0, 1, 0x80, 1, 0, 0, 0, 120, 0, 4]);
        out.extend_from_slice(&ip);
        out
    }

    #[test]
    fn query_is_rfc_1035_with_the_qu_bit() {
        let query = encode_query("ab.local", true).unwrap();
        assert_eq!(
            query,
            [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2, b'a', b'b', 5, b'l', b'o', b'c', b'a', b'l', 0, 0, 1, 0x80, 1]
        );
        assert_eq!(encode_query("ab.local.", false).unwrap()[24..], [0, 1]);
    }

    #[test]
    fn invalid_names_are_refused() {
        assert!(encode_query("a..local", false).is_err());
        assert!(encode_query(&format!("{}.local", "x".repeat(64)), false).is_err());
    }

    #[test]
    fn answer_through_a_compression_pointer() {
        let answers = parse_answers(&response([198, 18, 0, 1])).unwrap();
        assert_eq!(answers, [(NAME.to_owned(), Ipv4Addr::new(198, 18, 0, 1))]);
    }

    #[test]
    fn names_compare_in_lower_case() {
        let mut upper = response([10, 0, 0, 1]);
        upper[14] = b'F'; // the "f" of "1f47..."
        let answers = parse_answers(&upper).unwrap();
        assert_eq!(answers[0].0, NAME);
    }

    #[test]
    fn queries_give_no_answers() {
        assert_eq!(parse_answers(&encode_query(NAME, true).unwrap()).unwrap(), []);
    }

    #[test]
    fn hostile_messages_are_errors_not_panics() {
        let good = response([1, 2, 3, 4]);
        for cut in 0..good.len() {
            // Every truncation either errors or reads fewer records.
            let _ = parse_answers(&good[..cut]);
        }
        // A pointer to itself.
        let mut looped = vec![0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4]);
        assert_eq!(parse_answers(&looped), Err(MdnsError::NameTooLong(12)));
        // A pointer forwards.
        let mut forwards = looped.clone();
        forwards[13] = 14;
        assert!(parse_answers(&forwards).is_err());
        // An extended label type.
        let mut extended = looped.clone();
        extended[12] = 0x40;
        assert_eq!(parse_answers(&extended), Err(MdnsError::LabelType(0x40)));
        // Record data longer than the message.
        let mut long = good.clone();
        let at = long.len() - 5;
        long[at] = 200;
        assert!(matches!(parse_answers(&long), Err(MdnsError::RecordOverrun(_))));
    }

    #[test]
    fn every_byte_of_random_input_is_survived() {
        // A small deterministic fuzz: xorshift over response-shaped bytes.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let base = response([1, 2, 3, 4]);
        for _ in 0..20_000 {
            let mut message = base.clone();
            for _ in 0..3 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let i = (state as usize) % message.len();
                message[i] = (state >> 32) as u8;
            }
            let _ = parse_answers(&message);
        }
    }
}
