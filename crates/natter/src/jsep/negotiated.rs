//! What an exchange negotiated (RFC 8829 §5.9-§5.11), summed up for the
//! transports and the media: the bundle's ICE and DTLS parameters, and per
//! section the direction, codecs, header extensions and the peer's sources.

use natter_rtp::extension::URI_RTP_STREAM_ID;
use natter_sdp::{
    Direction, Extmap, Fingerprint, Flag, MediaView, Msid, Rid, RidDirection, SessionDescription, Setup, Simulcast,
    SsrcGroup,
};

use super::codec::{negotiated_codecs, NegotiatedCodec};
use super::config::{DtlsRole, IceCredentials};
use super::direction;
use super::error::JsepError;
use super::header_extension::id_of;
use super::layout::{is_rejected, Content, MLine};
use super::parse::{bundle_mids, credentials};
use super::transceiver::{MediaKind, TransceiverId};

/// RFC 8841 §5: the SCTP port when `a=sctp-port` is absent.
const DEFAULT_REMOTE_SCTP_PORT: u16 = 5000;
/// RFC 8841 §6: the message size to assume when `a=max-message-size` is absent.
const DEFAULT_REMOTE_MAX_MESSAGE_SIZE: u64 = 65_536;

/// The outcome of an offer/answer exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// We made the offer.
    pub we_offered: bool,
    /// The one transport every section shares; `None` when every section
    /// was rejected.
    pub transport: Option<BundleTransport>,
    /// The audio and video sections, in `m=` line order, rejected ones
    /// included (so that their transceivers can stop).
    pub media: Vec<NegotiatedMedia>,
    /// The data channel section, if accepted.
    pub data_channel: Option<NegotiatedDataChannel>,
}

impl Negotiated {
    /// The media section `mid`.
    pub fn media(&self, mid: &str) -> Option<&NegotiatedMedia> {
        self.media.iter().find(|m| m.mid == mid)
    }
}

/// The BUNDLE transport (RFC 8843): ICE and DTLS for every section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleTransport {
    /// The bundled mids; the first is the tagged section (RFC 8843 §7).
    pub mids: Vec<String>,
    pub local_ice: IceCredentials,
    pub remote_ice: IceCredentials,
    /// The peer is ICE lite (RFC 8445 §2.5), so we control.
    pub remote_ice_lite: bool,
    /// Our ICE role (RFC 8445 §6.1.1): a full agent controls a lite one;
    /// between agents of one kind, the offerer controls.
    pub ice_controlling: bool,
    /// This exchange changed either side's credentials (RFC 8445 §9).
    pub ice_restart: bool,
    /// `a=candidate` values of the bundled sections, without `candidate:`,
    /// for natter-ice to parse; duplicates dropped.
    pub remote_candidates: Vec<String>,
    /// The peer wrote `a=end-of-candidates` (RFC 8840).
    pub remote_end_of_candidates: bool,
    /// The certificate fingerprints the peer's DTLS must match (RFC 8122 §5).
    pub remote_fingerprints: Vec<Fingerprint>,
    /// Our DTLS role (RFC 5763 §5, RFC 8842 §5): the `setup:active` side
    /// is the client.
    pub dtls_role: DtlsRole,
    /// Both descriptions carry SPED's ICE option
    /// (draft-hancke-webrtc-sped §6).
    pub sped: bool,
}

/// One audio or video section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiatedMedia {
    pub mid: String,
    pub kind: MediaKind,
    pub transceiver: TransceiverId,
    /// Rejected by either side (port 0): nothing flows.
    pub rejected: bool,
    /// Which way media flows, for us (RFC 3264 §6.1); `inactive` if rejected.
    pub direction: Direction,
    /// The codecs we may send, in the peer's order of preference, with
    /// the peer's payload types and parameters.
    pub send_codecs: Vec<NegotiatedCodec>,
    /// The codecs we may receive, in our order, with our payload types.
    pub recv_codecs: Vec<NegotiatedCodec>,
    /// The header extensions both use, with the answer's ids (RFC 8285).
    pub extensions: Vec<Extmap>,
    /// Both sides do reduced-size RTCP (RFC 5506).
    pub rtcp_rsize: bool,
    /// The peer's SSRCs (`a=ssrc`, RFC 5576 §4.1), in order.
    pub remote_ssrcs: Vec<u32>,
    /// The peer's SSRC groups, such as `FID` pairing a stream and its RTX.
    pub remote_ssrc_groups: Vec<SsrcGroup>,
    /// The RTP stream ids the peer sends (RFC 8851).
    pub remote_rids: Vec<Rid>,
    /// The peer's simulcast (RFC 8853 §5.1).
    pub remote_simulcast: Option<Simulcast>,
    /// The RIDs we receive as simulcast streams: those of our section's
    /// `a=simulcast:recv` (RFC 8853 §5.3), alternatives included; empty
    /// without simulcast.
    pub recv_rids: Vec<String>,
    /// The RIDs we send as simulcast streams, in our order: those of our
    /// section's `a=simulcast:send` that the peer's `a=simulcast:recv`
    /// lists unpaused (RFC 8853 §5.2, §5.3), with the RID header
    /// extension negotiated; empty without simulcast, when we send one
    /// stream (W3C: the first encoding).
    pub send_rids: Vec<String>,
    /// The peer's stream and track (`a=msid`, or Plan B's `a=ssrc msid`).
    pub remote_msid: Option<Msid>,
    /// The peer's RTCP CNAME (`a=ssrc cname`, RFC 7022).
    pub remote_cname: Option<String>,
}

