//! H.264 Annex B byte streams (ITU-T H.264 Annex B): each NAL unit
//! behind a start code, access unit after access unit, as in `.h264`
//! files and what encoders write to pipes.
//!
//! Splitting a stream into NAL units is natter-rtp's
//! [`NalUnits::annex_b`]; here they are grouped into access units by
//! the rules of §7.4.1.2.3, simplified: a slice with `first_mb_in_slice`
//! 0 starts a new primary coded picture. That holds unless arbitrary
//! slice order (Baseline profile) or redundant pictures are in use.
//!
//! [`AvcConfig`] is the other form, ISO/IEC 14496-15's, that MP4 and
//! Matroska (`V_MPEG4/ISO/AVC`) store: the parameter sets once in an
//! AVCDecoderConfigurationRecord (§5.3.3.1), and each access unit as
//! NAL units behind 4-byte big-endian lengths (§5.3.2).

use std::io::Write;
use std::iter::Peekable;

use natter_rtp::payload::{H264Sps, NalUnits};

use crate::{Error, Result};

/// Annex B: `zero_byte` and `start_code_prefix_one_3bytes`, the form
/// §B.1.2 requires before parameter sets and the first NAL unit of an
/// access unit; written before every NAL unit.
pub const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// Splits an Annex B byte stream into access units, each the NAL units
/// (without start codes) borrowed from the stream.
///
/// ```
/// let stream = [0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x68, 0xce, 0, 0, 1, 0x65, 0x88, 0, 0, 1, 0x41, 0x9a];
/// let units: Vec<Vec<&[u8]>> = natter_container::h264::access_units(&stream)?.collect();
/// assert_eq!(units, [vec![&[0x67, 0x42][..], &[0x68, 0xce], &[0x65, 0x88]], vec![&[0x41, 0x9a][..]]]);
/// # Ok::<(), natter_container::Error>(())
/// ```
pub fn access_units(stream: &[u8]) -> Result<AccessUnits<'_>> {
    let nal_units = NalUnits::annex_b(stream).map_err(|_| Error::AnnexBStartCode)?;
    Ok(AccessUnits {
        nal_units: nal_units.peekable(),
    })
}

/// The access units of a byte stream ([`access_units`]).
#[derive(Clone, Debug)]
pub struct AccessUnits<'a> {
    nal_units: Peekable<NalUnits<'a>>,
}

impl<'a> Iterator for AccessUnits<'a> {
    type Item = Vec<&'a [u8]>;

    fn next(&mut self) -> Option<Vec<&'a [u8]>> {
        let first = self.nal_units.next()?;
        let mut after_slice = is_slice(first);
        let mut unit = vec![first];
        while let Some(nal) = self.nal_units.next_if(|nal| !(after_slice && starts_access_unit(nal))) {
            after_slice |= is_slice(nal);
            unit.push(nal);
        }
        Some(unit)
    }
}

/// Table 7-1: a slice of a coded picture (types 1 to 5).
fn is_slice(nal: &[u8]) -> bool {
    nal.first().is_some_and(|h| (1..=5).contains(&(h & 0x1f)))
}

/// §7.4.1.2.3: what, after a slice, begins the next access unit: an
/// SEI, SPS, PPS or access unit delimiter, types 14 to 18, or the first
/// slice of the next picture. Of the slice types, non-IDR (1), partition
/// A (2) and IDR (5) start with the slice header, whose first field
/// `first_mb_in_slice` is ue(v): 0 is the single bit 1.
fn starts_access_unit(nal: &[u8]) -> bool {
    let [header, rest @ ..] = nal else {
        return false;
    };
    match header & 0x1f {
        6..=9 | 14..=18 => true,
        1 | 2 | 5 => rest.first().is_some_and(|b| b & 0x80 != 0),
        _ => false,
    }
}

/// Writes an access unit into an Annex B byte stream: [`START_CODE`]
/// before each NAL unit.
///
/// The NAL units must be as they travel (emulation prevention applied),
/// so that the stream reads back the same: not empty, not ending in a
/// zero byte, never holding 00 00 00, 00 00 01 or 00 00 02 (§7.4.1).
/// Nothing is written unless all of them are.
pub fn write_access_unit(w: &mut impl Write, nal_units: &[&[u8]]) -> Result<()> {
    for (index, nal) in nal_units.iter().enumerate() {
        let reason = if nal.is_empty() {
            "it is empty"
        } else if nal.ends_with(&[0]) {
            "it ends in a zero byte, which readers take for trailing_zero_8bits"
        } else if nal.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 2) {
            "it holds 00 00 00, 00 00 01 or 00 00 02: emulation prevention is missing"
        } else {
            continue;
        };
        return Err(Error::NalUnit { index, reason });
    }
    for nal in nal_units {
        w.write_all(&START_CODE)?;
        w.write_all(nal)?;
    }
    Ok(())
}

