//! `natter serve` options: flags and a TOML file (same names, kebab-case).
//! Flags override the file; lists from both are joined.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use natter_turn::peer_filter::IpRange;
use serde::Deserialize;

use crate::turn::TurnConfig;

/// Options of `natter serve`. Every option may also be set in the file
/// given by `--config`, under the same name.
#[derive(clap::Args, Deserialize, Default, Clone)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServeOptions {
    /// TOML file with any of these options.
    #[arg(short, long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// HTTP (HTTPS with --cert) address of the web client, API and
    /// signaling [default: 127.0.0.1:8080].
    #[arg(short, long)]
    pub listen: Option<SocketAddr>,
    /// Host name or address that browsers use to reach this server's TURN
    /// ports [default: the listening address, or the host's primary one].
    #[arg(long, visible_alias = "public-ip")]
    pub public_host: Option<String>,
    /// PEM certificate chain: HTTPS, and TURN over TLS.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// PEM private key for --cert.
    #[arg(long)]
    pub pkey: Option<PathBuf>,
    /// Secret that signs join tokens and authorizes the REST API (also read
    /// from NATTER_SECRET) [default: random, until restart].
    #[arg(long, env = "NATTER_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Development mode: rooms are open to anyone, no token needed.
    #[arg(long)]
    #[serde(default)]
    pub dev: bool,
    /// Most participants in a room [default: 6; at most 100, 16 with
    /// --mesh].
    #[arg(long)]
    pub max_participants: Option<usize>,
    /// Most rooms at once [default: 10000].
    #[arg(long)]
    pub max_rooms: Option<usize>,
    /// Largest signaling message, in bytes [default: 65536].
    #[arg(long)]
    pub max_message_bytes: Option<usize>,
    /// Signaling messages per second per client, sustained [default: 50].
    #[arg(long)]
    pub messages_per_second: Option<u32>,
    /// Client heartbeat interval in milliseconds [default: 5000].
    #[arg(long)]
    pub heartbeat_ms: Option<u64>,
    /// How long a dropped client may resume its session, in milliseconds
    /// [default: 5000].
    #[arg(long)]
    pub resume_ms: Option<u64>,
    /// Do not run the embedded TURN server.
    #[arg(long)]
    #[serde(default)]
    pub no_turn: bool,
    /// TURN UDP and TCP port [default: 3478].
    #[arg(long)]
    pub turn_port: Option<u16>,
    /// TURN TLS port, used with --cert [default: 5349].
    #[arg(long)]
    pub turn_tls_port: Option<u16>,
    /// Lifetime of the TURN credentials handed to each participant, in
    /// seconds [default: 21600].
    #[arg(long)]
    pub turn_ttl: Option<u64>,
    /// Address TURN relays bind to [default: the listening address, or the
    /// host's primary address].
    #[arg(long)]
    pub relay_ip: Option<IpAddr>,
    /// Public address behind a 1:1 NAT: `PUBLIC` or `PUBLIC/PRIVATE`.
    #[arg(long)]
    pub external_ip: Option<String>,
    /// Lowest TURN relay port [default: 49152].
    #[arg(long)]
    pub min_port: Option<u16>,
    /// Highest TURN relay port [default: 65535].
    #[arg(long)]
    pub max_port: Option<u16>,
    /// Peer addresses TURN may relay to although the defaults refuse them
    /// (an IP, a CIDR block or `first-last`); repeatable.
    #[arg(long)]
    #[serde(default)]
    pub allowed_peer_ip: Vec<String>,
    /// TURN UDP worker threads [default: one per core].
    #[arg(long)]
    pub turn_threads: Option<usize>,
    /// Log format: text or json [default: text].
    #[arg(long)]
    pub log_format: Option<String>,
    /// Rooms are browser meshes (each participant connects to every
    /// other one) instead of going through the server's SFU
    /// (docs/signaling.md, "SFU rooms"); WHIP, WHEP and recording need
    /// the SFU.
    #[arg(long)]
    #[serde(default)]
    pub mesh: bool,
    /// UDP port of the SFU's media worker [default: any free port].
    #[arg(long)]
    pub sfu_port: Option<u16>,
    /// Milliseconds a participant may read none of the SFU's relay data
    /// channel (its queue above the high water mark, not going down)
    /// before it stops holding back the senders and its copies are
    /// dropped [default: 30000].
    #[arg(long)]
    pub sfu_relay_stall_ms: Option<u64>,
    /// Milliseconds an SFU connection lives without the client's ICE
    /// checks or keepalives (RFC 7675 consent) before it fails and its
    /// participant leaves: a WHIP or WHEP client that went away without a
    /// DELETE [default: 30000]. Keep it above the clients' check interval
    /// (browsers 2.5 s or less, natter and RFC 7675 5 s ± 20%) and
    /// keepalive interval (libnice, as in GStreamer: 25 s).
    #[arg(long)]
    pub sfu_consent_timeout_ms: Option<u64>,
    /// Directory that room recordings go to, one directory each
    /// (docs/recording.md) [default: ./recordings].
    #[arg(long)]
    pub record_dir: Option<PathBuf>,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("listen", &self.listen)
            .field("public_host", &self.public_host)
            .field("secret", &self.secret.as_ref().map(|_| "<set>"))
            .field("dev", &self.dev)
            .finish_non_exhaustive()
    }
}

