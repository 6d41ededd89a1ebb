//! Reading exact amounts from an `impl Read`, telling where the input
//! ended apart from where it was cut short.

use std::io::{self, Read};

use crate::{Error, Result};

/// Reads all of `buf`, or nothing if the input has already ended
/// (`Ok(false)`); ending in between is [`Error::Truncated`].
pub(crate) fn read_record(r: &mut impl Read, buf: &mut [u8], what: &'static str, offset: u64) -> Result<bool> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    match n {
        0 => Ok(false),
        n if n == buf.len() => Ok(true),
        available => Err(Error::Truncated {
            what,
            offset,
            needed: buf.len(),
            available,
        }),
    }
}

/// Appends the next `len` bytes to `out`, growing it only as bytes
/// arrive, so a hostile length field cannot make it allocate more than
/// the input holds.
pub(crate) fn read_to_vec(
    r: &mut impl Read,
    len: usize,
    out: &mut Vec<u8>,
    what: &'static str,
    offset: u64,
) -> Result<()> {
    let available = r.by_ref().take(len as u64).read_to_end(out)?;
    if available < len {
        return Err(Error::Truncated {
            what,
            offset,
            needed: len,
            available,
        });
    }
    Ok(())
}
