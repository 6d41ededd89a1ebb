//! RTP header extensions (RFC 8285): the one-byte and two-byte element
//! forms, and typed values for the extensions browsers negotiate.
//!
//! Which local id carries which extension is negotiated in SDP
//! (`a=extmap:<id> <uri>`); the URIs are the constants below. Each value
//! type implements [`ExtensionValue`]: it parses from an element's bytes
//! and encodes through [`crate::RtpWriter::add`].

use std::time::Duration;

use crate::error::Error;
use crate::wire::{put_u16, put_u24, u16_at, u24_at};

/// RFC 8285 §4.2: "defined by profile" value of the one-byte form.
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// RFC 8285 §4.3: the two-byte form is 0x100 followed by 4 "appbits".
pub const TWO_BYTE_PROFILE_BASE: u16 = 0x1000;
/// RFC 8285 §4.2: one-byte ids are 1..=14; 15 stops parsing.
pub const ONE_BYTE_MAX_ID: u8 = 14;
/// RFC 8285 §4.2: a one-byte element carries 1 to 16 bytes.
pub const ONE_BYTE_MAX_LEN: usize = 16;
/// RFC 8285 §4.3: a two-byte element carries 0 to 255 bytes.
pub const TWO_BYTE_MAX_LEN: usize = 255;

/// RFC 8843 §15.1: the BUNDLE media identification.
pub const URI_MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// RFC 8852 §3.1: the RTP stream id of a simulcast layer.
pub const URI_RTP_STREAM_ID: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
/// RFC 8852 §3.2: the RTP stream id a repair stream repairs.
pub const URI_REPAIRED_RTP_STREAM_ID: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";
/// webrtc.org abs-send-time.
pub const URI_ABS_SEND_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
/// draft-holmer-rmcat-transport-wide-cc-extensions-01 §2.
pub const URI_TRANSPORT_WIDE_CC: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
/// RFC 6464 §4.
pub const URI_SSRC_AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// 3GPP TS 26.114 §7.4.5: coordination of video orientation (CVO).
pub const URI_VIDEO_ORIENTATION: &str = "urn:3gpp:video-orientation";
/// webrtc.org playout-delay.
pub const URI_PLAYOUT_DELAY: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";

/// RFC 8285 §4: how the elements of an extension block are framed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ExtensionForm {
    /// §4.2: profile 0xBEDE, 4-bit id and 4-bit length.
    OneByte,
    /// §4.3: profile 0x100 + appbits, 8-bit id and 8-bit length.
    TwoByte {
        /// The low 4 bits of the profile field, application-defined.
        appbits: u8,
    },
}

impl ExtensionForm {
    /// The "defined by profile" field announcing this form.
    pub fn profile(self) -> u16 {
        match self {
            ExtensionForm::OneByte => ONE_BYTE_PROFILE,
            ExtensionForm::TwoByte { appbits } => TWO_BYTE_PROFILE_BASE | u16::from(appbits & 0x0F),
        }
    }

    /// The form a profile field announces, if it is an RFC 8285 one.
    pub fn from_profile(profile: u16) -> Option<Self> {
        match profile {
            ONE_BYTE_PROFILE => Some(ExtensionForm::OneByte),
            p if p & 0xFFF0 == TWO_BYTE_PROFILE_BASE => Some(ExtensionForm::TwoByte {
                appbits: (p & 0x0F) as u8,
            }),
            _ => None,
        }
    }

    /// Whether an element of this id and length can be written in this form.
    pub fn fits(self, id: u8, len: usize) -> bool {
        match self {
            ExtensionForm::OneByte => (1..=ONE_BYTE_MAX_ID).contains(&id) && (1..=ONE_BYTE_MAX_LEN).contains(&len),
            ExtensionForm::TwoByte { .. } => id >= 1 && len <= TWO_BYTE_MAX_LEN,
        }
    }

    /// Bytes an element header takes.
    pub fn element_header_len(self) -> usize {
        match self {
            ExtensionForm::OneByte => 1,
            ExtensionForm::TwoByte { .. } => 2,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            ExtensionForm::OneByte => "one-byte",
            ExtensionForm::TwoByte { .. } => "two-byte",
        }
    }
}

/// RFC 3550 §5.3.1: the header extension of a packet, borrowed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ExtensionBlock<'a> {
    /// The 16-bit "defined by profile" field.
    pub profile: u16,
    /// The extension data, without the 4-byte extension header.
    pub data: &'a [u8],
}