/// Options resolved against the file and the defaults.
#[derive(Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub public_host: String,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub secret: String,
    /// True when no secret was given and one was generated.
    pub secret_generated: bool,
    pub dev: bool,
    pub max_participants: usize,
    pub max_rooms: usize,
    pub max_message_bytes: usize,
    pub messages_per_second: u32,
    pub heartbeat: Duration,
    pub resume: Duration,
    pub turn_ttl: Duration,
    /// The embedded TURN server, unless `--no-turn`.
    pub turn: Option<TurnConfig>,
    pub json_logs: bool,
    /// Unless `--mesh`: the media worker's socket address and the
    /// address its candidates carry.
    pub sfu: Option<(SocketAddr, IpAddr)>,
    /// How long an SFU relay recipient may read nothing.
    pub sfu_relay_stall: Duration,
    /// How long an SFU connection lives without ICE consent.
    pub sfu_consent_timeout: Duration,
    /// Where room recordings go.
    pub record_dir: PathBuf,
}

impl ServeOptions {
    /// Reads `--config` if given and merges it under the flags.
    pub fn resolve(self) -> anyhow::Result<ServeConfig> {
        let merged = match self.config.clone() {
            Some(path) => self.merge_over(Self::from_file(&path)?),
            None => self,
        };
        merged.into_config()
    }

    fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    fn merge_over(self, file: Self) -> Self {
        let mut allowed = self.allowed_peer_ip;
        allowed.extend(file.allowed_peer_ip);
        ServeOptions {
            config: self.config,
            listen: self.listen.or(file.listen),
            public_host: self.public_host.or(file.public_host),
            cert: self.cert.or(file.cert),
            pkey: self.pkey.or(file.pkey),
            secret: self.secret.or(file.secret),
            dev: self.dev || file.dev,
            max_participants: self.max_participants.or(file.max_participants),
            max_rooms: self.max_rooms.or(file.max_rooms),
            max_message_bytes: self.max_message_bytes.or(file.max_message_bytes),
            messages_per_second: self.messages_per_second.or(file.messages_per_second),
            heartbeat_ms: self.heartbeat_ms.or(file.heartbeat_ms),
            resume_ms: self.resume_ms.or(file.resume_ms),
            no_turn: self.no_turn || file.no_turn,
            turn_port: self.turn_port.or(file.turn_port),
            turn_tls_port: self.turn_tls_port.or(file.turn_tls_port),
            turn_ttl: self.turn_ttl.or(file.turn_ttl),
            relay_ip: self.relay_ip.or(file.relay_ip),
            external_ip: self.external_ip.or(file.external_ip),
            min_port: self.min_port.or(file.min_port),
            max_port: self.max_port.or(file.max_port),
            allowed_peer_ip: allowed,
            turn_threads: self.turn_threads.or(file.turn_threads),
            log_format: self.log_format.or(file.log_format),
            mesh: self.mesh || file.mesh,
            sfu_port: self.sfu_port.or(file.sfu_port),
            sfu_relay_stall_ms: self.sfu_relay_stall_ms.or(file.sfu_relay_stall_ms),
            sfu_consent_timeout_ms: self.sfu_consent_timeout_ms.or(file.sfu_consent_timeout_ms),
            record_dir: self.record_dir.or(file.record_dir),
        }
    }

