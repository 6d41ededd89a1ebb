//! AV1 as Matroska stores it (the Matroska AV1 codec mapping, `V_AV1`):
//! CodecPrivate is the AV1CodecConfigurationRecord of the "AV1 Codec ISO
//! Media File Format Binding" §2.3 with the sequence header OBU as its
//! configOBUs, and each Block is one temporal unit in the low overhead
//! bitstream format (AV1 §5.2), every OBU with its size field, without
//! temporal delimiters (§5.6), tile list OBUs or padding.
//!
//! [`Av1Config`] reads the sequence header (AV1 §5.5) as far as its
//! color_config (§5.5.2), which the record repeats.

use natter_rtp::payload::{write_leb128, Obu, ObuType, Obus};

use crate::{Error, Result};

/// AV1 §6.4.2 color_config: color_primaries BT_709,
/// transfer_characteristics SRGB, matrix_coefficients IDENTITY.
const CP_BT_709: u32 = 1;
const TC_SRGB: u32 = 13;
const MC_IDENTITY: u32 = 0;

/// A coded video sequence's AV1CodecConfigurationRecord and picture size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Av1Config {
    record: Vec<u8>,
    /// max_frame_width_minus_1 + 1 and max_frame_height_minus_1 + 1.
    pub width: u32,
    pub height: u32,
}

impl Av1Config {
    /// Takes the first sequence header OBU of `temporal_unit` (low
    /// overhead format). A temporal unit without one, with an OBU that
    /// overruns it, or whose sequence header ends before its
    /// color_config is an [`Error::Av1`].
    pub fn from_temporal_unit(temporal_unit: &[u8]) -> Result<Self> {
        for obu in Obus::new(temporal_unit) {
            let obu = obu.map_err(|_| Error::Av1("an OBU header or size overruns the temporal unit"))?;
            if obu.header.obu_type == ObuType::SequenceHeader {
                return Self::from_sequence_header(&obu);
            }
        }
        Err(Error::Av1("no sequence header OBU"))
    }

    fn from_sequence_header(obu: &Obu<'_>) -> Result<Self> {
        let s = SequenceHeader::read(&mut Bits::new(obu.payload))
            .ok_or(Error::Av1("the sequence header ends before its color_config"))?;
        // §2.3: marker 1, version 1.
        let mut record = vec![
            0x81,
            s.profile << 5 | s.level,
            s.tier << 7
                | u8::from(s.high_bitdepth) << 6
                | u8::from(s.twelve_bit) << 5
                | u8::from(s.mono_chrome) << 4
                | u8::from(s.subsampling_x) << 3
                | u8::from(s.subsampling_y) << 2
                | s.chroma_sample_position,
            // initial_presentation_delay_present 0.
            0,
        ];
        write_obu(&mut record, obu);
        Ok(Av1Config {
            record,
            width: s.max_frame_width,
            height: s.max_frame_height,
        })
    }

    /// The AV1CodecConfigurationRecord, the track's CodecPrivate.
    pub fn record(&self) -> &[u8] {
        &self.record
    }
}

/// Writes `temporal_unit` into `out` (cleared first) as a Matroska
/// Block holds it: its OBUs with size fields, in order, less temporal
/// delimiters, tile lists and padding. An OBU that overruns the unit is
/// an [`Error::Av1`] (with `out` holding the OBUs before it).
pub fn write_block(temporal_unit: &[u8], out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    for obu in Obus::new(temporal_unit) {
        let obu = obu.map_err(|_| Error::Av1("an OBU header or size overruns the temporal unit"))?;
        if !matches!(
            obu.header.obu_type,
            ObuType::TemporalDelimiter | ObuType::TileList | ObuType::Padding
        ) {
            write_obu(out, &obu);
        }
    }
    Ok(())
}

/// The OBU with its header (obu_has_size_field set) and leb128 size.
fn write_obu(out: &mut Vec<u8>, obu: &Obu<'_>) {
    let mut header = obu.header;
    header.has_size_field = true;
    let (bytes, n) = header.encode();
    out.extend_from_slice(&bytes[..n]);
    let mut leb = [0u8; 8];
    // Obus reads a payload by its 32-bit obu_size, or as the rest of a
    // unit that the depacketizer caps far below 4 GiB.
    let n = write_leb128(obu.payload.len() as u32, &mut leb);
    out.extend_from_slice(&leb[..n]);
    out.extend_from_slice(obu.payload);
}

