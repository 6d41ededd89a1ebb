//! Media descriptions (RFC 8866 §5.14): the `m=` line and what follows it
//! up to the next `m=`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use crate::address::Address;
use crate::attribute::{
    base64_value, Attribute, Attributes, Flag, CANDIDATE, MAX_MESSAGE_SIZE, MID, SCTP_INIT, SCTP_PORT,
};
use crate::bandwidth::{Bandwidth, BandwidthType};
use crate::codec::Codec;
use crate::direction::Direction;
use crate::error::{AttributeError, ValueError};
use crate::fmtp::Fmtp;
use crate::grammar::{number, token, Fields};
use crate::line::UnknownLine;
use crate::msid::Msid;
use crate::rid::Rid;
use crate::rtcp::{Rtcp, RtcpFeedback};
use crate::rtpmap::RtpMap;
use crate::simulcast::Simulcast;
use crate::ssrc::{Ssrc, SsrcGroup};

/// The `<media>` of an `m=` line (RFC 8866 §5.14).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
    Text,
    /// Data channels use `application` (RFC 8841 §4).
    Application,
    Message,
    /// Any other media type, as written; never one of the names above.
    Other(String),
}

impl MediaKind {
    /// The kind named `name` (names are case-sensitive).
    pub fn from_name(name: &str) -> Self {
        match name {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            "text" => MediaKind::Text,
            "application" => MediaKind::Application,
            "message" => MediaKind::Message,
            other => MediaKind::Other(other.to_string()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Text => "text",
            MediaKind::Application => "application",
            MediaKind::Message => "message",
            MediaKind::Other(name) => name,
        }
    }
}

/// The `<proto>` of an `m=` line: the RTP and SCTP profiles JSEP writes
/// and accepts (RFC 8829 §5.1.2), or any other as written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `RTP/AVP` (RFC 3551).
    RtpAvp,
    /// `RTP/AVPF` (RFC 4585).
    RtpAvpf,
    /// `RTP/SAVP` (RFC 3711).
    RtpSavp,
    /// `RTP/SAVPF` (RFC 5124).
    RtpSavpf,
    /// `UDP/TLS/RTP/SAVP` (RFC 5764 §8).
    UdpTlsRtpSavp,
    /// `UDP/TLS/RTP/SAVPF`: what JSEP offers for media (RFC 8829 §5.1.2).
    UdpTlsRtpSavpf,
    /// `TCP/DTLS/RTP/SAVP` (RFC 7850).
    TcpDtlsRtpSavp,
    /// `TCP/DTLS/RTP/SAVPF` (RFC 7850).
    TcpDtlsRtpSavpf,
    /// `DTLS/SCTP`: the old data channel profile (aiortc still offers it).
    DtlsSctp,
    /// `UDP/DTLS/SCTP`: what JSEP offers for data (RFC 8841 §4).
    UdpDtlsSctp,
    /// `TCP/DTLS/SCTP` (RFC 8841 §4).
    TcpDtlsSctp,
    /// Any other protocol, as written; never one of the names above.
    Other(String),
}

