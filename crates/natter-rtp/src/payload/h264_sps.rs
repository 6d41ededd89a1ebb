//! The picture size in an H.264 sequence parameter set (ITU-T H.264
//! §7.3.2.1.1, §7.4.2.1.1), read from the RBSP with Exp-Golomb codes
//! (§9.1) after removing emulation prevention bytes (§7.4.1).

use super::h264::NAL_SPS;
use super::PayloadError;

/// ITU-T H.264 §7.3.2.1.1: profile_idc values whose SPS carries
/// chroma_format_idc, bit depths and scaling matrices.
const CHROMA_PROFILES: [u8; 13] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

/// What a sequence parameter set says about the picture
/// (ITU-T H.264 §7.3.2.1.1, §7.4.2.1.1). Fields after frame cropping
/// (the VUI) are not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct H264Sps {
    pub profile_idc: u8,
    /// constraint_set0_flag to constraint_set5_flag and the two reserved
    /// bits: with the profile and level, RFC 6184 §8.1 profile-level-id.
    pub constraint_flags: u8,
    pub level_idc: u8,
    /// seq_parameter_set_id, 0..=31.
    pub id: u8,
    /// 0: monochrome, 1: 4:2:0, 2: 4:2:2, 3: 4:4:4.
    pub chroma_format_idc: u8,
    /// Every picture is a frame, no field coding.
    pub frame_mbs_only: bool,
    /// Luma samples per row and rows, after frame cropping.
    pub width: u32,
    pub height: u32,
}

