//! `a=simulcast` (RFC 8853 §5.1): the simulcast streams a media section
//! sends and receives, each a list of alternative RIDs.

use std::fmt;
use std::str::FromStr;

use crate::attribute::TypedAttribute;
use crate::error::ValueError;
use crate::grammar::Fields;
use crate::rid::{is_rid_id, RidDirection};

/// One RID of a simulcast stream's alternatives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SimulcastRid {
    /// An `a=rid` id of the same section.
    pub rid: String,
    /// Written `~<rid>`: the stream starts paused (RFC 8853 §5.1).
    pub paused: bool,
}

impl SimulcastRid {
    pub fn new(rid: impl Into<String>) -> Self {
        SimulcastRid {
            rid: rid.into(),
            paused: false,
        }
    }
}

/// `a=simulcast:send <streams> recv <streams>` (either part may be absent,
/// not both). Streams are separated by `;`, alternatives of one stream by `,`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Simulcast {
    /// The streams sent, in order of preference; each a non-empty list of
    /// alternative RIDs.
    pub send: Vec<Vec<SimulcastRid>>,
    /// The streams received, likewise.
    pub recv: Vec<Vec<SimulcastRid>>,
}

impl Simulcast {
    /// Sends one stream per RID, without alternatives: what browsers offer.
    pub fn send<S: Into<String>>(rids: impl IntoIterator<Item = S>) -> Self {
        let send = rids.into_iter().map(|rid| vec![SimulcastRid::new(rid)]).collect();
        Simulcast { send, recv: Vec::new() }
    }

    /// Receives one stream per RID, without alternatives.
    pub fn recv<S: Into<String>>(rids: impl IntoIterator<Item = S>) -> Self {
        let recv = rids.into_iter().map(|rid| vec![SimulcastRid::new(rid)]).collect();
        Simulcast { send: Vec::new(), recv }
    }
}

impl TypedAttribute for Simulcast {
    const NAME: &'static str = "simulcast";
}

fn parse_streams(s: &str) -> Result<Vec<Vec<SimulcastRid>>, ValueError> {
    s.split(';')
        .map(|alternatives| {
            alternatives
                .split(',')
                .map(|id| {
                    let (rid, paused) = match id.strip_prefix('~') {
                        Some(rid) => (rid, true),
                        None => (id, false),
                    };
                    if is_rid_id(rid) {
                        Ok(SimulcastRid {
                            rid: rid.to_string(),
                            paused,
                        })
                    } else {
                        Err(ValueError::invalid("simulcast rid", id))
                    }
                })
                .collect()
        })
        .collect()
}

impl FromStr for Simulcast {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let mut fields = Fields::new(s);
        let mut simulcast = Simulcast::default();
        let mut seen = None;
        for _ in 0..2 {
            let Some(direction) = fields.optional() else { break };
            let direction = RidDirection::parse(direction)?;
            if seen == Some(direction) {
                return Err(ValueError::invalid("simulcast direction (repeated)", direction.name()));
            }
            seen = Some(direction);
            let streams = parse_streams(fields.next("simulcast streams")?)?;
            match direction {
                RidDirection::Send => simulcast.send = streams,
                RidDirection::Recv => simulcast.recv = streams,
            }
        }
        if seen.is_none() {
            return Err(ValueError::Missing("simulcast direction"));
        }
        fields.end()?;
        Ok(simulcast)
    }
}

struct Streams<'a>(&'a [Vec<SimulcastRid>]);

impl fmt::Display for Streams<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, alternatives) in self.0.iter().enumerate() {
            f.write_str(if i == 0 { "" } else { ";" })?;
            for (j, rid) in alternatives.iter().enumerate() {
                let separator = if j == 0 { "" } else { "," };
                let pause = if rid.paused { "~" } else { "" };
                write!(f, "{separator}{pause}{}", rid.rid)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Simulcast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.send.is_empty(), self.recv.is_empty()) {
            (false, false) => write!(f, "send {} recv {}", Streams(&self.send), Streams(&self.recv)),
            (false, true) => write!(f, "send {}", Streams(&self.send)),
            (true, false) => write!(f, "recv {}", Streams(&self.recv)),
            (true, true) => Ok(()),
        }
    }
}