impl<'a> ExtensionBlock<'a> {
    /// The RFC 8285 form, or `None` for another profile's extension.
    pub fn form(&self) -> Option<ExtensionForm> {
        ExtensionForm::from_profile(self.profile)
    }

    /// The elements, skipping padding; empty for non-RFC 8285 profiles.
    pub fn elements(&self) -> Extensions<'a> {
        Extensions {
            form: self.form(),
            data: self.data,
            pos: 0,
        }
    }

    /// Checks every element's length against the block.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let mut it = self.elements();
        while let Some(e) = it.next_element() {
            e?;
        }
        Ok(())
    }
}

/// One header extension element: a local id and its value bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Extension<'a> {
    /// The local id negotiated with `a=extmap`.
    pub id: u8,
    pub value: &'a [u8],
}

impl<'a> Extension<'a> {
    /// Parses the value as a typed extension.
    pub fn parse<E: ExtensionValue<'a>>(&self) -> Result<E, Error> {
        E::parse(self.value)
    }
}

/// Iterator over the elements of an RFC 8285 extension block.
///
/// A packet's block was validated when it was parsed, so iteration
/// simply stops at the block's end (or at a one-byte id 15, which
/// RFC 8285 §4.2 says ends processing).
#[derive(Clone, Debug)]
pub struct Extensions<'a> {
    form: Option<ExtensionForm>,
    data: &'a [u8],
    pos: usize,
}

impl<'a> Extensions<'a> {
    pub(crate) fn empty() -> Self {
        Extensions {
            form: None,
            data: &[],
            pos: 0,
        }
    }

    fn next_element(&mut self) -> Option<Result<Extension<'a>, Error>> {
        let form = self.form?;
        let block_len = self.data.len();
        loop {
            let at = self.pos;
            let first = *self.data.get(at)?;
            match form {
                ExtensionForm::OneByte => {
                    let id = first >> 4;
                    if id == 0 {
                        // RFC 8285 §4.2: padding byte.
                        self.pos += 1;
                        continue;
                    }
                    if id == 15 {
                        // RFC 8285 §4.2: id 15 ends the extension.
                        self.pos = block_len;
                        return None;
                    }
                    let len = usize::from(first & 0x0F) + 1;
                    return Some(self.take(id, at, 1, len));
                }
                ExtensionForm::TwoByte { .. } => {
                    if first == 0 {
                        // RFC 8285 §4.3: padding byte.
                        self.pos += 1;
                        continue;
                    }
                    let Some(&len) = self.data.get(at + 1) else {
                        self.pos = block_len;
                        return Some(Err(Error::ExtensionElementOverrun {
                            id: first,
                            offset: at,
                            len: 0,
                            block_len,
                        }));
                    };
                    return Some(self.take(first, at, 2, usize::from(len)));
                }
            }
        }
    }

    fn take(&mut self, id: u8, at: usize, header: usize, len: usize) -> Result<Extension<'a>, Error> {
        let block_len = self.data.len();
        match self.data.get(at + header..at + header + len) {
            Some(value) => {
                self.pos = at + header + len;
                Ok(Extension { id, value })
            }
            None => {
                self.pos = block_len;
                Err(Error::ExtensionElementOverrun {
                    id,
                    offset: at,
                    len,
                    block_len,
                })
            }
        }
    }
}

impl<'a> Iterator for Extensions<'a> {
    type Item = Extension<'a>;

    fn next(&mut self) -> Option<Extension<'a>> {
        self.next_element()?.ok()
    }
}

/// A typed header extension value: parsed from an element's bytes
/// without copying, encoded into a caller's buffer.
pub trait ExtensionValue<'a>: Sized {
    /// The URI negotiated in SDP (`a=extmap:<id> <URI>`).
    const URI: &'static str;
    /// Parses an element's value.
    fn parse(value: &'a [u8]) -> Result<Self, Error>;
    /// Bytes [`ExtensionValue::encode`] writes.
    fn encoded_len(&self) -> usize;
    /// Writes the value into `out`, which is exactly `encoded_len()` long.
    fn encode(&self, out: &mut [u8]);
}

fn invalid(extension: &'static str, reason: &'static str) -> Error {
    Error::InvalidExtensionValue { extension, reason }
}

fn sdes_text<'a>(extension: &'static str, value: &'a [u8]) -> Result<&'a str, Error> {
    if value.is_empty() {
        return Err(invalid(extension, "empty identifier"));
    }
    std::str::from_utf8(value).map_err(|_| invalid(extension, "identifier is not UTF-8"))
}

