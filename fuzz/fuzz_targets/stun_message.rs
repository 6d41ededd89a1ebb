//! The STUN decoder and every typed attribute decoder: arbitrary bytes
//! give a value or an error, never a panic, and what decodes re-encodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_stun::*;

fuzz_target!(|data: &[u8]| {
    let _ = stream_frame_len(data);
    let Ok(msg) = Message::decode(data) else {
        return;
    };
    let _ = msg.get::<MappedAddress>();
    let _ = msg.get::<XorMappedAddress>();
    let _ = msg.get::<XorPeerAddress>();
    let _ = msg.get::<XorRelayedAddress>();
    let _ = msg.get::<Username>();
    let _ = msg.get::<Realm>();
    let _ = msg.get::<Nonce>();
    let _ = msg.get::<ErrorCode>();
    let _ = msg.get::<AddressErrorCode>();
    let _ = msg.get::<UnknownAttributes>();
    let _ = msg.get::<PasswordAlgorithms>();
    let _ = msg.get::<PasswordAlgorithm>();
    let _ = msg.get::<ChannelNumber>();
    let _ = msg.get::<Lifetime>();
    let _ = msg.get::<EvenPort>();
    let _ = msg.get::<RequestedTransport>();
    let _ = msg.get::<RequestedAddressFamily>();
    let _ = msg.get::<AdditionalAddressFamily>();
    let _ = msg.get::<ReservationToken>();
    let _ = msg.get::<ConnectionId>();
    let _ = msg.get::<Icmp>();
    let _ = msg.get::<ChangeRequest>();
    let _ = msg.get::<UserHash>();
    let _ = msg.unknown_comprehension_required().count();
    let _ = msg.verify_integrity(&IntegrityKey::from_bytes(b"fuzz"));
    // Every attribute that decoded is written back unchanged.
    let mut buf = vec![0u8; data.len() + 64];
    let mut w = MessageWriter::new(&mut buf, msg.message_type(), msg.transaction_id()).expect("header fits");
    for a in msg.attributes() {
        w.add_raw(a.typ, a.value).expect("attribute fits");
    }
    let n = w.finish();
    let again = Message::decode(&buf[..n]).expect("re-encoded message decodes");
    assert_eq!(again.attributes().count(), msg.attributes().count());
});
