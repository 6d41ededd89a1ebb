//! SPED (draft-hancke-webrtc-sped) in natter-ice: arbitrary bytes as a
//! STUN message whose META-DTLS-IN-STUN and -ACKNOWLEDGEMENT attributes
//! go to the agent's SPED state, in every state it can be in; a value
//! either decodes (and the acknowledgements re-encode unchanged) or is
//! dropped and counted, never a panic, and only DTLS reaches DTLS.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_ice::sped::{DtlsInStun, DtlsInStunAck, Sped, DTLS_IN_STUN, DTLS_IN_STUN_ACK};
use natter_stun::{Attribute, Message};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(msg) = Message::decode(rest) else {
        return;
    };
    let mut sped = Sped::new();
    // Our own flight pending (the fuzzed bytes as a datagram), and the
    // handshake possibly over, before the peer's attributes arrive.
    sped.capture(rest);
    sped.flush();
    if mode & 1 == 1 {
        sped.handshake_complete(mode & 2 == 2, mode & 4 == 4);
    }
    let data_attr = msg.has(DTLS_IN_STUN).then(|| msg.require::<DtlsInStun>());
    let ack_attr = msg.has(DTLS_IN_STUN_ACK).then(|| msg.require::<DtlsInStunAck>());
    if let Some(Ok(ack)) = &ack_attr {
        let mut out = vec![0u8; ack.value_len()];
        ack.encode(&mut out, &msg.transaction_id());
        let raw = msg
            .attributes()
            .find(|a| a.typ == DTLS_IN_STUN_ACK)
            .expect("decoded from it");
        assert_eq!(out, raw.value);
    }
    let malformed = u64::from(matches!(data_attr, Some(Err(_)))) + u64::from(matches!(ack_attr, Some(Err(_))));
    let active = sped.is_active();
    sped.on_received(data_attr, ack_attr);
    if active {
        assert_eq!(sped.stats().malformed, malformed);
    }
    while let Some(packet) = sped.poll_dtls() {
        assert!((20..=63).contains(&packet[0]), "only DTLS goes to DTLS");
    }
    let _ = sped.to_send();
});