impl Protocol {
    /// The protocol named `name` (names are case-sensitive).
    pub fn from_name(name: &str) -> Self {
        match name {
            "RTP/AVP" => Protocol::RtpAvp,
            "RTP/AVPF" => Protocol::RtpAvpf,
            "RTP/SAVP" => Protocol::RtpSavp,
            "RTP/SAVPF" => Protocol::RtpSavpf,
            "UDP/TLS/RTP/SAVP" => Protocol::UdpTlsRtpSavp,
            "UDP/TLS/RTP/SAVPF" => Protocol::UdpTlsRtpSavpf,
            "TCP/DTLS/RTP/SAVP" => Protocol::TcpDtlsRtpSavp,
            "TCP/DTLS/RTP/SAVPF" => Protocol::TcpDtlsRtpSavpf,
            "DTLS/SCTP" => Protocol::DtlsSctp,
            "UDP/DTLS/SCTP" => Protocol::UdpDtlsSctp,
            "TCP/DTLS/SCTP" => Protocol::TcpDtlsSctp,
            other => Protocol::Other(other.to_string()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Protocol::RtpAvp => "RTP/AVP",
            Protocol::RtpAvpf => "RTP/AVPF",
            Protocol::RtpSavp => "RTP/SAVP",
            Protocol::RtpSavpf => "RTP/SAVPF",
            Protocol::UdpTlsRtpSavp => "UDP/TLS/RTP/SAVP",
            Protocol::UdpTlsRtpSavpf => "UDP/TLS/RTP/SAVPF",
            Protocol::TcpDtlsRtpSavp => "TCP/DTLS/RTP/SAVP",
            Protocol::TcpDtlsRtpSavpf => "TCP/DTLS/RTP/SAVPF",
            Protocol::DtlsSctp => "DTLS/SCTP",
            Protocol::UdpDtlsSctp => "UDP/DTLS/SCTP",
            Protocol::TcpDtlsSctp => "TCP/DTLS/SCTP",
            Protocol::Other(name) => name,
        }
    }

    /// Whether media goes over RTP, so formats are payload types.
    pub fn is_rtp(&self) -> bool {
        !matches!(
            self,
            Protocol::DtlsSctp | Protocol::UdpDtlsSctp | Protocol::TcpDtlsSctp | Protocol::Other(_)
        )
    }

    /// Whether this is a data channel profile (RFC 8841 §4).
    pub fn is_sctp(&self) -> bool {
        matches!(self, Protocol::DtlsSctp | Protocol::UdpDtlsSctp | Protocol::TcpDtlsSctp)
    }
}

/// One media description: an `m=` line and the `i=`, `c=`, `b=`, `k=` and
/// `a=` lines after it.
///
/// Text fields must hold no line break, and the `m=` fields no space, for
/// the section to be written as it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MediaSection {
    pub kind: MediaKind,
    /// The port of the default candidate, 9 (discard) when there is none
    /// yet (RFC 8829 §5.2.1), 0 for a rejected section (RFC 3264 §6).
    pub port: u16,
    /// `<port>/<number of ports>` (RFC 8866 §5.14); WebRTC never uses it.
    pub port_count: Option<u16>,
    pub protocol: Protocol,
    /// RTP payload types as decimal strings, or `webrtc-datachannel`.
    pub formats: Vec<String>,
    /// `i=` (RFC 8866 §5.4).
    pub information: Option<String>,
    /// `c=` (RFC 8866 §5.7); several only for layered multicast.
    pub connections: Vec<Address>,
    /// `b=` (RFC 8866 §5.8).
    pub bandwidths: Vec<Bandwidth>,
    /// `k=` (RFC 8866 §5.12, obsolete), as written.
    pub encryption_key: Option<String>,
    pub attributes: Attributes,
    /// Lines of unknown type, in order; written after the attributes.
    pub unknown_lines: Vec<UnknownLine>,
}

