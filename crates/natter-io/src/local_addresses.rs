//! Which local addresses get a socket (and so a host candidate).

use std::net::{IpAddr, SocketAddr};

use crate::Error;

/// The UDP sockets a connection opens, each a host candidate (RFC 8445
/// §5.1.1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalAddresses {
    /// Exactly these; port 0 picks a free port.
    Addresses(Vec<SocketAddr>),
    /// Every address of the host's interfaces, each on a free port: IPv4,
    /// and IPv6 other than link-local (whose scope a candidate cannot
    /// carry) when `ipv6`; loopback addresses only when `loopback`.
    Host { loopback: bool, ipv6: bool },
}

impl Default for LocalAddresses {
    /// The host's addresses without loopback, as browsers gather them.
    fn default() -> Self {
        LocalAddresses::Host {
            loopback: false,
            ipv6: true,
        }
    }
}

impl LocalAddresses {
    /// The addresses to bind, in a stable order, without duplicates.
    pub fn resolve(&self) -> Result<Vec<SocketAddr>, Error> {
        let mut addresses = match self {
            LocalAddresses::Addresses(addresses) => addresses.clone(),
            LocalAddresses::Host { loopback, ipv6 } => {
                let interfaces = if_addrs::get_if_addrs().map_err(Error::Interfaces)?;
                interfaces
                    .iter()
                    .map(|interface| interface.ip())
                    .filter(|ip| *loopback || !ip.is_loopback())
                    .filter(|ip| match ip {
                        IpAddr::V4(_) => true,
                        // fe80::/10
                        IpAddr::V6(v6) => *ipv6 && (v6.segments()[0] & 0xffc0) != 0xfe80,
                    })
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect()
            }
        };
        let mut seen = Vec::with_capacity(addresses.len());
        addresses.retain(|a| {
            let new = a.port() == 0 || !seen.contains(a);
            seen.push(*a);
            new
        });
        if addresses.is_empty() {
            return Err(Error::NoLocalAddress);
        }
        Ok(addresses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_addresses_are_kept_in_order_without_duplicates() {
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let given = LocalAddresses::Addresses(vec![a, b, a, b]);
        assert_eq!(
            given.resolve().unwrap(),
            [a, b, b],
            "port 0 may repeat: each is a new socket"
        );
    }

    #[test]
    fn no_address_is_an_error() {
        assert!(matches!(
            LocalAddresses::Addresses(Vec::new()).resolve(),
            Err(Error::NoLocalAddress)
        ));
    }

    #[test]
    fn host_addresses_include_loopback_only_when_asked() {
        let with = LocalAddresses::Host {
            loopback: true,
            ipv6: false,
        };
        let addresses = with.resolve().unwrap();
        assert!(addresses.iter().any(|a| a.ip().is_loopback()), "{addresses:?}");
        assert!(addresses.iter().all(|a| a.is_ipv4() && a.port() == 0), "{addresses:?}");
        let without = LocalAddresses::Host {
            loopback: false,
            ipv6: true,
        };
        if let Ok(addresses) = without.resolve() {
            assert!(addresses.iter().all(|a| !a.ip().is_loopback()), "{addresses:?}");
        }
    }
}