/// What the record repeats of a sequence header.
struct SequenceHeader {
    profile: u8,
    level: u8,
    tier: u8,
    max_frame_width: u32,
    max_frame_height: u32,
    high_bitdepth: bool,
    twelve_bit: bool,
    mono_chrome: bool,
    subsampling_x: bool,
    subsampling_y: bool,
    chroma_sample_position: u8,
}

impl SequenceHeader {
    /// AV1 §5.5.1 sequence_header_obu() up to and through color_config().
    fn read(r: &mut Bits<'_>) -> Option<Self> {
        let profile = r.bits(3)? as u8;
        if profile > 2 {
            return None;
        }
        r.bits(1)?; // still_picture
        let reduced_still_picture_header = r.flag()?;
        let (level, tier);
        if reduced_still_picture_header {
            level = r.bits(5)? as u8;
            tier = 0;
        } else {
            let mut buffer_delay_length = None;
            if r.flag()? {
                // timing_info(): num_units_in_display_tick, time_scale.
                r.bits(32)?;
                r.bits(32)?;
                if r.flag()? {
                    r.uvlc()?; // num_ticks_per_picture_minus_1
                }
                if r.flag()? {
                    // decoder_model_info()
                    buffer_delay_length = Some(r.bits(5)? + 1);
                    r.bits(32)?;
                    r.bits(10)?;
                }
            }
            let initial_display_delay_present = r.flag()?;
            let operating_points = r.bits(5)? + 1;
            let (mut first_level, mut first_tier) = (0, 0);
            for i in 0..operating_points {
                r.bits(12)?; // operating_point_idc
                let level = r.bits(5)? as u8;
                let tier = if level > 7 { r.bits(1)? as u8 } else { 0 };
                if i == 0 {
                    (first_level, first_tier) = (level, tier);
                }
                if let Some(n) = buffer_delay_length {
                    if r.flag()? {
                        // operating_parameters_info()
                        r.bits(n)?;
                        r.bits(n)?;
                        r.bits(1)?;
                    }
                }
                if initial_display_delay_present && r.flag()? {
                    r.bits(4)?;
                }
            }
            (level, tier) = (first_level, first_tier);
        }
        let width_bits = r.bits(4)? + 1;
        let height_bits = r.bits(4)? + 1;
        let max_frame_width = r.bits(width_bits)? + 1;
        let max_frame_height = r.bits(height_bits)? + 1;
        if !reduced_still_picture_header && r.flag()? {
            // frame_id_numbers_present_flag: delta and additional lengths.
            r.bits(7)?;
        }
        r.bits(3)?; // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
        if !reduced_still_picture_header {
            // enable_interintra_compound, enable_masked_compound,
            // enable_warped_motion, enable_dual_filter.
            r.bits(4)?;
            let enable_order_hint = r.flag()?;
            if enable_order_hint {
                r.bits(2)?; // enable_jnt_comp, enable_ref_frame_mvs
            }
            // seq_choose_screen_content_tools, else seq_force_screen_content_tools.
            let force_screen_content_tools = if r.flag()? { 2 } else { r.bits(1)? };
            if force_screen_content_tools > 0 && !r.flag()? {
                r.bits(1)?; // seq_force_integer_mv
            }
            if enable_order_hint {
                r.bits(3)?; // order_hint_bits_minus_1
            }
        }
        r.bits(3)?; // enable_superres, enable_cdef, enable_restoration
                    // §5.5.2 color_config()
        let high_bitdepth = r.flag()?;
        let twelve_bit = profile == 2 && high_bitdepth && r.flag()?;
        let mono_chrome = profile != 1 && r.flag()?;
        let (cp, tc, mc) = if r.flag()? {
            (r.bits(8)?, r.bits(8)?, r.bits(8)?)
        } else {
            // CP_UNSPECIFIED, TC_UNSPECIFIED, MC_UNSPECIFIED.
            (2, 2, 2)
        };
        let (subsampling_x, subsampling_y, chroma_sample_position);
        if mono_chrome {
            r.bits(1)?; // color_range
            (subsampling_x, subsampling_y, chroma_sample_position) = (true, true, 0);
        } else if (cp, tc, mc) == (CP_BT_709, TC_SRGB, MC_IDENTITY) {
            (subsampling_x, subsampling_y, chroma_sample_position) = (false, false, 0);
        } else {
            r.bits(1)?; // color_range
            (subsampling_x, subsampling_y) = match profile {
                0 => (true, true),
                1 => (false, false),
                _ if twelve_bit => {
                    let x = r.flag()?;
                    (x, x && r.flag()?)
                }
                _ => (true, false),
            };
            chroma_sample_position = if subsampling_x && subsampling_y {
                r.bits(2)? as u8
            } else {
                0
            };
        }
        Some(SequenceHeader {
            profile,
            level,
            tier,
            max_frame_width,
            max_frame_height,
            high_bitdepth,
            twelve_bit,
            mono_chrome,
            subsampling_x,
            subsampling_y,
            chroma_sample_position,
        })
    }
}