/// Table 7-1: sequence and picture parameter set NAL unit types.
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
/// ISO/IEC 14496-15 §5.3.3.1: lengthSizeMinusOne 3, 4-byte NAL lengths.
const NAL_LENGTH_SIZE: usize = 4;

/// A stream's parameter sets as ISO/IEC 14496-15 stores them: the
/// AVCDecoderConfigurationRecord, taken from an access unit that holds
/// an SPS and a PPS (an IDR picture's, as WebRTC senders send them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvcConfig {
    sps: Vec<u8>,
    pps: Vec<u8>,
    /// The picture size the SPS gives, after cropping.
    pub width: u32,
    pub height: u32,
}

impl AvcConfig {
    /// Takes the first SPS and the first PPS of `access_unit`, an Annex B
    /// access unit. An access unit without both, or whose SPS does not
    /// read (ITU-T H.264 §7.3.2.1.1) or has no picture, is an
    /// [`Error::AvcConfig`].
    pub fn from_access_unit(access_unit: &[u8]) -> Result<Self> {
        let mut sps = None;
        let mut pps = None;
        for nal in NalUnits::annex_b(access_unit).map_err(|_| Error::AnnexBStartCode)? {
            match nal.first().map(|h| h & 0x1f) {
                Some(NAL_SPS) if sps.is_none() => sps = Some(nal),
                Some(NAL_PPS) if pps.is_none() => pps = Some(nal),
                _ => {}
            }
        }
        let sps = sps.ok_or(Error::AvcConfig("the access unit has no SPS"))?;
        let pps = pps.ok_or(Error::AvcConfig("the access unit has no PPS"))?;
        if sps.len() < 4 || sps.len() > usize::from(u16::MAX) || pps.len() > usize::from(u16::MAX) {
            return Err(Error::AvcConfig(
                "a parameter set is shorter than 4 or longer than 65535 bytes",
            ));
        }
        let parsed = H264Sps::parse(sps).map_err(|_| Error::AvcConfig("the SPS does not read"))?;
        if parsed.width == 0 || parsed.height == 0 {
            return Err(Error::AvcConfig("the SPS gives an empty picture"));
        }
        Ok(AvcConfig {
            sps: sps.to_vec(),
            pps: pps.to_vec(),
            width: parsed.width,
            height: parsed.height,
        })
    }

