//! The checks a description must pass before it is applied (RFC 8829
//! §5.8): mids, the BUNDLE group, and the ICE, DTLS and RTCP attributes
//! that the transports need.

use natter_sdp::{Flag, MediaSection, MediaView, SessionDescription, Setup};

use super::config::IceCredentials;
use super::error::JsepError;
use super::ice::long_enough;
use super::layout::{is_rejected, usable, Usable};

/// The mids of the first BUNDLE group (RFC 8843 §7), the first being the
/// tagged section whose transport the others share; natter uses one
/// bundle, so later groups are not read.
pub(crate) fn bundle_mids(description: &SessionDescription) -> Vec<String> {
    description.bundle_groups().next().map(|g| g.mids).unwrap_or_default()
}

/// The mid of the section whose transport the session uses: the tagged
/// section of the bundle, else the only section in use.
pub(crate) fn tagged_mid(description: &SessionDescription) -> Option<String> {
    let in_use = |mid: &String| description.media_by_mid(mid).is_some_and(|m| !is_rejected(&m));
    bundle_mids(description).into_iter().find(in_use).or_else(|| {
        description
            .media
            .iter()
            .filter(|m| !is_rejected(m))
            .find_map(|m| m.mid().map(str::to_string))
    })
}

/// The tagged section, to add candidates to.
pub(crate) fn tagged_section_mut(description: &mut SessionDescription) -> Option<&mut MediaSection> {
    let mid = tagged_mid(description)?;
    description.media.iter_mut().find(|m| m.mid() == Some(mid.as_str()))
}

/// The ICE credentials of a section, with the session's as fallback.
pub(crate) fn credentials(view: &MediaView<'_>) -> Option<IceCredentials> {
    Some(IceCredentials::new(view.ice_ufrag()?, view.ice_pwd()?))
}

/// The ICE credentials of the session's transport.
pub(crate) fn transport_credentials(description: &SessionDescription) -> Option<IceCredentials> {
    credentials(&description.media_by_mid(&tagged_mid(description)?)?)
}

/// Checks `description` (RFC 8829 §5.8): each section has a unique mid;
/// the BUNDLE group names only those; every section we would take part
/// in is bundled (max-bundle), unless it is the only one; the transport
/// section has ICE credentials and a fingerprint; an answer's `a=setup`
/// picks a role; RTP sections multiplex RTCP.
pub(crate) fn check(description: &SessionDescription, answer: bool) -> Result<(), JsepError> {
    let mut mids: Vec<&str> = Vec::new();
    for (index, section) in description.media.iter().enumerate() {
        let mid = section.mid().ok_or(JsepError::MissingMid { index })?;
        if mids.contains(&mid) {
            return Err(JsepError::DuplicateMid { mid: mid.into() });
        }
        mids.push(mid);
    }
    for group in description.bundle_groups() {
        if let Some(mid) = group.mids.iter().find(|m| !mids.contains(&m.as_str())) {
            return Err(JsepError::UnknownBundleMid { mid: mid.clone() });
        }
    }

    let bundle = bundle_mids(description);
    let in_use: Vec<MediaView<'_>> = description
        .media_views()
        .filter(|view| !is_rejected(view) && usable(view).is_some())
        .collect();
    let tagged = tagged_mid(description);
    for view in &in_use {
        let mid = view.mid().unwrap_or_default().to_string();
        let bundled = bundle.contains(&mid);
        if !bundled && in_use.len() > 1 {
            return Err(JsepError::NotBundled { mid });
        }
        if usable(view) != Some(Usable::Data) && !view.flag(Flag::RtcpMux) {
            return Err(JsepError::RtcpMuxRequired { mid });
        }
        // RFC 8843 §7: bundled sections use the tagged section's transport.
        if tagged.as_deref() != Some(mid.as_str()) {
            continue;
        }
        match (view.ice_ufrag(), view.ice_pwd()) {
            (Some(ufrag), Some(pwd)) if long_enough(ufrag, pwd) => {}
            (Some(_), Some(_)) => return Err(JsepError::ShortIceCredentials { mid }),
            _ => return Err(JsepError::MissingIceCredentials { mid }),
        }
        if view.fingerprints().is_empty() {
            return Err(JsepError::MissingFingerprint { mid });
        }
        if let Some(setup @ (Setup::ActPass | Setup::HoldConn)) = view.setup().filter(|_| answer) {
            return Err(JsepError::InvalidSetup {
                mid,
                setup: setup.name(),
            });
        }
    }
    Ok(())
}