impl NegotiatedMedia {
    /// The id of the header extension `uri`, such as
    /// [`URI_MID`](natter_rtp::extension::URI_MID).
    pub fn extension_id(&self, uri: &str) -> Option<u16> {
        super::header_extension::id_of(&self.extensions, uri)
    }
}

/// The data channel section (RFC 8841).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiatedDataChannel {
    pub mid: String,
    /// Our `a=sctp-port`.
    pub local_sctp_port: u16,
    /// The peer's; 5000 when it wrote none (RFC 8841 §5).
    pub remote_sctp_port: u16,
    /// The largest message we accept.
    pub local_max_message_size: u64,
    /// The largest the peer accepts; 0 for no limit, 64 KiB when it
    /// wrote none (RFC 8841 §6).
    pub remote_max_message_size: u64,
    /// SNAP (draft-hancke-tsvwg-snap-01): our INIT chunk and the peer's,
    /// when both sections carried `a=sctp-init`.
    pub sctp_inits: Option<(Vec<u8>, Vec<u8>)>,
}

/// What [`negotiate`] reads.
pub(crate) struct Exchange<'a> {
    pub(crate) local: &'a SessionDescription,
    pub(crate) remote: &'a SessionDescription,
    pub(crate) we_offered: bool,
    pub(crate) mlines: &'a [MLine],
    pub(crate) previous: Option<&'a Negotiated>,
}

/// Sums up an exchange whose descriptions passed the checks of RFC 8829
/// §5.8 and have the same mids in the same order.
pub(crate) fn negotiate(exchange: &Exchange<'_>) -> Result<Negotiated, JsepError> {
    let Exchange {
        local,
        remote,
        we_offered,
        mlines,
        previous,
    } = *exchange;
    let answer = if we_offered { remote } else { local };
    let mut media = Vec::new();
    let mut data_channel = None;
    let mut in_use = Vec::new();
    for line in mlines {
        let (Some(ours), Some(theirs)) = (local.media_by_mid(&line.mid), remote.media_by_mid(&line.mid)) else {
            continue;
        };
        let rejected = is_rejected(&ours) || is_rejected(&theirs);
        if !rejected {
            in_use.push(line.mid.clone());
        }
        match &line.content {
            Content::Transceiver(id) => {
                let Some(kind) = MediaKind::from_sdp(&ours.kind) else {
                    continue;
                };
                let (direction, send_codecs, recv_codecs) = if rejected {
                    (Direction::Inactive, Vec::new(), Vec::new())
                } else {
                    let (local_codecs, remote_codecs) = (ours.codecs(), theirs.codecs());
                    (
                        direction::negotiated(ours.direction(), theirs.direction()),
                        negotiated_codecs(&remote_codecs, &local_codecs),
                        negotiated_codecs(&local_codecs, &remote_codecs),
                    )
                };
                let answered = if we_offered { &theirs } else { &ours };
                let ssrcs: Vec<natter_sdp::Ssrc> = theirs.ssrcs().collect();
                let mut remote_ssrcs: Vec<u32> = Vec::new();
                for ssrc in &ssrcs {
                    if !remote_ssrcs.contains(&ssrc.ssrc) {
                        remote_ssrcs.push(ssrc.ssrc);
                    }
                }
                let source = |name: &str| ssrcs.iter().find(|s| s.attribute == name).and_then(|s| s.value.clone());
                media.push(NegotiatedMedia {
                    mid: line.mid.clone(),
                    kind,
                    transceiver: *id,
                    rejected,
                    direction,
                    send_codecs,
                    recv_codecs,
                    extensions: if rejected { Vec::new() } else { answered.extmaps() },
                    rtcp_rsize: ours.flag(Flag::RtcpRsize) && theirs.flag(Flag::RtcpRsize),
                    remote_msid: theirs
                        .msids()
                        .next()
                        .or_else(|| source("msid").and_then(|m| m.trim().parse().ok())),
                    remote_cname: source("cname"),
                    remote_ssrcs,
                    remote_ssrc_groups: theirs.ssrc_groups().collect(),
                    remote_rids: theirs.rids().filter(|r| r.direction == RidDirection::Send).collect(),
                    remote_simulcast: theirs.simulcast(),
                    recv_rids: ours
                        .simulcast()
                        .filter(|_| !rejected)
                        .map(|s| s.recv.into_iter().flatten().map(|r| r.rid).collect())
                        .unwrap_or_default(),
                    send_rids: if rejected || id_of(&answered.extmaps(), URI_RTP_STREAM_ID).is_none() {
                        Vec::new()
                    } else {
                        simulcast_sent(&ours, &theirs)
                    },
                });
            }
            Content::DataChannel if !rejected => {
                let legacy_port = theirs
                    .attributes
                    .value("sctpmap")
                    .and_then(|v| v.split_ascii_whitespace().next()?.parse().ok());
                data_channel = Some(NegotiatedDataChannel {
                    mid: line.mid.clone(),
                    local_sctp_port: ours.sctp_port().unwrap_or(DEFAULT_REMOTE_SCTP_PORT),
                    remote_sctp_port: theirs.sctp_port().or(legacy_port).unwrap_or(DEFAULT_REMOTE_SCTP_PORT),
                    local_max_message_size: ours.max_message_size().unwrap_or(DEFAULT_REMOTE_MAX_MESSAGE_SIZE),
                    remote_max_message_size: theirs.max_message_size().unwrap_or(DEFAULT_REMOTE_MAX_MESSAGE_SIZE),
                    sctp_inits: ours.sctp_init().zip(theirs.sctp_init()),
                });
            }
            Content::DataChannel | Content::Rejected { .. } => {}
        }
    }

    let mut bundle: Vec<String> = bundle_mids(answer).into_iter().filter(|m| in_use.contains(m)).collect();
    if bundle.is_empty() {
        match in_use.as_slice() {
            [] => {}
            [only] => bundle.push(only.clone()),
            [_, second, ..] => return Err(JsepError::NotBundled { mid: second.clone() }),
        }
    }
    let transport = match bundle.first() {
        Some(tagged) => Some(transport(local, remote, we_offered, tagged, &bundle, previous)?),
        None => None,
    };
    Ok(Negotiated {
        we_offered,
        transport,
        media,
        data_channel,
    })
}

