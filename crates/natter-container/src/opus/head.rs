//! The two header packets of an Ogg Opus stream (RFC 7845 §5).

use crate::{Error, Result};

const HEAD_MAGIC: &[u8; 8] = b"OpusHead";
const TAGS_MAGIC: &[u8; 8] = b"OpusTags";
/// RFC 7845 §5.1: the fields up to and including the mapping family.
const HEAD_LEN: usize = 19;
/// RFC 7845 §5.1: the version this crate writes; readers accept any
/// whose upper four bits are 0.
const VERSION: u8 = 1;

/// libopus's encoder delay at 48 kHz (its `OPUS_GET_LOOKAHEAD`: 2.5 ms
/// of CELT look-ahead plus 4 ms of resampler delay), which RFC 7845
/// §5.1 asks the pre-skip to cover.
pub const DEFAULT_PRE_SKIP: u16 = 312;

/// The identification header (RFC 7845 §5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpusHead {
    pub version: u8,
    pub channels: u8,
    /// 48 kHz samples to drop from the start of the decoded output.
    pub pre_skip: u16,
    /// The sample rate of the encoder's input, for information only:
    /// Opus always decodes at 48 kHz or a divisor of it.
    pub input_sample_rate: u32,
    /// Gain to apply to the decoded output, in 1/256 dB (Q7.8).
    pub output_gain: i16,
    /// `None` for mapping family 0: one stream, mono or stereo.
    pub channel_mapping: Option<ChannelMapping>,
}

/// RFC 7845 §5.1.1: how the streams of a multistream packet map to
/// output channels, for mapping families other than 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelMapping {
    pub family: u8,
    pub streams: u8,
    /// The first `coupled_streams` streams are stereo.
    pub coupled_streams: u8,
    /// For each output channel, the decoded channel it takes, or 255
    /// for silence.
    pub mapping: Vec<u8>,
}

fn head_error(reason: &'static str) -> Error {
    Error::OpusHeader {
        header: "OpusHead",
        reason,
    }
}

fn tags_error(reason: &'static str) -> Error {
    Error::OpusHeader {
        header: "OpusTags",
        reason,
    }
}

impl OpusHead {
    /// A mapping family 0 header (RFC 7845 §5.1.1.1): one or two
    /// channels, [`DEFAULT_PRE_SKIP`], no gain.
    pub fn new(channels: u8, input_sample_rate: u32) -> Result<Self> {
        if !(1..=2).contains(&channels) {
            return Err(head_error("mapping family 0 has one or two channels"));
        }
        Ok(OpusHead {
            version: VERSION,
            channels,
            pre_skip: DEFAULT_PRE_SKIP,
            input_sample_rate,
            output_gain: 0,
            channel_mapping: None,
        })
    }

    /// The mapping family: 0 (mono or stereo), 1 (Vorbis order), 255
    /// (unordered) or another.
    pub fn mapping_family(&self) -> u8 {
        self.channel_mapping.as_ref().map_or(0, |m| m.family)
    }

    pub fn parse(packet: &[u8]) -> Result<Self> {
        if !packet.starts_with(HEAD_MAGIC) {
            return Err(head_error("the packet does not start with \"OpusHead\""));
        }
        if packet.len() < HEAD_LEN {
            return Err(head_error("shorter than its 19 fixed bytes"));
        }
        let b = packet;
        let head = OpusHead {
            version: b[8],
            channels: b[9],
            pre_skip: u16::from_le_bytes([b[10], b[11]]),
            input_sample_rate: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
            output_gain: i16::from_le_bytes([b[16], b[17]]),
            channel_mapping: match b[18] {
                0 => None,
                family => Some(ChannelMapping::parse(family, b[9], &b[HEAD_LEN..])?),
            },
        };
        if head.version & 0xf0 != 0 {
            return Err(head_error(
                "the version's upper four bits are not 0, so it is incompatible",
            ));
        }
        if head.channels == 0 {
            return Err(head_error("the channel count is 0"));
        }
        if head.channel_mapping.is_none() && head.channels > 2 {
            return Err(head_error("mapping family 0 has one or two channels"));
        }
        Ok(head)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEAD_LEN);
        b.extend_from_slice(HEAD_MAGIC);
        b.extend_from_slice(&[self.version, self.channels]);
        b.extend_from_slice(&self.pre_skip.to_le_bytes());
        b.extend_from_slice(&self.input_sample_rate.to_le_bytes());
        b.extend_from_slice(&self.output_gain.to_le_bytes());
        b.push(self.mapping_family());
        if let Some(m) = &self.channel_mapping {
            b.extend_from_slice(&[m.streams, m.coupled_streams]);
            b.extend_from_slice(&m.mapping);
        }
        b
    }
}

impl ChannelMapping {
    /// RFC 7845 §5.1.1: stream count, coupled count, one byte per channel.
    fn parse(family: u8, channels: u8, table: &[u8]) -> Result<Self> {
        let [streams, coupled_streams, rest @ ..] = table else {
            return Err(head_error("the channel mapping table is missing"));
        };
        let mapping = rest
            .get(..usize::from(channels))
            .ok_or(head_error("the channel mapping is shorter than the channel count"))?;
        if *streams == 0 || coupled_streams > streams {
            return Err(head_error("no streams, or more coupled streams than streams"));
        }
        let decoded = usize::from(*streams) + usize::from(*coupled_streams);
        if mapping.iter().any(|&c| c != 255 && usize::from(c) >= decoded) {
            return Err(head_error("a channel maps to a decoded channel that does not exist"));
        }
        Ok(ChannelMapping {
            family,
            streams: *streams,
            coupled_streams: *coupled_streams,
            mapping: mapping.to_vec(),
        })
    }
}

