//! Writing media sections as Chromium does (RFC 8829 §5.2.1, §5.3.1):
//! the transport attributes every bundled section repeats, RTP sections
//! with their codecs, extensions and sources, the data channel section,
//! and rejected sections.

use std::net::Ipv4Addr;

use natter_sdp::{
    Address, Attribute, Codec, Direction, Extmap, Fingerprint, Flag, MediaSection, Protocol, Rid, Rtcp, Setup,
    Simulcast, Ssrc, SsrcGroup, SsrcGroupSemantics,
};

use super::config::IceCredentials;
use super::error::JsepError;
use super::ice::LocalIce;
use super::transceiver::{LocalTrack, MediaKind};

/// RFC 8841 §4: the format of a data channel section.
const DATA_CHANNEL_FORMAT: &str = "webrtc-datachannel";

/// The transport of the bundle, which every section repeats.
pub(crate) struct Transport<'a> {
    pub(crate) ice: &'a IceCredentials,
    pub(crate) fingerprint: &'a Fingerprint,
    pub(crate) setup: Setup,
    /// Set for the first section of the bundle, which carries the
    /// candidates (RFC 8843 §7.2: the tagged section); the flag says the
    /// credentials are new, so the gathered candidates are stale.
    pub(crate) candidates: Option<(&'a LocalIce, bool)>,
    /// `a=ice-options` carries `sped` (draft-hancke-webrtc-sped §6).
    pub(crate) sped: bool,
}

/// Writes the ICE and DTLS attributes (RFC 8839 §5, RFC 8122 §5,
/// RFC 8842 §5), with the candidates first as Chromium does.
fn push_transport(section: &mut MediaSection, transport: &Transport<'_>) -> Result<(), JsepError> {
    if let Some((ice, restarting)) = transport.candidates {
        ice.write_candidates(section, restarting)?;
    }
    let attributes = &mut section.attributes;
    attributes.set_ice_credentials(&transport.ice.ufrag, &transport.ice.pwd)?;
    let options: &[&str] = if transport.sped {
        &["trickle", natter_ice::sped::ICE_OPTION]
    } else {
        &["trickle"]
    };
    attributes.set_ice_options(options.iter().copied())?;
    attributes.push_typed(transport.fingerprint)?;
    attributes.push_typed(&transport.setup)?;
    Ok(())
}

/// What an RTP section says beyond its transport.
pub(crate) struct RtpSection<'a> {
    pub(crate) kind: MediaKind,
    pub(crate) protocol: Protocol,
    pub(crate) mid: &'a str,
    pub(crate) direction: Direction,
    pub(crate) extensions: &'a [Extmap],
    pub(crate) codecs: &'a [Codec],
    /// Written when the direction sends.
    pub(crate) track: Option<&'a LocalTrack>,
    pub(crate) cname: &'a str,
    /// RFC 5506 §5: reduced-size RTCP; offered always, answered if offered.
    pub(crate) rtcp_rsize: bool,
    /// The section's `a=rid` lines and `a=simulcast` (RFC 8853 §5):
    /// what we offer to send, or what we accept of the offerer's.
    pub(crate) simulcast: Option<(Vec<Rid>, Simulcast)>,
}

