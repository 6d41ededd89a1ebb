//! The delay proxy of the benches' round trips: natter-impair in this
//! process, in front of one side's candidate.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::bail;
use natter_impair::{LinkConfig, Proxy, ProxyConfig};
use natter_io::IceCandidate;

/// A proxy delaying each direction by `one_way` in front of the address
/// of `candidate` (RFC 8839 §5.1: address and port are its fifth and
/// sixth fields), and the candidate rewritten to the proxy's address.
pub fn behind_proxy(mut candidate: IceCandidate, one_way: Duration) -> anyhow::Result<(IceCandidate, Proxy)> {
    let mut fields: Vec<String> = candidate.candidate.split(' ').map(str::to_owned).collect();
    let upstream: SocketAddr = match fields.get(4..6) {
        Some([ip, port]) => format!("{ip}:{port}").parse()?,
        _ => bail!("a candidate without an address: {}", candidate.candidate),
    };
    let link = LinkConfig {
        delay: one_way,
        ..LinkConfig::default()
    };
    let proxy = Proxy::start(ProxyConfig {
        listen: "127.0.0.1:0".parse()?,
        upstream,
        up: link.clone(),
        down: link,
        seed: 1,
    })?;
    fields[4] = proxy.local_addr().ip().to_string();
    fields[5] = proxy.local_addr().port().to_string();
    candidate.candidate = fields.join(" ");
    Ok((candidate, proxy))
}
