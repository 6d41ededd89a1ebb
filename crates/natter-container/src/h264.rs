//! H.264 Annex B byte streams (ITU-T H.264 Annex B): each NAL unit
//! behind a start code, access unit after access unit, as in `.h264`
//! files and what encoders write to pipes.
//!
//! Splitting a stream into NAL units is natter-rtp's
//! [`NalUnits::annex_b`]; here they are grouped into access units by
//! the rules of §7.4.1.2.3, simplified: a slice with `first_mb_in_slice`
//! 0 starts a new primary coded picture. That holds unless arbitrary
//! slice order (Baseline profile) or redundant pictures are in use.

use std::io::Write;
use std::iter::Peekable;

use natter_rtp::payload::NalUnits;

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
}
