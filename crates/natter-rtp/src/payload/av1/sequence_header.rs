//! The sequence header OBU (AV1 Bitstream Specification §5.5.1), read
//! as far as the largest frame size, which is what a receiver reports.

use crate::payload::bits::BitReader;
use crate::payload::PayloadError;

/// What a sequence header says about the coded video sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Av1SequenceHeader {
    /// seq_profile: 0 (Main), 1 (High), 2 (Professional).
    pub profile: u8,
    pub still_picture: bool,
    /// Frame headers are reduced to a key frame's (§5.9.2).
    pub reduced_still_picture_header: bool,
    /// operating_points_cnt_minus_1 + 1.
    pub operating_points: u8,
    /// `operating_point_idc[0]`: the layers of the first operating point,
    /// 0 when the stream is not scalable.
    pub operating_point_idc: u16,
    /// `seq_level_idx[0]`.
    pub level: u8,
    /// `seq_tier[0]`.
    pub tier: u8,
    /// max_frame_width_minus_1 + 1.
    pub max_frame_width: u32,
    /// max_frame_height_minus_1 + 1.
    pub max_frame_height: u32,
}

impl Av1SequenceHeader {
    /// Reads the payload of a sequence header OBU (after its OBU header
    /// and size).
    pub fn parse(payload: &[u8]) -> Result<Self, PayloadError> {
        Self::read(&mut BitReader::new(payload)).ok_or(PayloadError::Av1SequenceHeader {
            reason: "the OBU ends before max_frame_height_minus_1",
        })
    }

    fn read(r: &mut BitReader<'_>) -> Option<Self> {
        let profile = r.bits(3)? as u8;
        let still_picture = r.flag()?;
        let reduced_still_picture_header = r.flag()?;
        let mut h = Av1SequenceHeader {
            profile,
            still_picture,
            reduced_still_picture_header,
            operating_points: 1,
            operating_point_idc: 0,
            level: 0,
            tier: 0,
            max_frame_width: 0,
            max_frame_height: 0,
        };
        if reduced_still_picture_header {
            h.level = r.bits(5)? as u8;
        } else {
            let mut buffer_delay_length = None;
            if r.flag()? {
                // timing_info()
                r.skip(64)?; // num_units_in_display_tick, time_scale
                if r.flag()? {
                    r.uvlc()?; // num_ticks_per_picture_minus_1
                }
                if r.flag()? {
                    // decoder_model_info()
                    buffer_delay_length = Some(r.bits(5)? as usize + 1);
                    r.skip(32 + 5 + 5)?;
                }
            }
            let initial_display_delay_present = r.flag()?;
            h.operating_points = r.bits(5)? as u8 + 1;
            for i in 0..h.operating_points {
                let idc = r.bits(12)? as u16;
                let level = r.bits(5)? as u8;
                let tier = if level > 7 { r.bits(1)? as u8 } else { 0 };
                if i == 0 {
                    (h.operating_point_idc, h.level, h.tier) = (idc, level, tier);
                }
                if let Some(n) = buffer_delay_length {
                    if r.flag()? {
                        // operating_parameters_info(): two delays and low_delay_mode_flag.
                        r.skip(2 * n + 1)?;
                    }
                }
                if initial_display_delay_present && r.flag()? {
                    r.skip(4)?;
                }
            }
        }
        let width_bits = r.bits(4)? + 1;
        let height_bits = r.bits(4)? + 1;
        h.max_frame_width = r.bits(width_bits)? + 1;
        h.max_frame_height = r.bits(height_bits)? + 1;
        Some(h)
    }
}

/// AV1 §6.8.2 frame_type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Av1FrameType {
    Key,
    Inter,
    IntraOnly,
    Switch,
}

/// AV1 §5.9.2: the first fields of a frame header (in a frame header
/// OBU or a frame OBU): whether it shows an earlier frame, else its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Av1FrameHeader {
    /// show_existing_frame = 1.
    ShowExisting,
    /// A new frame of this type; show_frame.
    New { frame_type: Av1FrameType, show_frame: bool },
}

impl Av1FrameHeader {
    /// Reads the start of a frame header OBU's payload. With
    /// `reduced_still_picture_header` (from the sequence header) every
    /// frame is a shown key frame and nothing is read.
    pub fn parse(payload: &[u8], reduced_still_picture_header: bool) -> Result<Self, PayloadError> {
        if reduced_still_picture_header {
            return Ok(Av1FrameHeader::New {
                frame_type: Av1FrameType::Key,
                show_frame: true,
            });
        }
        let mut r = BitReader::new(payload);
        let read = |r: &mut BitReader<'_>| {
            if r.flag()? {
                return Some(Av1FrameHeader::ShowExisting);
            }
            let frame_type = match r.bits(2)? {
                0 => Av1FrameType::Key,
                1 => Av1FrameType::Inter,
                2 => Av1FrameType::IntraOnly,
                _ => Av1FrameType::Switch,
            };
            Some(Av1FrameHeader::New {
                frame_type,
                show_frame: r.flag()?,
            })
        };
        read(&mut r).ok_or(PayloadError::Av1FrameHeader {
            reason: "the OBU ends before frame_type and show_frame",
        })
    }

    /// A new key frame (shown now or later).
    pub fn is_key_frame(&self) -> bool {
        matches!(
            self,
            Av1FrameHeader::New {
                frame_type: Av1FrameType::Key,
                ..
            }
        )
    }
}
