//! ICE restarts of a WHIP or WHEP session (RFC 9725 §4.3.2): the
//! client's PATCH carries its new `ice-ufrag` and `ice-pwd`; the session's
//! offer with them in is a new offer for the SFU's connection, whose
//! answer restarts ICE on the server's side too (RFC 8445 §9: new local
//! credentials), keeping DTLS and SRTP. The client gets the server's new
//! credentials and candidates back as an SDP fragment (RFC 8840 §9).

/// The session's offer `offer` with the client's new credentials in every
/// section, its candidates of the old generation left out (RFC 8838
/// §4.4: candidates belong to a ufrag; an ICE-lite server learns the
/// client's addresses from its checks), and a session version one higher
/// (RFC 8866 §5.2: a modified session).
pub fn restarted_offer(offer: &str, ufrag: &str, pwd: &str) -> String {
    let mut out = String::with_capacity(offer.len());
    for line in offer.lines().map(|l| l.trim_end_matches('\r')) {
        if line.starts_with("a=ice-ufrag:") {
            out.push_str("a=ice-ufrag:");
            out.push_str(ufrag);
        } else if line.starts_with("a=ice-pwd:") {
            out.push_str("a=ice-pwd:");
            out.push_str(pwd);
        } else if line.starts_with("a=candidate:") || line == "a=end-of-candidates" {
            continue;
        } else if let Some(origin) = line.strip_prefix("o=") {
            out.push_str("o=");
            out.push_str(&next_version(origin));
        } else {
            out.push_str(line);
        }
        out.push_str("\r\n");
    }
    out
}

/// `username sess-id sess-version ...` with the version incremented
/// (unchanged if it is not a number).
fn next_version(origin: &str) -> String {
    let fields: Vec<&str> = origin.split(' ').collect();
    match fields.get(2).and_then(|v| v.parse::<u64>().ok()) {
        Some(version) => {
            let next = version.wrapping_add(1).to_string();
            let mut fields = fields;
            fields[2] = &next;
            fields.join(" ")
        }
        None => origin.to_owned(),
    }
}

/// The fragment a restart's 200 carries (RFC 9725 §4.3.2's example):
/// `a=ice-lite` if the answer has it, the answer's new `ice-ufrag` and
/// `ice-pwd`, then each section's `m=` and `a=mid` lines with its
/// candidates and `a=end-of-candidates`. `None` if the answer has no
/// credentials.
pub fn answer_fragment(answer: &str) -> Option<String> {
    let lines = || answer.lines().map(|l| l.trim_end_matches('\r'));
    let ufrag = lines().find(|l| l.starts_with("a=ice-ufrag:"))?;
    let pwd = lines().find(|l| l.starts_with("a=ice-pwd:"))?;
    let mut out = String::with_capacity(answer.len() / 2);
    let mut in_media = false;
    for line in lines() {
        if line.starts_with("m=") {
            if !in_media {
                for header in [ufrag, pwd] {
                    out.push_str(header);
                    out.push_str("\r\n");
                }
            }
            in_media = true;
        }
        let kept = if in_media {
            line.starts_with("m=")
                || line.starts_with("a=mid:")
                || line.starts_with("a=candidate:")
                || line == "a=end-of-candidates"
        } else {
            line == "a=ice-lite"
        };
        if kept {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    if !in_media {
        for header in [ufrag, pwd] {
            out.push_str(header);
            out.push_str("\r\n");
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offer_takes_the_new_credentials_and_a_new_version() {
        let offer = "v=0\r\no=- 42 2 IN IP4 127.0.0.1\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
                     a=ice-ufrag:old1\r\na=ice-pwd:oldoldoldoldoldoldoldold\r\n\
                     a=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n\
                     m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=ice-ufrag:old1\r\na=ice-pwd:oldoldoldoldoldoldoldold\r\n";
        let restarted = restarted_offer(offer, "R3st", "abcdefghijklmnopqrstuvwx");
        assert_eq!(
            restarted,
            "v=0\r\no=- 42 3 IN IP4 127.0.0.1\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
             a=ice-ufrag:R3st\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=ice-ufrag:R3st\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
        );
        assert_eq!(next_version("- 42 x IN IP4 0.0.0.0"), "- 42 x IN IP4 0.0.0.0");
    }

    #[test]
    fn the_fragment_has_the_credentials_then_each_sections_candidates() {
        let answer = "v=0\r\no=- 1 3 IN IP4 0.0.0.0\r\ns=-\r\na=ice-lite\r\na=group:BUNDLE 0 1\r\n\
                      m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:N3wU\r\n\
                      a=ice-pwd:newnewnewnewnewnewnewnew\r\na=rtpmap:111 opus/48000/2\r\n\
                      a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n\
                      m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=end-of-candidates\r\n";
        assert_eq!(
            answer_fragment(answer).unwrap(),
            "a=ice-lite\r\na=ice-ufrag:N3wU\r\na=ice-pwd:newnewnewnewnewnewnewnew\r\n\
             m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
             a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=end-of-candidates\r\n"
        );
        assert_eq!(answer_fragment("v=0\r\nm=audio 9 X 0\r\n"), None, "no credentials");
    }
}
