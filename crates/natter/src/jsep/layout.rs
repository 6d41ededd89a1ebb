//! The media sections of the session, in `m=` line order, and what each
//! one carries (RFC 8829 §5.2.2, RFC 3264 §8): sections are never
//! removed or reordered; new ones are appended, or take the place of a
//! rejected one (recycling).

use natter_sdp::{MediaSection, Protocol};

use super::transceiver::{MediaKind, Transceiver, TransceiverId};

/// What a media section is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Content {
    Transceiver(TransceiverId),
    /// The SCTP association of the data channels (RFC 8841).
    DataChannel,
    /// Rejected or stopped: written with port 0 until recycled.
    Rejected {
        kind: natter_sdp::MediaKind,
        protocol: Protocol,
        formats: Vec<String>,
    },
}

/// One media section: its mid and content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MLine {
    pub(crate) mid: String,
    pub(crate) content: Content,
}

/// What a section of a peer's description asks for, when we can do it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Usable {
    Media(MediaKind),
    Data,
}

/// The RTP profiles JSEP uses with DTLS-SRTP (RFC 8829 §5.1.2).
pub(crate) fn is_secure_rtp(protocol: &Protocol) -> bool {
    matches!(protocol, Protocol::UdpTlsRtpSavpf | Protocol::TcpDtlsRtpSavpf)
}

/// What `section` is for, if we can take part in it: audio or video over
/// DTLS-SRTP, or data channels over DTLS/SCTP (the `DTLS/SCTP` of older
/// peers such as aiortc included).
pub(crate) fn usable(section: &MediaSection) -> Option<Usable> {
    match &section.kind {
        natter_sdp::MediaKind::Audio | natter_sdp::MediaKind::Video if is_secure_rtp(&section.protocol) => {
            MediaKind::from_sdp(&section.kind).map(Usable::Media)
        }
        natter_sdp::MediaKind::Application if section.protocol.is_sctp() => Some(Usable::Data),
        _ => None,
    }
}

/// RFC 3264 §6: port 0 rejects a section; with `a=bundle-only` it only
/// means "no transport of its own" (RFC 8843 §6).
pub(crate) fn is_rejected(section: &MediaSection) -> bool {
    section.port == 0 && !section.attributes.contains("bundle-only")
}

/// The next mid of the form JSEP and browsers use: a number not yet used.
pub(crate) fn next_mid(counter: &mut u32, taken: &[MLine]) -> String {
    loop {
        let mid = counter.to_string();
        *counter += 1;
        if !taken.iter().any(|m| m.mid == mid) {
            return mid;
        }
    }
}

/// Keeps the mid counter past a peer's numeric mids, so that ours stay new.
pub(crate) fn observe_mid(counter: &mut u32, mid: &str) {
    if let Ok(n) = mid.parse::<u32>() {
        *counter = (*counter).max(n.saturating_add(1));
    }
}

/// The sections of our next offer (RFC 8829 §5.2.2): the current ones,
/// then one for each transceiver without a section and for the data
/// channels if asked for; a new section recycles the first rejected one
/// (with a new mid), else goes last.
pub(crate) fn plan_offer(
    mlines: &[MLine],
    transceivers: &[Transceiver],
    data_requested: bool,
    mid_counter: &mut u32,
) -> Vec<MLine> {
    let mut plan = mlines.to_vec();
    let mut contents: Vec<Content> = transceivers
        .iter()
        .filter(|t| t.mid.is_none() && !t.stopping)
        .map(|t| Content::Transceiver(t.id))
        .collect();
    if data_requested && !plan.iter().any(|m| m.content == Content::DataChannel) {
        contents.push(Content::DataChannel);
    }
    for content in contents {
        let mid = next_mid(mid_counter, &plan);
        let line = MLine { mid, content };
        match plan.iter_mut().find(|m| matches!(m.content, Content::Rejected { .. })) {
            Some(slot) => *slot = line,
            None => plan.push(line),
        }
    }
    plan
}