/// The bundle's transport, read from its tagged section.
fn transport(
    local: &SessionDescription,
    remote: &SessionDescription,
    we_offered: bool,
    tagged: &str,
    bundle: &[String],
    previous: Option<&Negotiated>,
) -> Result<BundleTransport, JsepError> {
    let missing = || JsepError::MissingIceCredentials { mid: tagged.into() };
    let ours = local.media_by_mid(tagged).ok_or_else(missing)?;
    let theirs = written_transport(remote, tagged).ok_or_else(missing)?;
    let local_ice = credentials(&written_transport(local, tagged).unwrap_or(ours)).ok_or_else(missing)?;
    let remote_ice = credentials(&theirs).ok_or_else(missing)?;

    let mut remote_candidates: Vec<String> = Vec::new();
    let mut remote_end_of_candidates = false;
    for view in bundle.iter().filter_map(|mid| remote.media_by_mid(mid)) {
        for candidate in view.candidates() {
            if !remote_candidates.iter().any(|c| c == candidate) {
                remote_candidates.push(candidate.to_string());
            }
        }
        remote_end_of_candidates |= view.flag(Flag::EndOfCandidates);
    }

    // RFC 4145 §4: no a=setup means active.
    let answer_setup = if we_offered { theirs.setup() } else { ours.setup() }.unwrap_or(Setup::Active);
    let answerer_is_client = answer_setup == Setup::Active;
    let dtls_role = if answerer_is_client != we_offered {
        DtlsRole::Client
    } else {
        DtlsRole::Server
    };
    let remote_ice_lite = remote.ice_lite();
    let ice_restart = previous
        .and_then(|p| p.transport.as_ref())
        .is_some_and(|p| p.local_ice != local_ice || p.remote_ice != remote_ice);
    Ok(BundleTransport {
        mids: bundle.to_vec(),
        local_ice,
        remote_ice,
        remote_ice_lite,
        ice_controlling: match (local.ice_lite(), remote_ice_lite) {
            (false, true) => true,
            (true, false) => false,
            _ => we_offered,
        },
        ice_restart,
        remote_candidates,
        remote_end_of_candidates,
        remote_fingerprints: theirs.fingerprints(),
        dtls_role,
        sped: super::answer::offers_sped(&ours.ice_options()) && super::answer::offers_sped(&theirs.ice_options()),
    })
}

/// The section that writes the bundle's transport: the tagged one, but an
/// offerer whose tagged section the answer rejected wrote it in another
/// section of its group (RFC 8843 §7.3).
fn written_transport<'a>(description: &'a SessionDescription, tagged: &str) -> Option<MediaView<'a>> {
    std::iter::once(tagged.to_string())
        .chain(bundle_mids(description))
        .filter_map(|mid| description.media_by_mid(&mid))
        .find(|view| credentials(view).is_some())
}

/// The RIDs of `ours`' `a=simulcast:send` that `theirs`' `a=simulcast:recv`
/// takes unpaused (RFC 8853 §5.2), in our order.
fn simulcast_sent(ours: &MediaView<'_>, theirs: &MediaView<'_>) -> Vec<String> {
    let (Some(ours), Some(theirs)) = (ours.simulcast(), theirs.simulcast()) else {
        return Vec::new();
    };
    let taken = |rid: &str| theirs.recv.iter().flatten().any(|r| r.rid == rid && !r.paused);
    ours.send
        .into_iter()
        .flatten()
        .filter(|r| !r.paused && taken(&r.rid))
        .map(|r| r.rid)
        .collect()
}
