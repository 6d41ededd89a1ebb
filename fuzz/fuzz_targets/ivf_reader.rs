//! The IVF reader: arbitrary bytes give frames or an error, never a
//! panic, and the header and frames read before any error write out to
//! a file that reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_container::ivf::{IvfReader, IvfWriter};

fuzz_target!(|data: &[u8]| {
    let Ok(r) = IvfReader::new(data) else {
        return;
    };
    let header = *r.header();
    let frames: Vec<_> = r.map_while(Result::ok).collect();

    let mut w = IvfWriter::new(Vec::new(), &header).expect("a Vec takes the header");
    for f in &frames {
        w.write_frame(f.pts, &f.data).expect("a frame read fits the size field");
    }
    let file = w.finish().expect("a Vec flushes");
    let again = IvfReader::new(&file[..]).expect("the written header parses");
    assert_eq!(*again.header(), header);
    let again: Vec<_> = again.collect::<Result<_, _>>().expect("the written frames parse");
    assert_eq!(again, frames);
});
