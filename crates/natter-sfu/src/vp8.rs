//! VP8 payload descriptor continuity across layer switches (RFC 7741
//! §4.2): each simulcast layer numbers its pictures (PictureID) and its
//! base-layer frames (TL0PICIDX) on its own, and a receiver that sees
//! them jump at a switch takes frames as lost. Like the sequence number
//! (see [`crate::rewrite`]), both go on from the last value sent plus
//! one at a switch, and keep the layer's own steps after it.
//!
//! The descriptor is rewritten in place: the fields keep their widths,
//! so the payload keeps its length. A 7-bit PictureID is continued
//! modulo 128.
//!
//! [`keyframe_size`] reads a layer's frame size from the first packet
//! of its keyframes (RFC 6386 §9.1), which the layer selector compares
//! with the subscriber's tile.

use natter_rtp::payload::{PayloadError, Vp8Descriptor, Vp8PictureId};

use crate::sent::Vp8Picture;

/// RFC 7741 §4.2: the 15-bit PictureID space (M = 1).
const PICTURE_ID_MASK: u16 = 0x7FFF;

/// RFC 6386 §9.1: a keyframe's start code, after the 3-byte frame tag.
const START_CODE: [u8; 3] = [0x9D, 0x01, 0x2A];

/// RFC 6386 §9.1: frame tag (3), start code (3), width (2), height (2).
const KEYFRAME_HEADER_LEN: usize = 10;

/// RFC 6386 §9.1: width and height are 14 bits; the top 2 are scaling.
const DIMENSION_MASK: u16 = 0x3FFF;

/// The size of the frames a keyframe starts, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSize {
    pub width: u16,
    pub height: u16,
}

/// The frame size carried by `payload` (a whole RTP payload: descriptor,
/// then VP8 data) when it is the first packet of a keyframe: the
/// descriptor's S = 1 and PID = 0 (RFC 7741 §4.2), the frame tag's P bit
/// 0 (RFC 6386 §9.1, RFC 7741 §4.3). `None` for any other packet. The
/// scaling bits are the decoder's upscaling hint; the size returned is
/// the encoded one. Only the first packet is read, not the whole frame
/// (natter-rtp's `Vp8FrameHeader::parse` wants the first partition).
pub fn keyframe_size(payload: &[u8]) -> Result<Option<FrameSize>, PayloadError> {
    let (descriptor, data) = Vp8Descriptor::parse(payload)?;
    let starts_frame = descriptor.start_of_partition && descriptor.partition_index == 0;
    if !starts_frame || data.first().is_none_or(|tag| tag & 1 != 0) {
        return Ok(None);
    }
    let Some(header) = data.get(..KEYFRAME_HEADER_LEN) else {
        return Err(PayloadError::Vp8FrameTooShort {
            len: data.len(),
            needed: KEYFRAME_HEADER_LEN,
        });
    };
    if header[3..6] != START_CODE {
        return Err(PayloadError::Vp8StartCode([header[3], header[4], header[5]]));
    }
    Ok(Some(FrameSize {
        width: u16::from_le_bytes([header[6], header[7]]) & DIMENSION_MASK,
        height: u16::from_le_bytes([header[8], header[9]]) & DIMENSION_MASK,
    }))
}

/// Why a payload was not rewritten.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Vp8RewriteError {
    /// The payload's descriptor did not parse or re-encode.
    #[error("VP8 payload descriptor: {0}")]
    Descriptor(#[from] PayloadError),
    /// Packets were rewritten before any switch.
    #[error("VP8 payload rewritten before any layer was switched to")]
    NoLayer,
    /// The re-encoded descriptor would change the payload's length.
    #[error("VP8 descriptor of {was} bytes would become {now}")]
    LengthChanged { was: usize, now: usize },
}

/// The offsets of the layer being forwarded.
#[derive(Clone, Copy, Debug, Default)]
struct Offsets {
    picture_id: u16,
    tl0_pic_idx: u8,
}

