//! DCEP messages (RFC 8832 §5): arbitrary bytes give a message or an
//! error, never a panic, and what parses re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_sctp::dcep::{DataChannelOpen, DcepMessage};
use natter_sctp::{ChannelOptions, Ppid};

fuzz_target!(|data: &[u8]| {
    if let Some(&first) = data.first() {
        let _ = Ppid::from_value(u32::from(first)).map(|p| (p.is_text(), p.is_empty_message()));
    }
    let Ok(msg) = DcepMessage::parse(data) else {
        return;
    };
    assert_eq!(msg.encoded_len(), data.len());
    let mut buf = vec![0u8; data.len()];
    let n = msg.encode(&mut buf).expect("a parsed message re-encodes");
    assert_eq!(&buf[..n], data);
    if n > 0 {
        assert!(msg.encode(&mut buf[..n - 1]).is_err());
    }
    if let DcepMessage::Open(open) = msg {
        // The options it asks for map back to the same channel type.
        let options = ChannelOptions::from_open(&open);
        let (channel_type, parameter) = options.channel_type();
        assert_eq!(channel_type, open.channel_type);
        if channel_type.reliability() != natter_sctp::ReliabilityKind::Reliable {
            assert_eq!(parameter, open.reliability_parameter);
        }
        // Rebuilt from its fields, it encodes to the same bytes.
        let rebuilt = DataChannelOpen {
            channel_type,
            priority: options.priority,
            reliability_parameter: open.reliability_parameter,
            label: open.label,
            protocol: open.protocol,
        };
        assert_eq!(DcepMessage::Open(rebuilt).to_vec().expect("re-encodes"), data);
    }
});