macro_rules! sdes_extension {
    ($(#[$doc:meta])* $name:ident, $uri:expr, $label:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub struct $name<'a>(pub &'a str);

        impl<'a> ExtensionValue<'a> for $name<'a> {
            const URI: &'static str = $uri;

            fn parse(value: &'a [u8]) -> Result<Self, Error> {
                sdes_text($label, value).map($name)
            }

            fn encoded_len(&self) -> usize {
                self.0.len()
            }

            fn encode(&self, out: &mut [u8]) {
                out.copy_from_slice(self.0.as_bytes());
            }
        }
    };
}

sdes_extension!(
    /// RFC 8843 §15.1 (RFC 7941 SDES item in a header extension): the
    /// media id that routes a BUNDLEd packet to its m-section.
    Mid,
    URI_MID,
    "sdes:mid"
);
sdes_extension!(
    /// RFC 8852 §3.1: `RtpStreamId`, the rid of a simulcast encoding.
    RtpStreamId,
    URI_RTP_STREAM_ID,
    "sdes:rtp-stream-id"
);
sdes_extension!(
    /// RFC 8852 §3.2: `RepairedRtpStreamId`, the rid an RTX or FEC
    /// stream repairs.
    RepairedRtpStreamId,
    URI_REPAIRED_RTP_STREAM_ID,
    "sdes:repaired-rtp-stream-id"
);

/// abs-send-time: the sender's send time, 24-bit 6.18 fixed-point
/// seconds (wrapping every 64 s), the middle bits of an NTP timestamp.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct AbsSendTime(u32);

impl AbsSendTime {
    /// The largest raw value, 2^24 - 1.
    pub const MAX: u32 = 0x00FF_FFFF;

    /// From the raw 24-bit value; the top 8 bits are dropped.
    pub fn from_raw(raw: u32) -> Self {
        AbsSendTime(raw & Self::MAX)
    }

    pub fn raw(self) -> u32 {
        self.0
    }

    /// From a 64-bit NTP timestamp (32.32): its bits 14..38.
    pub fn from_ntp(ntp: u64) -> Self {
        AbsSendTime::from_raw((ntp >> 14) as u32)
    }

    /// From a time on any clock; only its value modulo 64 s is kept.
    pub fn from_duration(d: Duration) -> Self {
        let secs = d.as_secs() & 0x3F;
        // 18 fractional bits, rounded to the nearest 2^-18 s.
        let frac = ((u64::from(d.subsec_nanos()) << 18) + 500_000_000) / 1_000_000_000;
        AbsSendTime::from_raw(((secs << 18) + frac) as u32)
    }

    /// The value as a time in [0, 64) s.
    pub fn to_duration(self) -> Duration {
        let secs = u64::from(self.0 >> 18);
        let frac = u64::from(self.0 & 0x3FFFF);
        Duration::from_secs(secs) + Duration::from_nanos((frac * 1_000_000_000) >> 18)
    }
}

impl<'a> ExtensionValue<'a> for AbsSendTime {
    const URI: &'static str = URI_ABS_SEND_TIME;

    fn parse(value: &'a [u8]) -> Result<Self, Error> {
        if value.len() != 3 {
            return Err(invalid("abs-send-time", "value is not 3 bytes"));
        }
        Ok(AbsSendTime(u24_at(value, 0)))
    }

    fn encoded_len(&self) -> usize {
        3
    }

    fn encode(&self, out: &mut [u8]) {
        put_u24(out, 0, self.0);
    }
}

/// draft-holmer-rmcat-transport-wide-cc-extensions-01 §2: the 16-bit
/// transport-wide sequence number, shared by every stream of a transport.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct TransportSequenceNumber(pub u16);

impl<'a> ExtensionValue<'a> for TransportSequenceNumber {
    const URI: &'static str = URI_TRANSPORT_WIDE_CC;

    fn parse(value: &'a [u8]) -> Result<Self, Error> {
        // transport-wide-cc-02 appends two more bytes; the number leads both.
        if value.len() != 2 && value.len() != 4 {
            return Err(invalid("transport-wide-cc", "value is not 2 (or 4) bytes"));
        }
        Ok(TransportSequenceNumber(u16_at(value, 0)))
    }

    fn encoded_len(&self) -> usize {
        2
    }

    fn encode(&self, out: &mut [u8]) {
        put_u16(out, 0, self.0);
    }
}