/// The comment header (RFC 7845 §5.2), with the vendor string and
/// user comments (`NAME=value`) of Vorbis comments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpusTags {
    pub vendor: String,
    pub comments: Vec<String>,
}

impl OpusTags {
    /// Parses the header; anything after the last comment (RFC 7845
    /// §5.2 allows binary data there) is ignored.
    pub fn parse(packet: &[u8]) -> Result<Self> {
        let mut rest = packet
            .strip_prefix(TAGS_MAGIC)
            .ok_or(tags_error("the packet does not start with \"OpusTags\""))?;
        let vendor = take_string(&mut rest)?;
        let count = take_u32(&mut rest)?;
        // Grows with what the packet holds, not with the count it claims.
        let comments = (0..count).map(|_| take_string(&mut rest)).collect::<Result<_>>()?;
        Ok(OpusTags { vendor, comments })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = TAGS_MAGIC.to_vec();
        put_string(&mut b, &self.vendor);
        b.extend_from_slice(&(self.comments.len() as u32).to_le_bytes());
        for comment in &self.comments {
            put_string(&mut b, comment);
        }
        b
    }
}

fn put_string(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u32).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
}

fn take_u32(rest: &mut &[u8]) -> Result<u32> {
    let Some((n, tail)) = rest.split_first_chunk::<4>() else {
        return Err(tags_error("a length field runs past the packet"));
    };
    *rest = tail;
    Ok(u32::from_le_bytes(*n))
}

fn take_string(rest: &mut &[u8]) -> Result<String> {
    let len = take_u32(rest)? as usize;
    let Some((s, tail)) = rest.split_at_checked(len) else {
        return Err(tags_error("a string runs past the packet"));
    };
    *rest = tail;
    String::from_utf8(s.to_vec()).map_err(|_| tags_error("a string is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What FFmpeg 5.1 wrote for mono libopus.
    const FFMPEG_HEAD: &[u8] = b"OpusHead\x01\x01\x38\x01\x80\xbb\0\0\0\0\0";

    fn reason(err: Error) -> &'static str {
        match err {
            Error::OpusHeader { reason, .. } => reason,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn head_layout() {
        let head = OpusHead::parse(FFMPEG_HEAD).unwrap();
        assert_eq!(head, OpusHead::new(1, 48_000).unwrap());
        assert_eq!(head.encode(), FFMPEG_HEAD);
        assert_eq!(head.mapping_family(), 0);
    }

    #[test]
    fn channel_mapping_family_1() {
        // 5.1 surround: 4 streams, 2 of them coupled (RFC 7845 §5.1.1.2).
        let mut b = FFMPEG_HEAD.to_vec();
        b[9] = 6;
        b[18] = 1;
        b.extend_from_slice(&[4, 2, 0, 4, 1, 2, 3, 5]);
        let head = OpusHead::parse(&b).unwrap();
        let mapping = head.channel_mapping.as_ref().unwrap();
        assert_eq!((mapping.family, mapping.streams, mapping.coupled_streams), (1, 4, 2));
        assert_eq!(mapping.mapping, [0, 4, 1, 2, 3, 5]);
        assert_eq!(head.encode(), b);

        b[25] = 6;
        assert!(reason(OpusHead::parse(&b).unwrap_err()).contains("does not exist"));
        assert!(reason(OpusHead::parse(&b[..24]).unwrap_err()).contains("shorter"));
        assert!(reason(OpusHead::parse(&b[..19]).unwrap_err()).contains("missing"));
    }

    #[test]
    fn head_errors() {
        let with = |at: usize, v: u8| {
            let mut b = FFMPEG_HEAD.to_vec();
            b[at] = v;
            reason(OpusHead::parse(&b).unwrap_err())
        };
        assert!(with(0, b'o').contains("OpusHead"));
        assert!(with(8, 0x10).contains("version"));
        assert!(with(9, 0).contains("count is 0"));
        assert!(with(9, 3).contains("one or two"));
        assert!(reason(OpusHead::parse(&FFMPEG_HEAD[..18]).unwrap_err()).contains("19"));
        assert!(reason(OpusHead::new(3, 48_000).unwrap_err()).contains("one or two"));
        // A later minor version is compatible.
        let mut minor = FFMPEG_HEAD.to_vec();
        minor[8] = 15;
        assert_eq!(OpusHead::parse(&minor).unwrap().version, 15);
    }

    #[test]
    fn tags() {
        let tags = OpusTags {
            vendor: "Lavf59.27.100".into(),
            comments: vec!["encoder=Lavc59.37.100 libopus".into()],
        };
        let mut b = tags.encode();
        assert_eq!(&b[..12], b"OpusTags\x0d\0\0\0");
        assert_eq!(OpusTags::parse(&b).unwrap(), tags);
        b.push(1);
        assert_eq!(OpusTags::parse(&b).unwrap(), tags, "binary data after the comments");

        let mut claims_many = b"OpusTags\0\0\0\0".to_vec();
        claims_many.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(reason(OpusTags::parse(&claims_many).unwrap_err()).contains("length field"));
        assert!(reason(OpusTags::parse(b"OpusTags\x05\0\0\0abc").unwrap_err()).contains("string runs past"));
        assert!(reason(OpusTags::parse(b"OpusTags\x01\0\0\0\xff\0\0\0\0").unwrap_err()).contains("UTF-8"));
        assert!(reason(OpusTags::parse(b"OpusHead").unwrap_err()).contains("OpusTags"));
    }
}