    /// ISO/IEC 14496-15 §5.3.3.1: the AVCDecoderConfigurationRecord,
    /// one SPS and one PPS, 4-byte NAL lengths. The chroma and bit depth
    /// fields that record adds for High profiles are left out, as
    /// FFmpeg's reader and Chromium's do not need them.
    pub fn record(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(11 + self.sps.len() + self.pps.len());
        // configurationVersion, then the SPS's profile_idc, constraint flags, level_idc.
        out.extend_from_slice(&[1, self.sps[1], self.sps[2], self.sps[3]]);
        // reserved '111111'b, lengthSizeMinusOne; reserved '111'b, numOfSequenceParameterSets.
        out.extend_from_slice(&[0xfc | (NAL_LENGTH_SIZE as u8 - 1), 0xe0 | 1]);
        // Both fit 16 bits (from_access_unit).
        out.extend_from_slice(&(self.sps.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.sps);
        out.push(1);
        out.extend_from_slice(&(self.pps.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.pps);
        out
    }

    /// Writes Annex B `access_unit` into `out` (cleared first) as a
    /// §5.3.2 sample: each NAL unit behind its 4-byte length. The SPS
    /// and PPS of the record are left out; other parameter sets (the
    /// encoder changed resolution) stay in the sample, where decoders
    /// take them in band.
    pub fn write_sample(&self, access_unit: &[u8], out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        for nal in NalUnits::annex_b(access_unit).map_err(|_| Error::AnnexBStartCode)? {
            if nal.is_empty() || nal == self.sps.as_slice() || nal == self.pps.as_slice() {
                continue;
            }
            let len = u32::try_from(nal.len()).map_err(|_| Error::NalUnit {
                index: 0,
                reason: "it is longer than a 4-byte length holds",
            })?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(nal);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(stream: &[u8]) -> Vec<Vec<&[u8]>> {
        access_units(stream).unwrap().collect()
    }

    #[test]
    fn parameter_sets_and_sei_start_an_access_unit_after_a_slice() {
        let stream = [
            0, 0, 1, 0x09, 0xf0, // AUD
            0, 0, 1, 0x06, 0x05, // SEI
            0, 0, 1, 0x65, 0x88, // IDR, first_mb_in_slice 0
            0, 0, 1, 0x65, 0x40, // IDR, first_mb_in_slice 1: same picture
            0, 0, 1, 0x0c, 0xff, // filler: same access unit
            0, 0, 1, 0x67, 0x42, // SPS
            0, 0, 1, 0x68, 0xce, // PPS
            0, 0, 1, 0x65, 0x88, // IDR
            0, 0, 1, 0x06, 0x05, // SEI
            0, 0, 1, 0x01, 0x9a, // non-IDR
            0, 0, 1, 0x0b, // end of stream: same access unit
        ];
        let units = split(&stream);
        let types: Vec<Vec<u8>> = units.iter().map(|u| u.iter().map(|n| n[0] & 0x1f).collect()).collect();
        assert_eq!(types, [vec![9, 6, 5, 5, 12], vec![7, 8, 5], vec![6, 1, 11]]);
    }

    #[test]
    fn no_start_code() {
        assert!(matches!(access_units(&[0x65, 0x88]), Err(Error::AnnexBStartCode)));
        assert!(matches!(access_units(&[]), Err(Error::AnnexBStartCode)));
    }

    #[test]
    fn writes_start_codes() {
        let mut out = Vec::new();
        write_access_unit(&mut out, &[&[0x67, 0x42], &[0x65, 0x88, 0, 0, 3, 1]]).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x65, 0x88, 0, 0, 3, 1]);
        assert_eq!(split(&out), [vec![&[0x67, 0x42][..], &[0x65, 0x88, 0, 0, 3, 1]]]);
    }

    #[test]
    fn refuses_what_would_not_read_back() {
        for (nal, index) in [
            (&[][..], 0),
            (&[0x65, 0], 1),
            (&[0x65, 0, 0, 1, 5], 1),
            (&[0x65, 0, 0, 2], 1),
        ] {
            let mut out = Vec::new();
            let units = if index == 0 { vec![nal] } else { vec![&[0x67][..], nal] };
            let err = write_access_unit(&mut out, &units).unwrap_err();
            assert!(matches!(err, Error::NalUnit { index: i, .. } if i == index), "{err}");
            assert!(out.is_empty());
        }
    }

    /// libx264's 320x240 Constrained Baseline SPS and its PPS.
    const SPS: [u8; 24] = [
        0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03,
        0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
    ];
    const PPS: [u8; 5] = [0x68, 0xcb, 0x83, 0xcb, 0x20];

    fn annex_b(nals: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        write_access_unit(&mut out, nals).unwrap();
        out
    }

    #[test]
    fn avc_record_and_samples() {
        let idr: &[u8] = &[0x65, 0x88, 0x84];
        let config = AvcConfig::from_access_unit(&annex_b(&[&[0x09, 0xf0], &SPS, &PPS, idr])).unwrap();
        assert_eq!((config.width, config.height), (320, 240));
        let mut expected = vec![1, 0x42, 0xc0, 0x0d, 0xff, 0xe1, 0, 24];
        expected.extend_from_slice(&SPS);
        expected.extend_from_slice(&[1, 0, 5]);
        expected.extend_from_slice(&PPS);
        assert_eq!(config.record(), expected);
        let mut sample = vec![0xaa];
        config
            .write_sample(&annex_b(&[&[0x09, 0xf0], &SPS, &PPS, idr]), &mut sample)
            .unwrap();
        assert_eq!(sample, [0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 3, 0x65, 0x88, 0x84]);
        // A new SPS stays in band.
        let mut other_sps = SPS;
        other_sps[3] = 0x1f;
        config.write_sample(&annex_b(&[&other_sps, idr]), &mut sample).unwrap();
        assert_eq!(&sample[..4], [0, 0, 0, 24]);
        assert_eq!(sample.len(), 4 + 24 + 4 + 3);
    }

    #[test]
    fn avc_config_needs_a_good_sps_and_a_pps() {
        let idr: &[u8] = &[0x65, 0x88];
        for (nals, reason) in [
            (vec![&PPS[..], idr], "the access unit has no SPS"),
            (vec![&SPS[..], idr], "the access unit has no PPS"),
            (
                vec![&[0x67, 0x42][..], &PPS, idr],
                "a parameter set is shorter than 4 or longer than 65535 bytes",
            ),
            (
                vec![&[0x67, 0x42, 0xc0, 0x0d, 0xff][..], &PPS, idr],
                "the SPS does not read",
            ),
        ] {
            let err = AvcConfig::from_access_unit(&annex_b(&nals)).unwrap_err();
            assert!(matches!(err, Error::AvcConfig(r) if r == reason), "{err}");
        }
        assert!(matches!(
            AvcConfig::from_access_unit(&[0x67]),
            Err(Error::AnnexBStartCode)
        ));
    }
}
