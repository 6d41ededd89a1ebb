//! Our ICE parameters as descriptions carry them (RFC 8839): credentials,
//! restarts (RFC 8445 §9, RFC 8829 §5.2.3.1) and the candidates gathered
//! so far.

use std::net::IpAddr;

use natter_sdp::{Address, MediaSection};

use super::config::IceCredentials;
use super::error::JsepError;

/// RFC 8839 §5.4: the shortest ufrag and password.
const MIN_UFRAG: usize = 4;
const MIN_PWD: usize = 22;

/// Checks credentials we are to write (RFC 8839 §5.4).
pub(crate) fn check_credentials(credentials: &IceCredentials) -> Result<(), JsepError> {
    let ice_chars = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    let valid = (MIN_UFRAG..=256).contains(&credentials.ufrag.len())
        && (MIN_PWD..=256).contains(&credentials.pwd.len())
        && ice_chars(&credentials.ufrag)
        && ice_chars(&credentials.pwd);
    if valid {
        Ok(())
    } else {
        Err(JsepError::InvalidInput {
            what: "ICE credentials",
            reason: "ufrag needs 4-256 and pwd 22-256 characters of ALPHA / DIGIT / + / (RFC 8839 §5.4)".into(),
        })
    }
}

/// Whether `credentials` are long enough to use (RFC 8839 §5.4).
pub(crate) fn long_enough(ufrag: &str, pwd: &str) -> bool {
    ufrag.len() >= MIN_UFRAG && pwd.len() >= MIN_PWD
}

/// Our side of ICE, as the next description will write it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LocalIce {
    /// The credentials of the last description we applied.
    pub(crate) credentials: IceCredentials,
    /// New credentials for the next offer (or for answering a restart).
    pub(crate) restart: Option<IceCredentials>,
    /// `a=candidate` values (without `candidate:`), in the order gathered.
    pub(crate) candidates: Vec<String>,
    /// Gathering finished (RFC 8840 `a=end-of-candidates`).
    pub(crate) complete: bool,
}

impl LocalIce {
    pub(crate) fn new(credentials: IceCredentials) -> Self {
        LocalIce {
            credentials,
            restart: None,
            candidates: Vec::new(),
            complete: false,
        }
    }

    /// Takes `credentials` as ours from now on; a change is a restart,
    /// whose candidates are gathered anew (RFC 8445 §9).
    pub(crate) fn apply(&mut self, credentials: IceCredentials) {
        if self.restart.as_ref() == Some(&credentials) {
            self.restart = None;
        }
        if credentials != self.credentials {
            self.credentials = credentials;
            self.candidates.clear();
            self.complete = false;
        }
    }

    /// Writes the candidates into `section`, the first of the bundle, and
    /// points its `m=` port and `c=` at the first one with a port, the
    /// default candidate (RFC 8829 §5.2.1: port 9 and 0.0.0.0 until there
    /// is one). Port 0 in an `m=` line would reject the section (RFC 3264
    /// §6), so a candidate with port 0 is never the default.
    /// A restart writes none: they belong to the old credentials.
    pub(crate) fn write_candidates(&self, section: &mut MediaSection, restarting: bool) -> Result<(), JsepError> {
        if restarting {
            return Ok(());
        }
        for candidate in &self.candidates {
            section.push_candidate(candidate)?;
        }
        if self.complete {
            section.attributes.set_flag(natter_sdp::Flag::EndOfCandidates, true);
        }
        if let Some((ip, port)) = self.candidates.iter().find_map(|c| default_address(c)) {
            section.port = port;
            section.connections = vec![Address::new(ip)];
        }
        Ok(())
    }
}

/// The address and port of a candidate value (RFC 8839 §5.1:
/// `foundation component transport priority address port typ ...`),
/// when the address is an IP address and the port is not 0.
fn default_address(candidate: &str) -> Option<(IpAddr, u16)> {
    let mut fields = candidate.split_ascii_whitespace().skip(4);
    let ip = fields.next()?.parse().ok()?;
    let port = fields.next()?.parse().ok().filter(|&port| port != 0)?;
    Some((ip, port))
}

/// Normalizes a candidate as applications hand it over: `a=candidate:...`,
/// `candidate:...` or the bare value.
pub(crate) fn candidate_value(candidate: &str) -> Result<&str, JsepError> {
    let trimmed = candidate.trim();
    let value = trimmed.strip_prefix("a=").unwrap_or(trimmed);
    let value = value.strip_prefix("candidate:").unwrap_or(value);
    if value.is_empty() || value.contains(['\r', '\n']) {
        return Err(JsepError::InvalidInput {
            what: "ICE candidate",
            reason: format!(
                "`{}` is not an a=candidate value (RFC 8839 §5.1)",
                candidate.escape_debug()
            ),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_candidate_sets_port_and_address() {
        let mut ice = LocalIce::new(IceCredentials::new("abcd", "abcdefghijklmnopqrstuv"));
        ice.candidates
            .push("1 1 udp 2122260223 192.0.2.24 53412 typ host".into());
        ice.complete = true;
        let mut section = MediaSection::new(natter_sdp::MediaKind::Audio, natter_sdp::Protocol::UdpTlsRtpSavpf);
        ice.write_candidates(&mut section, false).unwrap();
        assert_eq!(section.port, 53412);
        assert_eq!(section.connections[0].address, "192.0.2.24");
        assert!(section.flag(natter_sdp::Flag::EndOfCandidates));
        assert_eq!(candidate_value("a=candidate:1 1 udp").unwrap(), "1 1 udp");
        assert!(candidate_value("  ").is_err());
    }

    #[test]
    fn a_candidate_with_port_0_is_never_the_default() {
        // Port 0 in the m= line would reject the section (RFC 3264 §6).
        let mut ice = LocalIce::new(IceCredentials::new("abcd", "abcdefghijklmnopqrstuv"));
        ice.candidates.push("1 1 udp 2122260223 192.0.2.1 0 typ host".into());
        let mut section = MediaSection::new(natter_sdp::MediaKind::Audio, natter_sdp::Protocol::UdpTlsRtpSavpf);
        ice.write_candidates(&mut section, false).unwrap();
        assert_eq!(section.port, 9, "RFC 8829 §5.2.1's placeholder stays");
        ice.candidates.push("2 1 udp 2122260222 192.0.2.2 5000 typ host".into());
        ice.write_candidates(&mut section, false).unwrap();
        assert_eq!(
            (section.port, section.connections[0].address.as_str()),
            (5000, "192.0.2.2")
        );
    }
}
