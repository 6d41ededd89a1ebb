//! The SDP answer a WHIP or WHEP client gets: the SFU's answer with the
//! SFU's ICE candidates written in (RFC 9725 §4.2: the server does not
//! trickle, so its candidates are in the answer, each section's followed
//! by `a=end-of-candidates`, RFC 8840 §4.4).

use serde_json::Value;

/// The SFU's answer and its candidates as signaling carries them
/// (W3C `RTCIceCandidateInit`: `candidate`, `sdpMid`), gathered until
/// its end-of-candidates.
#[derive(Debug, Default)]
pub struct Gathering {
    answer: Option<String>,
    candidates: Vec<(Option<String>, String)>,
}

impl Gathering {
    pub fn answer(&mut self, sdp: String) {
        self.answer = Some(sdp);
    }

    /// One candidate; `Value::Null` ends them.
    pub fn candidate(&mut self, init: &Value) {
        if let Some(line) = init["candidate"].as_str() {
            let mid = init["sdpMid"].as_str().map(str::to_owned);
            self.candidates.push((mid, line.trim_start_matches("a=").to_owned()));
        }
    }

    /// The answer with every candidate in the section its `sdpMid` names
    /// (the first section if none), or `None` before the answer came.
    pub fn complete(self) -> Option<String> {
        let answer = self.answer?;
        let mut out = String::with_capacity(answer.len() + 128 * self.candidates.len());
        let mut section: Option<String> = None;
        let mut first = true;
        let close = |out: &mut String, mid: Option<&str>, first: bool| {
            let mine = |c: &&(Option<String>, String)| match &c.0 {
                Some(m) => Some(m.as_str()) == mid,
                None => first,
            };
            for (_, line) in self.candidates.iter().filter(mine) {
                out.push_str("a=");
                out.push_str(line);
                out.push_str("\r\n");
            }
            out.push_str("a=end-of-candidates\r\n");
        };
        let mut in_media = false;
        for line in answer
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.is_empty())
        {
            if line.starts_with("m=") {
                if in_media {
                    close(&mut out, section.as_deref(), first);
                    first = false;
                }
                in_media = true;
                section = None;
            } else if let Some(mid) = line.strip_prefix("a=mid:") {
                section = Some(mid.to_owned());
            }
            if line != "a=end-of-candidates" {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
        if in_media {
            close(&mut out, section.as_deref(), first);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn candidates_go_in_the_section_their_mid_names() {
        let mut gathering = Gathering::default();
        gathering.candidate(&json!({"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0"}));
        gathering.candidate(&Value::Null);
        assert_eq!(Gathering::default().complete(), None, "nothing before the answer");
        gathering.answer("v=0\r\nm=audio 9 X 0\r\na=mid:0\r\nm=video 9 X 96\r\na=mid:1\r\n".into());
        assert_eq!(
            gathering.complete().unwrap(),
            "v=0\r\nm=audio 9 X 0\r\na=mid:0\r\na=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n\
             a=end-of-candidates\r\nm=video 9 X 96\r\na=mid:1\r\na=end-of-candidates\r\n"
        );
    }
}
