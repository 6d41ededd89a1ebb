//! The page checksum of RFC 3533 §6: CRC-32 with generator polynomial
//! 0x04c11db7, initial value 0, no reflection and no final XOR. It is
//! not the reflected CRC-32 of zlib, so `crc32fast` cannot compute it.

const POLYNOMIAL: u32 = 0x04c1_1db7;

/// One entry per value of the top byte, most significant bit first.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ POLYNOMIAL
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// Continues the checksum `crc` over `data`; start with 0.
pub(crate) fn update(crc: u32, data: &[u8]) -> u32 {
    data.iter()
        .fold(crc, |crc, &b| (crc << 8) ^ TABLE[usize::from((crc >> 24) as u8 ^ b)])
}

#[cfg(test)]
mod tests {
    use super::update;

    #[test]
    fn check_value() {
        // CRC-32/POSIX (cksum) has the same polynomial and a final XOR of
        // all ones; its check value over "123456789" is 0x765e7680.
        assert_eq!(update(0, b"123456789"), 0x765e_7680 ^ 0xffff_ffff);
    }

    #[test]
    fn continues_across_calls() {
        assert_eq!(update(update(0, b"Ogg"), b"S page"), update(0, b"OggS page"));
    }
}
