//! H.264 Annex B byte streams (ITU-T H.264 Annex B: NAL units behind
//! `00 00 01` start codes) split into access units (H.264 §7.4.1.2.3),
//! as `ffmpeg -c:v libx264 -f h264` writes them. A file is untrusted
//! input: every malformed stream is an [`AnnexBError`], never a panic.
//!
//! Each access unit comes out as natter's H.264 payloader takes it (RFC
//! 6184 §5.6 and §5.7.1, packetization mode 1): its NAL units, each
//! behind a 4-byte start code. An IDR access unit that lacks the
//! sequence and picture parameter sets gets the latest ones in front, so
//! a decoder can start at any IDR; access units before the first IDR
//! are dropped, so a stream (and each loop of it) starts at a keyframe.

/// The largest NAL unit we take: a 4K IDR picture of a high-quality
/// encode is a few MiB; more is not a video we can send in real time.
pub const MAX_NAL_BYTES: usize = 8 << 20;

/// H.264 Table 7-1 `nal_unit_type`s this reader acts on.
const NAL_SLICE: u8 = 1;
const NAL_IDR: u8 = 5;
const NAL_SEI: u8 = 6;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;

/// Why a byte stream is not H.264 we can send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnexBError {
    #[error("no start code (00 00 01) at the start of the stream")]
    NoStartCode,
    #[error("NAL unit at byte {offset} is empty (a start code with nothing behind it)")]
    EmptyNal { offset: usize },
    #[error("NAL unit at byte {offset} has its forbidden_zero_bit set (H.264 §7.4.1)")]
    ForbiddenBit { offset: usize },
    #[error("slice NAL unit at byte {offset} ends after its header (truncated)")]
    TruncatedSlice { offset: usize },
    #[error("NAL unit at byte {offset} is {len} bytes, over the {max} byte limit")]
    HugeNal { offset: usize, len: usize, max: usize },
    #[error("the IDR picture at byte {offset} comes before any SPS and PPS")]
    MissingParameterSets { offset: usize },
    #[error("no IDR picture (keyframe) in the stream")]
    NoKeyframe,
}

/// One access unit: its NAL units behind 4-byte start codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    pub data: Vec<u8>,
    /// It holds an IDR picture.
    pub keyframe: bool,
}

/// A NAL unit of the stream and where it starts.
#[derive(Clone, Copy)]
struct Nal<'a> {
    offset: usize,
    data: &'a [u8],
}

impl Nal<'_> {
    fn kind(&self) -> u8 {
        self.data[0] & 0x1f
    }

    fn is_slice(&self) -> bool {
        matches!(self.kind(), NAL_SLICE | NAL_IDR)
    }

    /// A slice whose `first_mb_in_slice` (ue(v), H.264 §7.3.3) is 0:
    /// ue(v) codes 0 as a single `1` bit.
    fn is_first_slice(&self) -> bool {
        self.is_slice() && self.data[1] & 0x80 != 0
    }

    /// H.264 §7.4.1.2.3: these start a new access unit when they follow
    /// the last slice of one (SEI, SPS, PPS, AUD, types 14 to 18).
    fn starts_access_unit(&self) -> bool {
        matches!(self.kind(), NAL_SEI | NAL_SPS | NAL_PPS | NAL_AUD | 14..=18)
    }
}

/// The NAL units of `stream`, checked: a start code first (after any
/// `leading_zero_8bits`), none empty, none over [`MAX_NAL_BYTES`].
fn nal_units(stream: &[u8]) -> Result<Vec<Nal<'_>>, AnnexBError> {
    let first = stream.iter().position(|&b| b != 0).ok_or(AnnexBError::NoStartCode)?;
    if first < 2 || stream[first] != 1 {
        return Err(AnnexBError::NoStartCode);
    }
    let mut nals = Vec::new();
    let mut start = first + 1;
    loop {
        // The next start code; the zero bytes before it are
        // trailing_zero_8bits (or a 4-byte code's first zero).
        let next = find_start_code(&stream[start..]).map(|at| start + at);
        let end = next.unwrap_or(stream.len());
        let mut body = &stream[start..end];
        while let [rest @ .., 0] = body {
            body = rest;
        }
        let offset = start;
        if body.is_empty() {
            return Err(AnnexBError::EmptyNal { offset });
        }
        if body.len() > MAX_NAL_BYTES {
            return Err(AnnexBError::HugeNal {
                offset,
                len: body.len(),
                max: MAX_NAL_BYTES,
            });
        }
        if body[0] & 0x80 != 0 {
            return Err(AnnexBError::ForbiddenBit { offset });
        }
        let nal = Nal { offset, data: body };
        if nal.is_slice() && body.len() < 2 {
            return Err(AnnexBError::TruncatedSlice { offset });
        }
        nals.push(nal);
        match next {
            Some(at) => start = at + 3,
            None => return Ok(nals),
        }
    }
}

