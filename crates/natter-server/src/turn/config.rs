//! `natter turn` options: command-line flags and a TOML file, with the
//! option names a coturn user knows (`realm`, `listening-port`,
//! `static-auth-secret`, `denied-peer-ip`, ...). Flags override the file;
//! lists from both are joined.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use natter_turn::peer_filter::IpRange;
use serde::Deserialize;

/// Options of `natter turn`. Every option may also be set in the file
/// given by `--config`, under the same name.
#[derive(clap::Args, Deserialize, Default, Clone)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TurnOptions {
    /// TOML file with any of these options.
    #[arg(short, long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Realm of the long-term credentials [default: natter].
    #[arg(short, long)]
    pub realm: Option<String>,
    /// Address to listen on; repeat for several [default: 0.0.0.0].
    #[arg(short = 'L', long)]
    #[serde(default)]
    pub listening_ip: Vec<IpAddr>,
    /// UDP and TCP port [default: 3478].
    #[arg(short = 'p', long)]
    pub listening_port: Option<u16>,
    /// TLS port [default: 5349].
    #[arg(long)]
    pub tls_listening_port: Option<u16>,
    /// Address relayed sockets bind to, one per family [default: the
    /// listening address, or the host's primary address].
    #[arg(short = 'E', long)]
    #[serde(default)]
    pub relay_ip: Vec<IpAddr>,
    /// Public address behind a 1:1 NAT, announced in XOR-RELAYED-ADDRESS:
    /// `PUBLIC` or `PUBLIC/PRIVATE` (the relay address it maps to).
    #[arg(short = 'X', long)]
    pub external_ip: Option<String>,
    /// Lowest relay port [default: 49152].
    #[arg(long)]
    pub min_port: Option<u16>,
    /// Highest relay port [default: 65535].
    #[arg(long)]
    pub max_port: Option<u16>,
    /// Static user `name:password`; repeatable.
    #[arg(short, long)]
    #[serde(default)]
    pub user: Vec<String>,
    /// TURN REST shared secret; repeat to rotate secrets.
    #[arg(long)]
    #[serde(default)]
    pub static_auth_secret: Vec<String>,
    /// PEM certificate chain for TLS.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[arg(long)]
    pub pkey: Option<PathBuf>,
    /// Peer addresses to allow although the defaults refuse them: an IP,
    /// a CIDR block or `first-last`; repeatable.
    #[arg(long)]
    #[serde(default)]
    pub allowed_peer_ip: Vec<String>,
    /// Peer addresses to refuse; same syntax; repeatable.
    #[arg(long)]
    #[serde(default)]
    pub denied_peer_ip: Vec<String>,
    /// Most allocations per user; 0 for no limit [default: 0].
    #[arg(long)]
    pub user_quota: Option<u32>,
    /// Most allocations in total; 0 for no limit [default: 0].
    #[arg(long)]
    pub total_quota: Option<u32>,
    /// Bits per second per allocation; 0 for no limit [default: 0].
    #[arg(long)]
    pub max_bps: Option<u64>,
    /// UDP worker threads [default: one per core].
    #[arg(short = 'm', long)]
    pub relay_threads: Option<usize>,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds a nonce stays valid [default: 600].
    #[arg(long)]
    pub stale_nonce: Option<u64>,
    /// Do not listen on UDP.
    #[arg(long)]
    #[serde(default)]
    pub no_udp: bool,
    /// Do not listen on TCP.
    #[arg(long)]
    #[serde(default)]
    pub no_tcp: bool,
    /// Do not listen on TLS.
    #[arg(long)]
    #[serde(default)]
    pub no_tls: bool,
    /// Refuse RFC 6062 TCP relay allocations.
    #[arg(long)]
    #[serde(default)]
    pub no_tcp_relay: bool,
    /// Log format: text or json [default: text].
    #[arg(long)]
    pub log_format: Option<String>,
}

impl std::fmt::Debug for TurnOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let users: Vec<&str> = self.user.iter().map(|u| u.split(':').next().unwrap_or("")).collect();
        f.debug_struct("TurnOptions")
            .field("realm", &self.realm)
            .field("listening_ip", &self.listening_ip)
            .field("listening_port", &self.listening_port)
            .field("relay_ip", &self.relay_ip)
            .field("users", &users)
            .field("static_auth_secrets", &self.static_auth_secret.len())
            .finish_non_exhaustive()
    }
}

