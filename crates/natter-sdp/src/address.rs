//! `<nettype> <addrtype> <address>`: the address triple of the `c=`
//! (RFC 8866 §5.7) and `o=` (§5.2) lines and of `a=rtcp` (RFC 3605 §2.1).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::error::ValueError;
use crate::grammar::{token, Fields};

/// A network address as SDP writes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    /// `IN` for the Internet (RFC 8866 §8.2.6).
    pub network_type: String,
    /// `IP4` or `IP6`.
    pub address_type: String,
    /// An IP address, an FQDN, or (in `c=`) a multicast address with
    /// `/ttl` and `/count` suffixes. Never empty, never holds a space.
    pub address: String,
}

impl Address {
    /// `IN IP4 <ip>` or `IN IP6 <ip>`.
    pub fn new(ip: IpAddr) -> Self {
        let address_type = if ip.is_ipv4() { "IP4" } else { "IP6" };
        Address {
            network_type: "IN".into(),
            address_type: address_type.into(),
            address: ip.to_string(),
        }
    }

    /// The IP address, without the multicast suffixes of RFC 8866 §5.7;
    /// `None` for a host name.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.split('/').next()?.parse().ok()
    }

    /// Takes the three fields from `fields`, leaving what follows.
    pub(crate) fn take(fields: &mut Fields<'_>) -> Result<Self, ValueError> {
        let network_type = token("network type", fields.next("network type")?)?;
        let address_type = token("address type", fields.next("address type")?)?;
        let address = fields.next("address")?;
        Ok(Address {
            network_type: network_type.into(),
            address_type: address_type.into(),
            address: address.into(),
        })
    }
}

impl FromStr for Address {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let mut fields = Fields::new(s);
        let address = Address::take(&mut fields)?;
        fields.end()?;
        Ok(address)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.network_type, self.address_type, self.address)
    }
}
