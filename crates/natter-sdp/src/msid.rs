//! Media stream identification: `a=msid` (RFC 8830 §2) and the
//! session-level `a=msid-semantic` that Chromium and others still write
//! (from draft-ietf-mmusic-msid before RFC 8830 dropped it).

use std::fmt;
use std::str::FromStr;

use crate::attribute::TypedAttribute;
use crate::error::ValueError;
use crate::grammar::{token, Fields};

/// `a=msid:<stream id> [<track id>]` (RFC 8830 §2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Msid {
    /// The MediaStream id; `-` for a track in no stream (RFC 8829 §5.2.1).
    pub stream_id: String,
    /// The `msid-appdata`: the track id, which JSEP no longer relies on.
    pub track_id: Option<String>,
}

impl Msid {
    pub fn new(stream_id: impl Into<String>, track_id: Option<String>) -> Self {
        Msid {
            stream_id: stream_id.into(),
            track_id,
        }
    }
}

impl TypedAttribute for Msid {
    const NAME: &'static str = "msid";
}

impl FromStr for Msid {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let mut fields = Fields::new(s);
        let stream_id = token("msid stream id", fields.next("msid stream id")?)?.to_string();
        let track_id = fields
            .optional()
            .map(|t| token("msid track id", t))
            .transpose()?
            .map(str::to_string);
        fields.end()?;
        Ok(Msid { stream_id, track_id })
    }
}

impl fmt::Display for Msid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.stream_id)?;
        match &self.track_id {
            Some(track) => write!(f, " {track}"),
            None => Ok(()),
        }
    }
}

/// `a=msid-semantic:<semantic> [<stream id>...]`, as in `WMS *` or
/// `WMS stream-a stream-b`; Chromium writes `a=msid-semantic: WMS`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MsidSemantic {
    /// `WMS` for WebRTC media streams.
    pub semantic: String,
    /// Stream ids, or `*` for all.
    pub stream_ids: Vec<String>,
}

impl TypedAttribute for MsidSemantic {
    const NAME: &'static str = "msid-semantic";
}

impl FromStr for MsidSemantic {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let mut fields = Fields::new(s);
        let semantic = token("msid semantic", fields.next("msid semantic")?)?.to_string();
        let mut stream_ids = Vec::new();
        while let Some(id) = fields.optional() {
            stream_ids.push(token("msid stream id", id)?.to_string());
        }
        Ok(MsidSemantic { semantic, stream_ids })
    }
}

impl fmt::Display for MsidSemantic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.semantic)?;
        self.stream_ids.iter().try_for_each(|id| write!(f, " {id}"))
    }
}