/// Options resolved against the file and the defaults.
#[derive(Debug, Clone)]
pub struct TurnConfig {
    pub realm: String,
    pub listening_ips: Vec<IpAddr>,
    pub port: u16,
    pub tls_port: u16,
    pub udp: bool,
    pub tcp: bool,
    /// Certificate and key, when TLS is on.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub relay_ips: Vec<IpAddr>,
    /// (public, private): announce `public` for relays bound on `private`.
    pub external_ip: Option<(IpAddr, IpAddr)>,
    pub min_port: u16,
    pub max_port: u16,
    pub users: Vec<(String, String)>,
    pub secrets: Vec<String>,
    pub allowed_peers: Vec<IpRange>,
    pub denied_peers: Vec<IpRange>,
    pub user_quota: u32,
    pub total_quota: u32,
    pub max_bps: u64,
    pub threads: usize,
    pub metrics: Option<SocketAddr>,
    /// Other listeners of this process that peers must not reach.
    pub service_addrs: Vec<SocketAddr>,
    pub nonce_lifetime: u64,
    pub tcp_relay: bool,
    pub json_logs: bool,
}

impl TurnOptions {
    /// Reads `--config` if given and merges it under the flags.
    pub fn resolve(self) -> anyhow::Result<TurnConfig> {
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
        fn join<T>(mut a: Vec<T>, b: Vec<T>) -> Vec<T> {
            a.extend(b);
            a
        }
        TurnOptions {
            config: self.config,
            realm: self.realm.or(file.realm),
            listening_ip: if self.listening_ip.is_empty() {
                file.listening_ip
            } else {
                self.listening_ip
            },
            listening_port: self.listening_port.or(file.listening_port),
            tls_listening_port: self.tls_listening_port.or(file.tls_listening_port),
            relay_ip: if self.relay_ip.is_empty() {
                file.relay_ip
            } else {
                self.relay_ip
            },
            external_ip: self.external_ip.or(file.external_ip),
            min_port: self.min_port.or(file.min_port),
            max_port: self.max_port.or(file.max_port),
            user: join(self.user, file.user),
            static_auth_secret: join(self.static_auth_secret, file.static_auth_secret),
            cert: self.cert.or(file.cert),
            pkey: self.pkey.or(file.pkey),
            allowed_peer_ip: join(self.allowed_peer_ip, file.allowed_peer_ip),
            denied_peer_ip: join(self.denied_peer_ip, file.denied_peer_ip),
            user_quota: self.user_quota.or(file.user_quota),
            total_quota: self.total_quota.or(file.total_quota),
            max_bps: self.max_bps.or(file.max_bps),
            relay_threads: self.relay_threads.or(file.relay_threads),
            metrics_listen: self.metrics_listen.or(file.metrics_listen),
            stale_nonce: self.stale_nonce.or(file.stale_nonce),
            no_udp: self.no_udp || file.no_udp,
            no_tcp: self.no_tcp || file.no_tcp,
            no_tls: self.no_tls || file.no_tls,
            no_tcp_relay: self.no_tcp_relay || file.no_tcp_relay,
            log_format: self.log_format.or(file.log_format),
        }
    }