/// Rewrites the VP8 descriptors of one subscriber's forwarded stream.
///
/// - Getters: [`Vp8Rewriter::last_picture_id`], [`Vp8Rewriter::last_tl0_pic_idx`].
/// - Input: [`Vp8Rewriter::rewrite`] with each forwarded payload, `switch`
///   set on the first packet of a newly forwarded layer.
#[derive(Clone, Debug, Default)]
pub struct Vp8Rewriter {
    current: Option<Offsets>,
    /// The highest PictureID (15-bit) and TL0PICIDX sent.
    last_picture_id: Option<u16>,
    last_tl0_pic_idx: Option<u8>,
}

impl Vp8Rewriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The highest PictureID sent, in the 15-bit space.
    pub fn last_picture_id(&self) -> Option<u16> {
        self.last_picture_id
    }

    /// The highest TL0PICIDX sent.
    pub fn last_tl0_pic_idx(&self) -> Option<u8> {
        self.last_tl0_pic_idx
    }

    /// Rewrites the descriptor at the start of `payload` in place;
    /// returns the fields it now carries, for [`restore`] on a resend.
    pub fn rewrite(&mut self, payload: &mut [u8], switch: bool) -> Result<Vp8Picture, Vp8RewriteError> {
        let (mut descriptor, rest) = Vp8Descriptor::parse(payload)?;
        let was = payload.len() - rest.len();
        let picture = &mut descriptor.picture;
        if switch {
            let picture_id = match (picture.picture_id, self.last_picture_id) {
                (Some(id), Some(last)) => last.wrapping_add(1).wrapping_sub(value(id)) & PICTURE_ID_MASK,
                _ => 0,
            };
            let tl0_pic_idx = match (picture.tl0_pic_idx, self.last_tl0_pic_idx) {
                (Some(index), Some(last)) => last.wrapping_add(1).wrapping_sub(index),
                _ => 0,
            };
            self.current = Some(Offsets {
                picture_id,
                tl0_pic_idx,
            });
        }
        let offsets = self.current.ok_or(Vp8RewriteError::NoLayer)?;
        if let Some(id) = picture.picture_id {
            let out = value(id).wrapping_add(offsets.picture_id) & PICTURE_ID_MASK;
            picture.picture_id = Some(match id {
                Vp8PictureId::Short(_) => Vp8PictureId::Short((out & 0x7F) as u8),
                Vp8PictureId::Long(_) => Vp8PictureId::Long(out),
            });
            // RFC 1982 comparison in the 15-bit space.
            let newer = self
                .last_picture_id
                .is_none_or(|last| (1..0x4000).contains(&(out.wrapping_sub(last) & PICTURE_ID_MASK)));
            if newer || switch {
                self.last_picture_id = Some(out);
            }
        }
        if let Some(index) = picture.tl0_pic_idx {
            let out = index.wrapping_add(offsets.tl0_pic_idx);
            picture.tl0_pic_idx = Some(out);
            let newer = self
                .last_tl0_pic_idx
                .is_none_or(|last| (out.wrapping_sub(last) as i8) > 0);
            if newer || switch {
                self.last_tl0_pic_idx = Some(out);
            }
        }
        let now = descriptor.encoded_len();
        if now != was {
            return Err(Vp8RewriteError::LengthChanged { was, now });
        }
        descriptor.encode(&mut payload[..now])?;
        Ok(Vp8Picture {
            picture_id: descriptor.picture.picture_id.map(value),
            tl0_pic_idx: descriptor.picture.tl0_pic_idx,
        })
    }
}

/// Writes `picture`'s fields into the descriptor at the start of
/// `payload` (a cached copy of a packet sent before), so a resend
/// carries what the original did. Fields the descriptor lacks stay
/// absent; widths are kept.
pub fn restore(payload: &mut [u8], picture: Vp8Picture) -> Result<(), Vp8RewriteError> {
    let (mut descriptor, rest) = Vp8Descriptor::parse(payload)?;
    let was = payload.len() - rest.len();
    let fields = &mut descriptor.picture;
    if let (Some(id), Some(out)) = (fields.picture_id, picture.picture_id) {
        fields.picture_id = Some(match id {
            Vp8PictureId::Short(_) => Vp8PictureId::Short((out & 0x7F) as u8),
            Vp8PictureId::Long(_) => Vp8PictureId::Long(out & PICTURE_ID_MASK),
        });
    }
    if let (Some(_), Some(out)) = (fields.tl0_pic_idx, picture.tl0_pic_idx) {
        fields.tl0_pic_idx = Some(out);
    }
    let now = descriptor.encoded_len();
    if now != was {
        return Err(Vp8RewriteError::LengthChanged { was, now });
    }
    descriptor.encode(&mut payload[..now])?;
    Ok(())
}