    fn into_config(self) -> anyhow::Result<ServeConfig> {
        let listen = self
            .listen
            .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080));
        let tls = match (self.cert, self.pkey) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => bail!("TLS needs both --cert and --pkey"),
        };
        let (secret, secret_generated) = match self.secret {
            Some(s) if s.len() < 16 => bail!("--secret must be at least 16 characters"),
            Some(s) => (s, false),
            None => {
                let bytes: [u8; 32] = rand::random();
                (bytes.iter().map(|b| format!("{b:02x}")).collect(), true)
            }
        };
        let json_logs = match self.log_format.as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => bail!("--log-format must be text or json, not {other}"),
        };
        let max_participants = self.max_participants.unwrap_or(6);
        let largest = natter_signaling::rooms::max_room_size(!self.mesh);
        if !(2..=largest).contains(&max_participants) {
            let rooms = if self.mesh {
                "mesh rooms (100 without --mesh)"
            } else {
                "SFU rooms"
            };
            bail!("--max-participants must be 2 to {largest} for {rooms}");
        }
        let relay_ips = match self.relay_ip {
            Some(ip) if ip.is_unspecified() => bail!("--relay-ip must be a concrete address"),
            Some(ip) => vec![ip],
            None => crate::turn::config::default_relay_ips(&[listen.ip()]),
        };
        let public_host = match self.public_host {
            Some(h) => h,
            None if !listen.ip().is_unspecified() => listen.ip().to_string(),
            None => relay_ips[0].to_string(),
        };
        let turn = if self.no_turn {
            None
        } else {
            let allowed_peers = self
                .allowed_peer_ip
                .iter()
                .map(|s| s.parse::<IpRange>().with_context(|| format!("--allowed-peer-ip {s}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let external_ip = self
                .external_ip
                .as_deref()
                .map(crate::turn::config::parse_external)
                .transpose()?;
            let min_port = self.min_port.unwrap_or(49152);
            let max_port = self.max_port.unwrap_or(65535);
            if min_port > max_port || min_port == 0 {
                bail!("relay port range {min_port}..{max_port} is empty");
            }
            Some(TurnConfig {
                realm: "natter".to_owned(),
                listening_ips: vec![listen.ip()],
                port: self.turn_port.unwrap_or(3478),
                tls_port: self.turn_tls_port.unwrap_or(5349),
                udp: true,
                tcp: true,
                tls: tls.clone(),
                relay_ips,
                external_ip,
                min_port,
                max_port,
                users: Vec::new(),
                secrets: vec![turn_secret(&secret)],
                allowed_peers,
                denied_peers: Vec::new(),
                // A participant holds one allocation per peer and transport.
                user_quota: 64,
                total_quota: 0,
                max_bps: 0,
                threads: self
                    .turn_threads
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                    .max(1),
                metrics: None,
                service_addrs: vec![listen],
                nonce_lifetime: 600,
                // Browsers do not use RFC 6062.
                tcp_relay: false,
                json_logs,
            })
        };
        let sfu = match self.mesh {
            true => None,
            false => {
                let advertised = sfu_address(&public_host, listen.ip())?;
                Some((SocketAddr::new(listen.ip(), self.sfu_port.unwrap_or(0)), advertised))
            }
        };
        Ok(ServeConfig {
            listen,
            public_host,
            tls,
            secret,
            secret_generated,
            dev: self.dev,
            max_participants,
            max_rooms: self.max_rooms.unwrap_or(10_000),
            max_message_bytes: self.max_message_bytes.unwrap_or(65_536),
            messages_per_second: self.messages_per_second.unwrap_or(50).max(1),
            heartbeat: Duration::from_millis(self.heartbeat_ms.unwrap_or(5000).max(100)),
            resume: Duration::from_millis(self.resume_ms.unwrap_or(5000)),
            turn_ttl: Duration::from_secs(self.turn_ttl.unwrap_or(6 * 3600).max(60)),
            turn,
            json_logs,
            sfu,
            sfu_relay_stall: Duration::from_millis(self.sfu_relay_stall_ms.unwrap_or(30_000)),
            sfu_consent_timeout: Duration::from_millis(self.sfu_consent_timeout_ms.unwrap_or(30_000).max(100)),
            record_dir: self.record_dir.unwrap_or_else(|| PathBuf::from("recordings")),
        })
    }
}

/// The address the SFU's ICE candidates carry (RFC 8839 §5.1): the
/// `--public-host` address, or what its name resolves to, of the
/// listening address's family when it has one.
fn sfu_address(public_host: &str, listen: IpAddr) -> anyhow::Result<IpAddr> {
    let resolved: Vec<IpAddr> = match public_host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => std::net::ToSocketAddrs::to_socket_addrs(&(public_host, 0))
            .map(|addrs| addrs.map(|a| a.ip()).collect())
            .unwrap_or_default(),
    };
    let usable = |ip: &&IpAddr| !ip.is_unspecified();
    let same_family = resolved
        .iter()
        .filter(usable)
        .find(|ip| ip.is_ipv4() == listen.is_ipv4() || listen.is_unspecified());
    match same_family.or_else(|| resolved.iter().find(usable)) {
        Some(ip) => Ok(*ip),
        None => bail!(
            "--public-host {public_host} is not an address the SFU's candidates can carry (an IP, or a name that resolves to one); give one, or --mesh for rooms without the SFU"
        ),
    }
}