/// An RTP section in Chromium's attribute order.
pub(crate) fn rtp_section(rtp: &RtpSection<'_>, transport: &Transport<'_>) -> Result<MediaSection, JsepError> {
    let mut section = MediaSection::new(rtp.kind.sdp(), rtp.protocol.clone());
    // RFC 8829 §5.2.1: `a=rtcp:9 IN IP4 0.0.0.0` until candidates say otherwise.
    section.attributes.push_typed(&Rtcp {
        port: 9,
        address: Some(Address::new(Ipv4Addr::UNSPECIFIED.into())),
    })?;
    push_transport(&mut section, transport)?;
    section.set_mid(rtp.mid)?;
    for extension in rtp.extensions {
        section.attributes.push_typed(extension)?;
    }
    section.set_direction(rtp.direction);
    let track = rtp.track.filter(|_| super::direction::sends(rtp.direction));
    if let Some(track) = track {
        section.attributes.push_typed(&track.msid())?;
    }
    section.attributes.set_flag(Flag::RtcpMux, true);
    section.attributes.set_flag(Flag::RtcpRsize, rtp.rtcp_rsize);
    for codec in rtp.codecs {
        section.push_codec(codec)?;
    }
    if let Some((rids, simulcast)) = &rtp.simulcast {
        for rid in rids {
            section.attributes.push_typed(rid)?;
        }
        section.attributes.push_typed(simulcast)?;
    }
    // RFC 8853 §5.1: simulcast streams are told apart by RID, not by
    // signaled SSRCs (Chromium writes none either).
    let sends_simulcast = rtp.simulcast.as_ref().is_some_and(|(_, s)| !s.send.is_empty());
    if let Some(track) = track.filter(|_| !sends_simulcast) {
        push_sources(&mut section, track, rtp.cname)?;
    }
    Ok(section)
}

/// `a=ssrc-group:FID` and the `a=ssrc` lines of a track (RFC 5576 §4,
/// RFC 4588 §8.7), with `cname` (RFC 7022) and `msid` as Chromium writes.
fn push_sources(section: &mut MediaSection, track: &LocalTrack, cname: &str) -> Result<(), JsepError> {
    let mut ssrcs = vec![track.ssrc];
    if let Some(rtx) = track.rtx_ssrc {
        ssrcs.push(rtx);
        section
            .attributes
            .push_typed(&SsrcGroup::new(SsrcGroupSemantics::Fid, ssrcs.clone()))?;
    }
    let msid = track.msid().to_string();
    for ssrc in ssrcs {
        section.attributes.push_typed(&Ssrc::new(ssrc, "cname", Some(cname)))?;
        section.attributes.push_typed(&Ssrc::new(ssrc, "msid", Some(&msid)))?;
    }
    Ok(())
}

/// The data channel section (RFC 8841 §4-§6), with our SCTP INIT in
/// `a=sctp-init` when given (SNAP, draft-hancke-tsvwg-snap-01). `legacy`
/// answers an older peer's `DTLS/SCTP <port>` with `a=sctpmap` in kind.
pub(crate) fn data_section(
    mid: &str,
    sctp_port: u16,
    max_message_size: u64,
    sctp_init: Option<&[u8]>,
    legacy: bool,
    transport: &Transport<'_>,
) -> Result<MediaSection, JsepError> {
    let protocol = if legacy {
        Protocol::DtlsSctp
    } else {
        Protocol::UdpDtlsSctp
    };
    let mut section = MediaSection::new(natter_sdp::MediaKind::Application, protocol);
    push_transport(&mut section, transport)?;
    section.set_mid(mid)?;
    if legacy {
        section.formats = vec![sctp_port.to_string()];
        section.attributes.push(Attribute::new(
            "sctpmap",
            format!("{sctp_port} {DATA_CHANNEL_FORMAT} 65535"),
        ))?;
    } else {
        section.formats = vec![DATA_CHANNEL_FORMAT.into()];
        section.set_sctp_port(sctp_port);
    }
    section.set_max_message_size(max_message_size);
    if let Some(init) = sctp_init {
        section.set_sctp_init(init)?;
    }
    Ok(section)
}

/// A rejected or stopped section (RFC 3264 §6, RFC 8829 §5.2.2): port 0,
/// its mid and `inactive`. The transport attributes are there too, as
/// Chromium writes them, for parsers that want them in every section.
pub(crate) fn rejected_section(
    kind: natter_sdp::MediaKind,
    protocol: Protocol,
    formats: Vec<String>,
    mid: &str,
    transport: &Transport<'_>,
) -> Result<MediaSection, JsepError> {
    let mut section = MediaSection::new(kind, protocol);
    push_transport(&mut section, transport)?;
    section.port = 0;
    // RFC 8866 §5.14: at least one format, even when rejected.
    section.formats = if formats.is_empty() { vec!["0".into()] } else { formats };
    section.set_mid(mid)?;
    section.set_direction(Direction::Inactive);
    Ok(section)
}