/// AV1 §4.10.1 f(n) and §4.10.3 uvlc(), most significant bit first.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bits { data, pos: 0 }
    }

    /// The next `n` bits (at most 32); `None` past the end.
    fn bits(&mut self, n: u32) -> Option<u32> {
        let mut value = 0u64;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            value = value << 1 | u64::from(byte >> (7 - self.pos % 8) & 1);
            self.pos += 1;
        }
        u32::try_from(value).ok()
    }

    fn flag(&mut self) -> Option<bool> {
        Some(self.bits(1)? == 1)
    }

    fn uvlc(&mut self) -> Option<u32> {
        let mut leading_zeros = 0;
        while !self.flag()? {
            leading_zeros += 1;
        }
        if leading_zeros >= 32 {
            return Some(u32::MAX);
        }
        Some(self.bits(leading_zeros)?.saturating_add((1u32 << leading_zeros) - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temporal_unit() -> Vec<u8> {
        let mut tu = vec![0x12, 0x00]; // temporal delimiter
        tu.extend_from_slice(&SEQUENCE_HEADER_OBU);
        tu.extend_from_slice(&[0x32, 0x02, 0xaa, 0xbb]); // frame OBU
        tu.extend_from_slice(&[0x7a, 0x01, 0x00]); // padding
        tu.extend_from_slice(&[0x30, 0xcc]); // frame OBU without size field, the last
        tu
    }

    const SEQUENCE_HEADER_OBU: [u8; 13] = [
        0x0a, 0x0b, 0x00, 0x00, 0x00, 0x04, 0x3c, 0xff, 0xbc, 0xda, 0xf9, 0x00, 0x40,
    ];

    /// libaom's sequence header OBU of a 320x240 4:2:0 8-bit stream
    /// (FFmpeg's MP4 muxer makes the record 81 00 0c 00 of it).
    #[test]
    fn record_and_block() {
        let config = Av1Config::from_temporal_unit(&temporal_unit()).unwrap();
        assert_eq!((config.width, config.height), (320, 240));
        let mut expected = vec![0x81, 0x00, 0x0c, 0x00];
        expected.extend_from_slice(&SEQUENCE_HEADER_OBU);
        assert_eq!(config.record(), expected);
        let mut block = vec![0x55];
        write_block(&temporal_unit(), &mut block).unwrap();
        let mut expected = SEQUENCE_HEADER_OBU.to_vec();
        expected.extend_from_slice(&[0x32, 0x02, 0xaa, 0xbb, 0x32, 0x01, 0xcc]);
        assert_eq!(block, expected);
    }

    #[test]
    fn bad_units_are_errors() {
        let err = |tu: &[u8]| match Av1Config::from_temporal_unit(tu) {
            Err(Error::Av1(reason)) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(err(&[0x12, 0x00, 0x32, 0x01, 0xaa]), "no sequence header OBU");
        assert_eq!(
            err(&[0x0a, 0x05, 0x00]),
            "an OBU header or size overruns the temporal unit"
        );
        assert_eq!(
            err(&SEQUENCE_HEADER_OBU[..4]),
            "an OBU header or size overruns the temporal unit"
        );
        assert_eq!(
            err(&[0x0a, 0x02, 0x00, 0x00]),
            "the sequence header ends before its color_config"
        );
        let mut out = Vec::new();
        assert!(matches!(write_block(&[0x32, 0x09, 0x00], &mut out), Err(Error::Av1(_))));
    }
}