impl MediaSection {
    /// A section on port 9 with `c=IN IP4 0.0.0.0`, the values JSEP uses
    /// before candidates are known (RFC 8829 §5.2.1), and no formats.
    pub fn new(kind: MediaKind, protocol: Protocol) -> Self {
        MediaSection {
            kind,
            port: 9,
            port_count: None,
            protocol,
            formats: Vec::new(),
            information: None,
            connections: vec![Address::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED))],
            bandwidths: Vec::new(),
            encryption_key: None,
            attributes: Attributes::new(),
            unknown_lines: Vec::new(),
        }
    }

    /// Parses the value of an `m=` line.
    pub(crate) fn parse_media_line(value: &str) -> Result<Self, ValueError> {
        let mut fields = Fields::new(value);
        let kind = MediaKind::from_name(token("media type", fields.next("media type")?)?);
        let port_field = fields.next("port")?;
        let (port, port_count) = match port_field.split_once('/') {
            Some((port, count)) => (number("port", port)?, Some(number("number of ports", count)?)),
            None => (number("port", port_field)?, None),
        };
        let protocol = fields.next("protocol")?;
        // RFC 8866 §9: `proto = token *("/" token)`.
        protocol
            .split('/')
            .try_for_each(|part| token("protocol", part).map(drop))?;
        let mut formats = Vec::new();
        while let Some(format) = fields.optional() {
            formats.push(token("format", format)?.to_string());
        }
        Ok(MediaSection {
            port,
            port_count,
            formats,
            connections: Vec::new(),
            ..MediaSection::new(kind, Protocol::from_name(protocol))
        })
    }

    /// `a=mid` (RFC 5888 §4), which BUNDLE groups name (RFC 8843).
    pub fn mid(&self) -> Option<&str> {
        self.attributes.value(MID)
    }

    /// Writes `a=mid`, replacing an earlier one; `mid` must be a token.
    pub fn set_mid(&mut self, mid: &str) -> Result<(), AttributeError> {
        self.attributes.replace(Attribute::new(MID, mid))
    }

    /// The section's own direction attribute; see
    /// [`MediaView::direction`](crate::MediaView::direction) for the
    /// direction in effect.
    pub fn direction(&self) -> Option<Direction> {
        self.attributes.direction()
    }

    pub fn set_direction(&mut self, direction: Direction) {
        self.attributes.set_direction(direction);
    }

    /// `a=msid` (RFC 8830 §2): one per stream the track belongs to.
    pub fn msids(&self) -> impl Iterator<Item = Msid> + '_ {
        self.attributes.typed()
    }

    /// `a=rtcp` (RFC 3605 §2.1).
    pub fn rtcp(&self) -> Option<Rtcp> {
        self.attributes.first()
    }

    /// Whether the property attribute `flag` is present in the section.
    pub fn flag(&self, flag: Flag) -> bool {
        self.attributes.flag(flag)
    }

    /// The codecs of the numeric formats, in `m=` line order: each with
    /// its `a=rtpmap` (or the RFC 3551 static assignment), `a=fmtp`
    /// parameters, and the `a=rtcp-fb` lines for it and for `*`. A dynamic
    /// payload type without `a=rtpmap` names no codec and is left out.
    pub fn codecs(&self) -> Vec<Codec> {
        let rtpmaps: Vec<RtpMap> = self.attributes.typed().collect();
        let fmtps: Vec<Fmtp> = self.attributes.typed().collect();
        let feedback: Vec<RtcpFeedback> = self.attributes.typed().collect();
        self.formats
            .iter()
            .filter_map(|format| crate::grammar::payload_type(format).ok())
            .filter_map(|pt| {
                let rtpmap = rtpmaps.iter().find(|m| m.payload_type == pt).cloned();
                let mut codec = rtpmap.map(Codec::from_rtpmap).or_else(|| Codec::from_static(pt))?;
                if let Some(fmtp) = fmtps.iter().find(|f| f.payload_type == pt) {
                    codec.parameters = fmtp.parameters.clone();
                }
                codec.feedback = feedback
                    .iter()
                    .filter(|f| f.payload_type.is_none_or(|p| p == pt))
                    .map(|f| f.feedback.clone())
                    .collect();
                Some(codec)
            })
            .collect()
    }

    /// Adds `codec`: its payload type to the `m=` line (if not there yet),
    /// then `a=rtpmap`, an `a=rtcp-fb` per feedback and `a=fmtp` if it has
    /// parameters. On error the section is left unchanged.
    pub fn push_codec(&mut self, codec: &Codec) -> Result<(), AttributeError> {
        let pt = codec.payload_type;
        let mut attributes = self.attributes.clone();
        attributes.push_typed(&codec.rtpmap())?;
        for feedback in &codec.feedback {
            attributes.push_typed(&RtcpFeedback {
                payload_type: Some(pt),
                feedback: feedback.clone(),
            })?;
        }
        if !codec.parameters.is_empty() {
            attributes.push_typed(&Fmtp {
                payload_type: pt,
                parameters: codec.parameters.clone(),
            })?;
        }
        self.attributes = attributes;
        let format = pt.to_string();
        if !self.formats.contains(&format) {
            self.formats.push(format);
        }
        Ok(())
    }

    /// `a=rid` (RFC 8851 §10).
    pub fn rids(&self) -> impl Iterator<Item = Rid> + '_ {
        self.attributes.typed()
    }

    /// `a=simulcast` (RFC 8853 §5.1).
    pub fn simulcast(&self) -> Option<Simulcast> {
        self.attributes.first()
    }

    /// `a=ssrc` (RFC 5576 §4.1).
    pub fn ssrcs(&self) -> impl Iterator<Item = Ssrc> + '_ {
        self.attributes.typed()
    }

    /// `a=ssrc-group` (RFC 5576 §4.2).
    pub fn ssrc_groups(&self) -> impl Iterator<Item = SsrcGroup> + '_ {
        self.attributes.typed()
    }

    /// The values of `a=candidate` (RFC 8839 §5.1), for natter-ice to parse.
    pub fn candidates(&self) -> impl Iterator<Item = &str> + '_ {
        self.attributes.values(CANDIDATE)
    }

    /// Appends `a=candidate:<candidate>` (the value without `candidate:`).
    pub fn push_candidate(&mut self, candidate: &str) -> Result<(), AttributeError> {
        self.attributes.push(Attribute::new(CANDIDATE, candidate))
    }

    /// `a=sctp-port` (RFC 8841 §5).
    pub fn sctp_port(&self) -> Option<u16> {
        number("SCTP port", self.attributes.value(SCTP_PORT)?).ok()
    }

    /// Writes `a=sctp-port`, replacing an earlier one.
    pub fn set_sctp_port(&mut self, port: u16) {
        self.attributes
            .replace_valid(Attribute::new(SCTP_PORT, port.to_string()));
    }

    /// `a=max-message-size` (RFC 8841 §6); 0 means no limit. RFC 8841 §6.1
    /// says to assume 64 KiB when it is absent.
    pub fn max_message_size(&self) -> Option<u64> {
        number("max message size", self.attributes.value(MAX_MESSAGE_SIZE)?).ok()
    }

    /// Writes `a=max-message-size`, replacing an earlier one.
    pub fn set_max_message_size(&mut self, size: u64) {
        self.attributes
            .replace_valid(Attribute::new(MAX_MESSAGE_SIZE, size.to_string()));
    }

    /// `a=sctp-init` (draft-hancke-tsvwg-snap-01): the peer's SCTP INIT
    /// chunk, decoded from base64 (checked when the attribute was added).
    pub fn sctp_init(&self) -> Option<Vec<u8>> {
        base64_value("sctp-init", self.attributes.value(SCTP_INIT)?).ok()
    }

    /// Writes `a=sctp-init` with `init` (our INIT chunk) in base64,
    /// replacing an earlier one.
    pub fn set_sctp_init(&mut self, init: &[u8]) -> Result<(), AttributeError> {
        use base64::Engine as _;
        let value = base64::engine::general_purpose::STANDARD.encode(init);
        self.attributes.replace(Attribute::new(SCTP_INIT, value))
    }

    /// The first `b=` line of type `kind`, such as `AS` or `TIAS`.
    pub fn bandwidth(&self, kind: &BandwidthType) -> Option<u64> {
        self.bandwidths.iter().find(|b| b.kind == *kind).map(|b| b.value)
    }
}

impl fmt::Display for MediaSection {
    /// The section's lines, each ending in CRLF, in RFC 8866 §5 order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.kind.name(), self.port)?;
        if let Some(count) = self.port_count {
            write!(f, "/{count}")?;
        }
        write!(f, " {}", self.protocol.name())?;
        self.formats.iter().try_for_each(|format| write!(f, " {format}"))?;
        f.write_str("\r\n")?;
        if let Some(information) = &self.information {
            write!(f, "i={information}\r\n")?;
        }
        self.connections.iter().try_for_each(|c| write!(f, "c={c}\r\n"))?;
        self.bandwidths.iter().try_for_each(|b| write!(f, "b={b}\r\n"))?;
        if let Some(key) = &self.encryption_key {
            write!(f, "k={key}\r\n")?;
        }
        self.attributes.iter().try_for_each(|a| write!(f, "a={a}\r\n"))?;
        self.unknown_lines.iter().try_for_each(|l| write!(f, "{l}\r\n"))
    }
}