fn value(id: Vp8PictureId) -> u16 {
    match id {
        Vp8PictureId::Short(v) => u16::from(v),
        Vp8PictureId::Long(v) => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_rtp::payload::Vp8PictureInfo;

    /// A payload: a descriptor with a 15-bit PictureID and TL0PICIDX,
    /// then two bytes of VP8 data.
    fn payload(picture_id: u16, tl0_pic_idx: u8, start: bool) -> Vec<u8> {
        let descriptor = Vp8Descriptor {
            picture: Vp8PictureInfo {
                picture_id: Some(Vp8PictureId::Long(picture_id)),
                tl0_pic_idx: Some(tl0_pic_idx),
                ..Default::default()
            },
            start_of_partition: start,
            partition_index: 0,
        };
        let mut out = vec![0; descriptor.encoded_len() + 2];
        descriptor.encode(&mut out).unwrap();
        out
    }

    fn fields(payload: &[u8]) -> (u16, u8) {
        let (descriptor, rest) = Vp8Descriptor::parse(payload).unwrap();
        assert_eq!(rest.len(), 2);
        (
            value(descriptor.picture.picture_id.unwrap()),
            descriptor.picture.tl0_pic_idx.unwrap(),
        )
    }

    #[test]
    fn picture_id_and_tl0_pic_idx_continue_across_a_switch() {
        let mut rewriter = Vp8Rewriter::new();
        let mut first = payload(100, 7, true);
        rewriter.rewrite(&mut first, true).unwrap();
        assert_eq!(fields(&first), (100, 7));
        let mut next = payload(101, 8, true);
        rewriter.rewrite(&mut next, false).unwrap();
        assert_eq!(fields(&next), (101, 8));
        // The other layer, numbered near the end of both spaces.
        let mut switched = payload(32_767, 255, true);
        rewriter.rewrite(&mut switched, true).unwrap();
        assert_eq!(fields(&switched), (102, 9));
        // Its next picture, wrapping in its own space.
        let mut after = payload(0, 0, true);
        rewriter.rewrite(&mut after, false).unwrap();
        assert_eq!(fields(&after), (103, 10));
        // A late packet of the switch picture keeps its numbers.
        let mut late = payload(32_767, 255, false);
        rewriter.rewrite(&mut late, false).unwrap();
        assert_eq!(fields(&late), (102, 9));
        assert_eq!(rewriter.last_picture_id(), Some(103));
        assert_eq!(rewriter.last_tl0_pic_idx(), Some(10));
    }

    #[test]
    fn a_resend_gets_the_fields_the_original_went_out_with() {
        let mut rewriter = Vp8Rewriter::new();
        rewriter.rewrite(&mut payload(500, 3, true), true).unwrap();
        let mut original = payload(501, 4, true);
        let sent = rewriter.rewrite(&mut original, false).unwrap();
        assert_eq!(
            sent,
            Vp8Picture {
                picture_id: Some(501),
                tl0_pic_idx: Some(4)
            }
        );
        rewriter.rewrite(&mut payload(9_000, 200, true), true).unwrap();
        // The cached copy, as received, rewritten for the resend.
        let mut resend = payload(501, 4, true);
        restore(&mut resend, sent).unwrap();
        assert_eq!(resend, original);
        let mut other = payload(7, 7, false);
        restore(
            &mut other,
            Vp8Picture {
                picture_id: Some(0x7FFF),
                tl0_pic_idx: None,
            },
        )
        .unwrap();
        assert_eq!(fields(&other), (0x7FFF, 7));
    }

    #[test]
    fn bad_input_is_an_error() {
        let mut rewriter = Vp8Rewriter::new();
        assert_eq!(
            rewriter.rewrite(&mut payload(1, 1, true), false),
            Err(Vp8RewriteError::NoLayer)
        );
        assert!(matches!(
            rewriter.rewrite(&mut [0x80], true),
            Err(Vp8RewriteError::Descriptor(_))
        ));
    }

    /// A keyframe's first packet: descriptor, then RFC 6386 §9.1's
    /// header (tag with P = 0, start code, sizes with scaling bits).
    pub(crate) fn keyframe_payload(width: u16, height: u16, scale: u16) -> Vec<u8> {
        let mut out = payload(9, 9, true);
        out.truncate(out.len() - 2);
        out.extend_from_slice(&[0x50, 0x2D, 0x01]);
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(&(width | scale << 14).to_le_bytes());
        out.extend_from_slice(&(height | scale << 14).to_le_bytes());
        out.extend_from_slice(&[0; 20]);
        out
    }

    #[test]
    fn a_keyframe_carries_its_size() {
        let size = |width, height| Some(FrameSize { width, height });
        assert_eq!(keyframe_size(&keyframe_payload(160, 90, 0)), Ok(size(160, 90)));
        // The scaling bits are not part of the size.
        assert_eq!(keyframe_size(&keyframe_payload(1280, 720, 3)), Ok(size(1280, 720)));
        assert_eq!(
            keyframe_size(&keyframe_payload(16_383, 16_383, 1)),
            Ok(size(16_383, 16_383))
        );
        // An interframe (P = 1), a later packet (S = 0): no size.
        let mut inter = keyframe_payload(160, 90, 0);
        let at = inter.len() - 30;
        inter[at] |= 1;
        assert_eq!(keyframe_size(&inter), Ok(None));
        let mut later = keyframe_payload(160, 90, 0);
        later[0] &= !0x10;
        assert_eq!(keyframe_size(&later), Ok(None));
    }

    #[test]
    fn a_broken_keyframe_header_is_an_error() {
        let mut code = keyframe_payload(160, 90, 0);
        let at = code.len() - 27;
        code[at] = 0x9C;
        assert_eq!(
            keyframe_size(&code),
            Err(PayloadError::Vp8StartCode([0x9C, 0x01, 0x2A]))
        );
        let short = &keyframe_payload(160, 90, 0)[..9];
        assert!(matches!(
            keyframe_size(short),
            Err(PayloadError::Vp8FrameTooShort { needed: 10, .. })
        ));
        assert!(keyframe_size(&[]).is_err());
    }

    proptest::proptest! {
        /// Any bytes: a size, no size or an error, never a panic.
        #[test]
        fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = keyframe_size(&bytes);
        }

        /// Any 14-bit size and scaling round-trips.
        #[test]
        fn sizes_round_trip(width in 0u16..0x4000, height in 0u16..0x4000, scale in 0u16..4) {
            let got = keyframe_size(&keyframe_payload(width, height, scale));
            proptest::prop_assert_eq!(got, Ok(Some(FrameSize { width, height })));
        }

        /// Random switches between layers numbered anywhere in their
        /// spaces, pictures of two packets each: the outgoing PictureID
        /// and TL0PICIDX go up by one per picture (all base-layer here).
        #[test]
        fn continuity_across_switches(
            layers in proptest::collection::vec((0u16..0x8000, proptest::num::u8::ANY, 1u8..20), 1..30)
        ) {
            let mut rewriter = Vp8Rewriter::new();
            let mut last: Option<(u16, u8)> = None;
            for (picture_id, tl0_pic_idx, pictures) in layers {
                for picture in 0..u16::from(pictures) {
                    let id = picture_id.wrapping_add(picture) & PICTURE_ID_MASK;
                    let index = tl0_pic_idx.wrapping_add(picture as u8);
                    let mut first = payload(id, index, true);
                    rewriter.rewrite(&mut first, picture == 0).unwrap();
                    let mut second = payload(id, index, false);
                    rewriter.rewrite(&mut second, false).unwrap();
                    let out = fields(&first);
                    proptest::prop_assert_eq!(fields(&second), out);
                    if let Some((last_id, last_index)) = last {
                        proptest::prop_assert_eq!(out.0, last_id.wrapping_add(1) & PICTURE_ID_MASK);
                        proptest::prop_assert_eq!(out.1, last_index.wrapping_add(1));
                    }
                    last = Some(out);
                }
            }
        }
    }
}