impl H264Sps {
    /// Reads an SPS NAL unit (header byte included, emulation prevention
    /// bytes still in).
    pub fn parse(nal: &[u8]) -> Result<Self, PayloadError> {
        let bad = |reason| PayloadError::H264Sps { reason };
        let Some((&header, rbsp)) = nal.split_first() else {
            return Err(bad("the NAL unit is empty"));
        };
        if header & 0x1F != NAL_SPS {
            return Err(bad("the NAL unit type is not 7"));
        }
        let mut r = Rbsp::new(rbsp);
        let profile_idc = r.bits(8)? as u8;
        let constraint_flags = r.bits(8)? as u8;
        let level_idc = r.bits(8)? as u8;
        let id = r.ue()?;
        if id > 31 {
            return Err(bad("seq_parameter_set_id exceeds 31"));
        }
        let mut chroma_format_idc = 1;
        let mut separate_colour_plane = false;
        if CHROMA_PROFILES.contains(&profile_idc) {
            chroma_format_idc = r.ue()?;
            if chroma_format_idc > 3 {
                return Err(bad("chroma_format_idc exceeds 3"));
            }
            if chroma_format_idc == 3 {
                separate_colour_plane = r.flag()?;
            }
            if r.ue()? > 6 || r.ue()? > 6 {
                return Err(bad("bit depth exceeds 14"));
            }
            r.flag()?; // qpprime_y_zero_transform_bypass_flag
            if r.flag()? {
                let lists = if chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if r.flag()? {
                        r.skip_scaling_list(if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }
        if r.ue()? > 12 {
            return Err(bad("log2_max_frame_num_minus4 exceeds 12"));
        }
        match r.ue()? {
            0 => {
                if r.ue()? > 12 {
                    return Err(bad("log2_max_pic_order_cnt_lsb_minus4 exceeds 12"));
                }
            }
            1 => {
                r.flag()?; // delta_pic_order_always_zero_flag
                r.se()?; // offset_for_non_ref_pic
                r.se()?; // offset_for_top_to_bottom_field
                let cycle = r.ue()?;
                if cycle > 255 {
                    return Err(bad("num_ref_frames_in_pic_order_cnt_cycle exceeds 255"));
                }
                for _ in 0..cycle {
                    r.se()?; // offset_for_ref_frame
                }
            }
            2 => {}
            _ => return Err(bad("pic_order_cnt_type exceeds 2")),
        }
        r.ue()?; // max_num_ref_frames
        r.flag()?; // gaps_in_frame_num_value_allowed_flag
        let width_mbs = u64::from(r.ue()?) + 1;
        let height_map_units = u64::from(r.ue()?) + 1;
        let frame_mbs_only = r.flag()?;
        if !frame_mbs_only {
            r.flag()?; // mb_adaptive_frame_field_flag
        }
        r.flag()?; // direct_8x8_inference_flag
        let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
        if r.flag()? {
            (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        }
        // §7.4.2.1.1: crop units follow the chroma subsampling, and
        // count pairs of rows for field coding.
        let fields = 2 - u64::from(frame_mbs_only);
        let chroma_array_type = if separate_colour_plane { 0 } else { chroma_format_idc };
        let (unit_x, unit_y) = match chroma_array_type {
            1 => (2, 2 * fields),
            2 => (2, fields),
            _ => (1, fields),
        };
        let full_width = width_mbs * 16;
        let full_height = fields * height_map_units * 16;
        let crop_x = unit_x * (u64::from(left) + u64::from(right));
        let crop_y = unit_y * (u64::from(top) + u64::from(bottom));
        if crop_x >= full_width || crop_y >= full_height {
            return Err(bad("frame cropping removes the whole picture"));
        }
        let size = |full: u64, crop: u64| u32::try_from(full - crop).map_err(|_| bad("the picture size overflows"));
        Ok(H264Sps {
            profile_idc,
            constraint_flags,
            level_idc,
            id: id as u8,
            chroma_format_idc: chroma_format_idc as u8,
            frame_mbs_only,
            width: size(full_width, crop_x)?,
            height: size(full_height, crop_y)?,
        })
    }
}

/// Reads the bits of a raw byte sequence payload out of a NAL unit,
/// dropping emulation prevention bytes (ITU-T H.264 §7.4.1: a 0x03
/// after two zero bytes).
struct Rbsp<'a> {
    data: &'a [u8],
    pos: usize,
    zeros: u8,
    byte: u8,
    bits_left: u8,
}

impl<'a> Rbsp<'a> {
    fn new(data: &'a [u8]) -> Self {
        Rbsp {
            data,
            pos: 0,
            zeros: 0,
            byte: 0,
            bits_left: 0,
        }
    }

    fn next_byte(&mut self) -> Result<u8, PayloadError> {
        let b = *self.data.get(self.pos).ok_or(PayloadError::H264Sps {
            reason: "the NAL unit ends inside a field",
        })?;
        self.pos += 1;
        Ok(b)
    }

    fn flag(&mut self) -> Result<bool, PayloadError> {
        if self.bits_left == 0 {
            let mut b = self.next_byte()?;
            if self.zeros >= 2 && b == 3 {
                self.zeros = 0;
                b = self.next_byte()?;
            }
            self.zeros = if b == 0 { self.zeros.saturating_add(1) } else { 0 };
            self.byte = b;
            self.bits_left = 8;
        }
        self.bits_left -= 1;
        Ok(self.byte >> self.bits_left & 1 != 0)
    }

    /// u(n) for n up to 32.
    fn bits(&mut self, n: u32) -> Result<u64, PayloadError> {
        let mut v = 0;
        for _ in 0..n {
            v = v << 1 | u64::from(self.flag()?);
        }
        Ok(v)
    }

    /// §9.1: ue(v), up to 2^32 - 2.
    fn ue(&mut self) -> Result<u32, PayloadError> {
        let mut zeros = 0;
        while !self.flag()? {
            zeros += 1;
            if zeros > 31 {
                return Err(PayloadError::H264Sps {
                    reason: "an exp-Golomb code is longer than 32 bits",
                });
            }
        }
        // At most 2^31 - 1 + 2^31 - 1.
        Ok(((1u64 << zeros) - 1 + self.bits(zeros)?) as u32)
    }

    /// §9.1.1: se(v).
    fn se(&mut self) -> Result<i64, PayloadError> {
        let k = i64::from(self.ue()?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }

    /// §7.3.2.1.1.1: scaling_list(), read and thrown away.
    fn skip_scaling_list(&mut self, size: usize) -> Result<(), PayloadError> {
        let (mut last, mut next) = (8i64, 8i64);
        for _ in 0..size {
            if next != 0 {
                let delta = self.se()?;
                if !(-128..=127).contains(&delta) {
                    return Err(PayloadError::H264Sps {
                        reason: "delta_scale is outside -128..=127",
                    });
                }
                next = (last + delta).rem_euclid(256);
            }
            if next != 0 {
                last = next;
            }
        }
        Ok(())
    }
}