/// RFC 6464 §3: client-to-mixer audio level: the V flag and the level
/// in -dBov, 0 (loudest) to 127 (silence).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct AudioLevel {
    /// V: the sender's voice activity detection says this is speech.
    pub voice_activity: bool,
    /// Level in -dBov, 0..=127; larger values are dropped to 7 bits.
    pub level: u8,
}

impl<'a> ExtensionValue<'a> for AudioLevel {
    const URI: &'static str = URI_SSRC_AUDIO_LEVEL;

    fn parse(value: &'a [u8]) -> Result<Self, Error> {
        // RFC 6464 §3: the two-byte form may pad the one byte with zeros.
        let Some(&b) = value.first() else {
            return Err(invalid("ssrc-audio-level", "value is empty"));
        };
        Ok(AudioLevel {
            voice_activity: b & 0x80 != 0,
            level: b & 0x7F,
        })
    }

    fn encoded_len(&self) -> usize {
        1
    }

    fn encode(&self, out: &mut [u8]) {
        out[0] = (u8::from(self.voice_activity) << 7) | (self.level & 0x7F);
    }
}

/// 3GPP TS 26.114 §7.4.5: the rotation the receiver applies before
/// display, counter-clockwise.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum Rotation {
    #[default]
    Deg0,
    Deg90,
    Deg180,
    Deg270,
}

impl Rotation {
    pub fn degrees(self) -> u16 {
        match self {
            Rotation::Deg0 => 0,
            Rotation::Deg90 => 90,
            Rotation::Deg180 => 180,
            Rotation::Deg270 => 270,
        }
    }

    fn from_bits(b: u8) -> Self {
        match b & 3 {
            0 => Rotation::Deg0,
            1 => Rotation::Deg90,
            2 => Rotation::Deg180,
            _ => Rotation::Deg270,
        }
    }

    fn bits(self) -> u8 {
        (self.degrees() / 90) as u8
    }
}

/// 3GPP TS 26.114 §7.4.5 coordination of video orientation: one byte
/// `0 0 0 0 C F R1 R0`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct VideoOrientation {
    /// C: the back-facing camera (true) or the front one.
    pub back_camera: bool,
    /// F: flip horizontally before rotating.
    pub flip: bool,
    /// R1 R0.
    pub rotation: Rotation,
}

impl<'a> ExtensionValue<'a> for VideoOrientation {
    const URI: &'static str = URI_VIDEO_ORIENTATION;

    fn parse(value: &'a [u8]) -> Result<Self, Error> {
        let Some(&b) = value.first() else {
            return Err(invalid("video-orientation", "value is empty"));
        };
        Ok(VideoOrientation {
            back_camera: b & 0x08 != 0,
            flip: b & 0x04 != 0,
            rotation: Rotation::from_bits(b),
        })
    }

    fn encoded_len(&self) -> usize {
        1
    }

    fn encode(&self, out: &mut [u8]) {
        out[0] = (u8::from(self.back_camera) << 3) | (u8::from(self.flip) << 2) | self.rotation.bits();
    }
}

/// playout-delay: the minimum and maximum delay the receiver should
/// apply, each 12 bits in units of 10 ms (0 to 40.95 s).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct PlayoutDelay {
    /// Minimum delay in 10 ms units, 0..=4095.
    pub min: u16,
    /// Maximum delay in 10 ms units, 0..=4095.
    pub max: u16,
}

impl PlayoutDelay {
    /// The largest value either field holds.
    pub const MAX_UNITS: u16 = 0x0FFF;
    /// Each unit is 10 ms.
    pub const UNIT: Duration = Duration::from_millis(10);

    pub fn min_delay(self) -> Duration {
        Self::UNIT * u32::from(self.min)
    }

    pub fn max_delay(self) -> Duration {
        Self::UNIT * u32::from(self.max)
    }
}

impl<'a> ExtensionValue<'a> for PlayoutDelay {
    const URI: &'static str = URI_PLAYOUT_DELAY;

    fn parse(value: &'a [u8]) -> Result<Self, Error> {
        if value.len() != 3 {
            return Err(invalid("playout-delay", "value is not 3 bytes"));
        }
        let v = u24_at(value, 0);
        Ok(PlayoutDelay {
            min: (v >> 12) as u16,
            max: (v & 0xFFF) as u16,
        })
    }

    fn encoded_len(&self) -> usize {
        3
    }

    fn encode(&self, out: &mut [u8]) {
        let v = (u32::from(self.min & Self::MAX_UNITS) << 12) | u32::from(self.max & Self::MAX_UNITS);
        put_u24(out, 0, v);
    }
}