/// Where the first `00 00 01` in `data` starts.
fn find_start_code(data: &[u8]) -> Option<usize> {
    data.windows(3).position(|w| w == [0, 0, 1])
}

/// The access units of an Annex B stream, from its first IDR picture,
/// each IDR picture with an SPS and a PPS in front.
pub fn access_units(stream: &[u8]) -> Result<Vec<AccessUnit>, AnnexBError> {
    let nals = nal_units(stream)?;
    // Group into access units: a new one starts at an AUD, SPS, PPS or
    // SEI after a slice, and at a first slice after a slice.
    let mut groups: Vec<Vec<Nal<'_>>> = Vec::new();
    let mut current: Vec<Nal<'_>> = Vec::new();
    let mut has_slice = false;
    for nal in nals {
        let boundary = has_slice && (nal.starts_access_unit() || nal.is_first_slice());
        if boundary || (nal.kind() == NAL_AUD && !current.is_empty()) {
            groups.push(std::mem::take(&mut current));
            has_slice = false;
        }
        has_slice |= nal.is_slice();
        current.push(nal);
    }
    groups.push(current);

    let mut units = Vec::new();
    let (mut sps, mut pps): (Option<Nal<'_>>, Option<Nal<'_>>) = (None, None);
    for group in groups {
        for nal in &group {
            match nal.kind() {
                NAL_SPS => sps = Some(*nal),
                NAL_PPS => pps = Some(*nal),
                _ => {}
            }
        }
        // An access unit without a slice (a trailing SEI or end of
        // stream) carries no picture.
        let Some(idr) = group.iter().find(|n| n.is_slice()) else {
            continue;
        };
        let keyframe = group.iter().any(|n| n.kind() == NAL_IDR);
        if !keyframe && units.is_empty() {
            continue;
        }
        let mut data = Vec::new();
        let mut push = |nal: &Nal<'_>| {
            data.extend_from_slice(&[0, 0, 0, 1]);
            data.extend_from_slice(nal.data);
        };
        let has = |kind| group.iter().any(|n| n.kind() == kind);
        let mut rest = group.as_slice();
        if let [aud, tail @ ..] = rest {
            if aud.kind() == NAL_AUD {
                push(aud);
                rest = tail;
            }
        }
        if keyframe && !(has(NAL_SPS) && has(NAL_PPS)) {
            let (Some(sps), Some(pps)) = (sps, pps) else {
                return Err(AnnexBError::MissingParameterSets { offset: idr.offset });
            };
            push(&sps);
            push(&pps);
        }
        for nal in rest {
            push(nal);
        }
        units.push(AccessUnit { data, keyframe });
    }
    if units.is_empty() {
        return Err(AnnexBError::NoKeyframe);
    }
    Ok(units)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1e];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];
    const AUD: &[u8] = &[0x09, 0xf0];
    /// An IDR slice and a non-IDR slice, `first_mb_in_slice` 0 (bit 1).
    const IDR: &[u8] = &[0x65, 0x88, 0x84, 0x80];
    const P: &[u8] = &[0x41, 0x9a, 0x02, 0x03];
    /// A second slice of a picture: `first_mb_in_slice` not 0.
    const P_SECOND: &[u8] = &[0x41, 0x40, 0x11];

    fn stream(nals: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, nal) in nals.iter().enumerate() {
            // Both start code lengths, as encoders mix them.
            out.extend_from_slice(if i % 2 == 0 { &[0, 0, 0, 1][..] } else { &[0, 0, 1][..] });
            out.extend_from_slice(nal);
        }
        out
    }

    fn units(nals: &[&[u8]]) -> Vec<AccessUnit> {
        access_units(&stream(nals)).unwrap()
    }

    #[test]
    fn splits_on_first_slices_and_keeps_parameter_sets() {
        let got = units(&[SPS, PPS, IDR, P, P_SECOND, P]);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].data, four(&[SPS, PPS, IDR]));
        assert!(got[0].keyframe);
        assert!(!got[1].keyframe);
        assert_eq!(got[1].data, four(&[P, P_SECOND]));
        assert_eq!(got[2].data, four(&[P]));
    }

    #[test]
    fn splits_on_access_unit_delimiters() {
        let got = units(&[AUD, SPS, PPS, IDR, AUD, P, AUD, P]);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].data, four(&[AUD, SPS, PPS, IDR]));
        assert_eq!(got[1].data, four(&[AUD, P]));
    }

    #[test]
    fn puts_parameter_sets_before_each_idr() {
        let got = units(&[AUD, SPS, PPS, IDR, AUD, P, AUD, IDR]);
        assert_eq!(got[2].data, four(&[AUD, SPS, PPS, IDR]));
        assert!(got[2].keyframe);
    }

    #[test]
    fn drops_access_units_before_the_first_idr() {
        let got = units(&[P, P, SPS, PPS, IDR, P]);
        assert_eq!(got.len(), 2);
        assert!(got[0].keyframe);
    }

    #[test]
    fn trailing_zero_bytes_are_not_part_of_a_nal() {
        let mut data = stream(&[SPS, PPS, IDR]);
        data.extend_from_slice(&[0, 0, 0]);
        assert_eq!(access_units(&data).unwrap()[0].data, four(&[SPS, PPS, IDR]));
    }

    #[test]
    fn hostile_streams_are_errors() {
        assert_eq!(access_units(b""), Err(AnnexBError::NoStartCode));
        assert_eq!(access_units(&[0, 0, 0, 0]), Err(AnnexBError::NoStartCode));
        assert_eq!(
            access_units(&[0x65, 0x88, 0, 0, 1, 0x65]),
            Err(AnnexBError::NoStartCode)
        );
        assert_eq!(access_units(&[0, 1, 0x65, 0x88]), Err(AnnexBError::NoStartCode));
        assert_eq!(access_units(&[0, 0, 1]), Err(AnnexBError::EmptyNal { offset: 3 }));
        assert_eq!(
            access_units(&[0, 0, 1, 0x67, 0, 0, 1, 0, 0, 1, 0x65, 0x88]),
            Err(AnnexBError::EmptyNal { offset: 7 })
        );
        assert_eq!(
            access_units(&[0, 0, 1, 0xe5, 0x88]),
            Err(AnnexBError::ForbiddenBit { offset: 3 })
        );
        assert_eq!(
            access_units(&stream(&[SPS, PPS, &[0x65]])),
            Err(AnnexBError::TruncatedSlice { offset: 19 })
        );
        assert_eq!(
            access_units(&stream(&[IDR])),
            Err(AnnexBError::MissingParameterSets { offset: 4 })
        );
        assert_eq!(access_units(&stream(&[SPS, PPS, P])), Err(AnnexBError::NoKeyframe));
        let mut huge = vec![0, 0, 1, 0x65];
        huge.resize(MAX_NAL_BYTES + 4, 0x11);
        assert_eq!(
            access_units(&huge),
            Err(AnnexBError::HugeNal {
                offset: 3,
                len: MAX_NAL_BYTES + 1,
                max: MAX_NAL_BYTES
            })
        );
    }

    /// NAL units behind 4-byte start codes, as access units hold them.
    fn four(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter().flat_map(|n| [&[0, 0, 0, 1][..], n].concat()).collect()
    }

    proptest! {
        /// Any bytes: an error or access units, never a panic; every
        /// unit starts with a start code and the first is a keyframe.
        #[test]
        fn any_bytes_parse_or_fail(data in proptest::collection::vec(
            prop_oneof![Just(0u8), Just(1u8), any::<u8>()], 0..256)) {
            if let Ok(units) = access_units(&data) {
                prop_assert!(units[0].keyframe);
                for unit in &units {
                    prop_assert!(unit.data.starts_with(&[0, 0, 0, 1]));
                }
            }
        }

        /// A valid stream of IDR and P pictures splits into one unit per
        /// picture, whichever start codes it uses.
        #[test]
        fn pictures_split_one_per_unit(pictures in proptest::collection::vec(any::<bool>(), 1..40)) {
            let mut nals: Vec<&[u8]> = vec![SPS, PPS, IDR];
            for &idr in &pictures {
                nals.push(if idr { IDR } else { P });
            }
            let got = units(&nals);
            prop_assert_eq!(got.len(), pictures.len() + 1);
            for (unit, &idr) in got[1..].iter().zip(&pictures) {
                prop_assert_eq!(unit.keyframe, idr);
                let expected = if idr { four(&[SPS, PPS, IDR]) } else { four(&[P]) };
                prop_assert_eq!(&unit.data, &expected);
            }
        }
    }
}