/// The TURN REST secret, derived from the server secret so that
/// credentials survive a restart with the same `--secret`.
fn turn_secret(secret: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, b"natter serve: TURN REST secret");
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeOptions,
    }

    #[test]
    fn defaults_are_local_and_complete() {
        let c = Cli::parse_from(["x"]).serve.resolve().unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.public_host, "127.0.0.1");
        assert!(c.secret_generated && c.secret.len() == 64);
        assert!(!c.dev);
        let sfu = Some(("127.0.0.1:0".parse().unwrap(), IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(c.sfu, sfu, "rooms go through the SFU unless --mesh");
        let turn = c.turn.unwrap();
        assert_eq!(
            (turn.port, turn.listening_ips[0].to_string()),
            (3478, "127.0.0.1".to_owned())
        );
        assert_eq!(turn.relay_ips, [IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        assert_eq!(turn.service_addrs, [c.listen], "TURN may not reach the HTTP server");
    }

    #[test]
    fn file_and_flags_merge_and_bad_values_are_clear() {
        let dir = std::env::temp_dir().join(format!("natter-serve-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("serve.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\ndev = true\nmesh = true\npublic-host = \"meet.example\"\nturn-port = 4478\n",
        )
        .unwrap();
        let c = Cli::parse_from(["x", "--config", file.to_str().unwrap(), "--turn-port", "5478"])
            .serve
            .resolve()
            .unwrap();
        assert!(c.dev && c.sfu.is_none(), "mesh = true in the file");
        assert_eq!(c.public_host, "meet.example");
        assert_eq!(c.turn.unwrap().port, 5478);
        std::fs::remove_dir_all(dir).unwrap();
        let bad = |args: &[&str]| {
            let mut all = vec!["x"];
            all.extend_from_slice(args);
            Cli::parse_from(all).serve.resolve().err().unwrap().to_string()
        };
        assert!(bad(&["--secret", "short"]).contains("16"));
        assert!(bad(&["--cert", "c.pem"]).contains("--pkey"));
        assert!(bad(&["--max-participants", "1"]).contains("max-participants"));
        assert!(bad(&["--mesh", "--max-participants", "17"]).contains("2 to 16 for mesh rooms"));
        assert!(bad(&["--max-participants", "101"]).contains("2 to 100 for SFU rooms"));
        let fifty = Cli::parse_from(["x", "--max-participants", "50"])
            .serve
            .resolve()
            .unwrap();
        assert_eq!(fifty.max_participants, 50);
        assert!(bad(&["--public-host", "no-such-host.invalid"]).contains("--mesh"));
        let named = Cli::parse_from(["x", "--mesh", "--public-host", "no-such-host.invalid"]);
        assert!(named.serve.resolve().is_ok(), "a mesh's TURN URLs may carry a name");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let cli = Cli::parse_from(["x", "--secret", "a very secret value"]);
        assert!(!format!("{:?}", cli.serve).contains("very secret"));
    }
}
