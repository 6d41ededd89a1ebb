//! What the SFU reads of a participant's offer itself: the simulcast
//! layers each section sends (RFC 8853 §5.1 `a=simulcast:send`), which
//! become the layers of the section's publication.

use std::collections::HashMap;

/// Each section's sent simulcast RIDs by mid, in the order of its
/// `a=simulcast:send` (the protocol asks for lowest first); the first
/// alternative of each stream (RFC 8853 §5.1), `~` (paused) dropped.
/// Sections without simulcast are left out.
pub fn simulcast_send_rids(sdp: &str) -> HashMap<String, Vec<String>> {
    let mut rids = HashMap::new();
    let mut mid: Option<&str> = None;
    let mut send: Option<&str> = None;
    let mut section_end = |mid: Option<&str>, send: Option<&str>| {
        if let (Some(mid), Some(send)) = (mid, send) {
            let streams = send.split(';').filter_map(|stream| {
                let first = stream.split(',').next()?.trim().trim_start_matches('~');
                (!first.is_empty()).then(|| first.to_owned())
            });
            rids.insert(mid.to_owned(), streams.collect());
        }
    };
    for line in sdp.lines().map(str::trim_end) {
        if line.starts_with("m=") {
            section_end(mid.take(), send.take());
        } else if let Some(value) = line.strip_prefix("a=mid:") {
            mid = Some(value);
        } else if let Some(value) = line.strip_prefix("a=simulcast:send ") {
            // `a=simulcast:send q;h;f recv ...`: the send list only.
            send = value.split(' ').next();
        }
    }
    section_end(mid, send);
    rids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulcast_sections_give_their_rids_lowest_first() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=rid:q send\r\na=rid:h send\r\n\
                   a=simulcast:send q;~h,h2;f\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=recvonly\r\n";
        let rids = simulcast_send_rids(sdp);
        assert_eq!(rids.len(), 1);
        assert_eq!(rids["1"], ["q", "h", "f"]);
    }
}