    fn into_config(self) -> anyhow::Result<TurnConfig> {
        let listening_ips = if self.listening_ip.is_empty() {
            vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)]
        } else {
            self.listening_ip
        };
        let relay_ips = if self.relay_ip.is_empty() {
            default_relay_ips(&listening_ips)
        } else {
            self.relay_ip
        };
        if relay_ips.iter().any(IpAddr::is_unspecified) {
            bail!("--relay-ip must be a concrete address, not {}", relay_ips[0]);
        }
        let external_ip = self.external_ip.as_deref().map(parse_external).transpose()?;
        let users = self
            .user
            .iter()
            .map(|u| match u.split_once(':') {
                Some((name, pass)) if !name.is_empty() => Ok((name.to_owned(), pass.to_owned())),
                _ => bail!("--user must be name:password"),
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let ranges = |list: &[String], what: &str| -> anyhow::Result<Vec<IpRange>> {
            list.iter()
                .map(|s| s.parse::<IpRange>().with_context(|| format!("--{what} {s}")))
                .collect()
        };
        let tls = match (self.cert, self.pkey) {
            _ if self.no_tls => None,
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => bail!("TLS needs both --cert and --pkey"),
        };
        let min_port = self.min_port.unwrap_or(49152);
        let max_port = self.max_port.unwrap_or(65535);
        if min_port > max_port || min_port == 0 {
            bail!("relay port range {min_port}..{max_port} is empty");
        }
        let json_logs = match self.log_format.as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => bail!("--log-format must be text or json, not {other}"),
        };
        Ok(TurnConfig {
            realm: self.realm.unwrap_or_else(|| "natter".to_owned()),
            listening_ips,
            port: self.listening_port.unwrap_or(3478),
            tls_port: self.tls_listening_port.unwrap_or(5349),
            udp: !self.no_udp,
            tcp: !self.no_tcp,
            tls,
            relay_ips,
            external_ip,
            min_port,
            max_port,
            users,
            secrets: self.static_auth_secret,
            allowed_peers: ranges(&self.allowed_peer_ip, "allowed-peer-ip")?,
            denied_peers: ranges(&self.denied_peer_ip, "denied-peer-ip")?,
            user_quota: self.user_quota.unwrap_or(0),
            total_quota: self.total_quota.unwrap_or(0),
            max_bps: self.max_bps.unwrap_or(0),
            threads: self
                .relay_threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                .max(1),
            metrics: self.metrics_listen,
            service_addrs: Vec::new(),
            nonce_lifetime: self.stale_nonce.unwrap_or(600),
            tcp_relay: !self.no_tcp_relay,
            json_logs,
        })
    }
}

pub fn parse_external(s: &str) -> anyhow::Result<(IpAddr, IpAddr)> {
    let (public, private) = s.split_once('/').unwrap_or((s, ""));
    let public: IpAddr = public.parse().with_context(|| format!("--external-ip {s}"))?;
    let private = if private.is_empty() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        private.parse().with_context(|| format!("--external-ip {s}"))?
    };
    Ok((public, private))
}

/// The concrete listening addresses, or else the address the kernel
/// would use to reach the Internet (a UDP `connect` sends nothing), or
/// else loopback.
pub fn default_relay_ips(listening: &[IpAddr]) -> Vec<IpAddr> {
    let concrete: Vec<IpAddr> = listening.iter().copied().filter(|ip| !ip.is_unspecified()).collect();
    if !concrete.is_empty() {
        return concrete;
    }
    let primary = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").and_then(|_| s.local_addr()))
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    vec![primary]
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        turn: TurnOptions,
    }

    #[test]
    fn flags_override_the_file_and_lists_join() {
        let dir = std::env::temp_dir().join(format!("natter-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("turn.toml");
        std::fs::write(
            &file,
            "realm = \"file\"\nlistening-port = 4000\nuser = [\"a:1\"]\nstatic-auth-secret = [\"s\"]\n\
             denied-peer-ip = [\"192.0.2.0/24\"]\nmax-bps = 800000\n",
        )
        .unwrap();
        let cli = Cli::parse_from([
            "x",
            "--config",
            file.to_str().unwrap(),
            "--realm",
            "flag",
            "--user",
            "b:2",
            "--relay-ip",
            "127.0.0.1",
        ]);
        let c = cli.turn.resolve().unwrap();
        assert_eq!(c.realm, "flag");
        assert_eq!(c.port, 4000);
        assert_eq!(c.users.len(), 2);
        assert_eq!(c.secrets, ["s"]);
        assert_eq!(c.max_bps, 800_000);
        assert_eq!(c.denied_peers.len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_options_are_clear_errors() {
        let bad = |args: &[&str]| {
            let mut all = vec!["x", "--relay-ip", "127.0.0.1"];
            all.extend_from_slice(args);
            Cli::parse_from(all).turn.resolve().unwrap_err().to_string()
        };
        assert!(bad(&["--user", "nopassword"]).contains("name:password"));
        assert!(bad(&["--allowed-peer-ip", "10.0.0.1/8"]).contains("allowed-peer-ip"));
        assert!(bad(&["--cert", "c.pem"]).contains("--pkey"));
        assert!(bad(&["--min-port", "6000", "--max-port", "5000"]).contains("empty"));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let cli = Cli::parse_from(["x", "--user", "alice:hunter2", "--static-auth-secret", "topsecret"]);
        let shown = format!("{:?}", cli.turn);
        assert!(shown.contains("alice"));
        assert!(!shown.contains("hunter2") && !shown.contains("topsecret"));
    }
}
