//! Encoding and decoding: round trips, the RFC's length and padding
//! rules, and property tests that hostile bytes give errors, not panics.

use std::net::SocketAddr;

use natter_stun::*;
use proptest::prelude::*;

const TID: TransactionId = TransactionId([9; 12]);

fn request(method: Method) -> MessageType {
    MessageType::new(method, Class::Request)
}

#[test]
fn message_type_round_trips_every_method_and_class() {
    for m in 0..0x1000u16 {
        for class in [
            Class::Request,
            Class::Indication,
            Class::SuccessResponse,
            Class::ErrorResponse,
        ] {
            let t = MessageType::new(Method(m), class);
            assert_eq!(MessageType::from_u16(t.to_u16()), t);
            assert_eq!(t.to_u16() & 0xC000, 0);
        }
    }
    // RFC 8489 §6: Binding success response is 0x0101, error 0x0111.
    assert_eq!(
        MessageType::new(Method::BINDING, Class::SuccessResponse).to_u16(),
        0x0101
    );
    assert_eq!(MessageType::new(Method::BINDING, Class::ErrorResponse).to_u16(), 0x0111);
    assert_eq!(MessageType::new(Method::DATA, Class::Indication).to_u16(), 0x0017);
}

#[test]
fn turn_attributes_round_trip() {
    let peer: SocketAddr = "[2001:db8::1]:5000".parse().unwrap();
    let relay: SocketAddr = "203.0.113.9:49152".parse().unwrap();
    let mut buf = [0u8; 512];
    let mut w = MessageWriter::new(&mut buf, request(Method::ALLOCATE), TID).unwrap();
    w.add(&RequestedTransport::UDP).unwrap();
    w.add(&Lifetime(600)).unwrap();
    w.add(&XorPeerAddress(peer)).unwrap();
    w.add(&XorRelayedAddress(relay)).unwrap();
    w.add(&ChannelNumber(0x4001)).unwrap();
    w.add(&EvenPort { reserve: true }).unwrap();
    w.add(&DontFragment).unwrap();
    w.add(&ReservationToken([1, 2, 3, 4, 5, 6, 7, 8])).unwrap();
    w.add(&RequestedAddressFamily(AddressFamily::V6)).unwrap();
    w.add(&AdditionalAddressFamily(AddressFamily::V6)).unwrap();
    w.add(&ConnectionId(0xdeadbeef)).unwrap();
    w.add(&Data(b"hello")).unwrap();
    w.add(&Icmp {
        icmp_type: 3,
        code: 1,
        data: 7,
    })
    .unwrap();
    w.add(&AddressErrorCode {
        family: AddressFamily::V4,
        error: ErrorCode::INSUFFICIENT_CAPACITY,
    })
    .unwrap();
    w.add(&ChangeRequest {
        change_ip: true,
        change_port: false,
    })
    .unwrap();
    w.add(&ResponsePort(1234)).unwrap();
    w.add(&UseCandidate).unwrap();
    w.add(&IceControlling(42)).unwrap();
    w.add(&PasswordAlgorithms::new(&[
        PasswordAlgorithm::Sha256,
        PasswordAlgorithm::Md5,
    ]))
    .unwrap();
    w.add(&PasswordAlgorithm::Sha256).unwrap();
    w.add(&UserHash([7; 32])).unwrap();
    w.add(&UnknownAttributes::collect([0x0031, 0x0032, 0x0033])).unwrap();
    w.add(&ErrorCode::new(438, "Stale Nonce")).unwrap();
    w.add(&AlternateServer(relay)).unwrap();
    let n = w.finish();
    let msg = Message::decode(&buf[..n]).unwrap();
    assert_eq!(msg.require::<RequestedTransport>().unwrap(), RequestedTransport::UDP);
    assert_eq!(msg.require::<Lifetime>().unwrap(), Lifetime(600));
    assert_eq!(msg.require::<XorPeerAddress>().unwrap(), XorPeerAddress(peer));
    assert_eq!(msg.require::<XorRelayedAddress>().unwrap(), XorRelayedAddress(relay));
    assert_eq!(msg.require::<ChannelNumber>().unwrap(), ChannelNumber(0x4001));
    assert_eq!(msg.require::<EvenPort>().unwrap(), EvenPort { reserve: true });
    assert_eq!(msg.require::<DontFragment>().unwrap(), DontFragment);
    assert_eq!(msg.require::<ReservationToken>().unwrap().0, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(msg.require::<RequestedAddressFamily>().unwrap().0, AddressFamily::V6);
    assert_eq!(msg.require::<AdditionalAddressFamily>().unwrap().0, AddressFamily::V6);
    assert_eq!(msg.require::<ConnectionId>().unwrap(), ConnectionId(0xdeadbeef));
    assert_eq!(msg.require::<Data>().unwrap(), Data(b"hello"));
    assert_eq!(
        msg.require::<Icmp>().unwrap(),
        Icmp {
            icmp_type: 3,
            code: 1,
            data: 7
        }
    );
    let aec = msg.require::<AddressErrorCode>().unwrap();
    assert_eq!((aec.family, aec.error.code), (AddressFamily::V4, 508));
    assert_eq!(
        msg.require::<ChangeRequest>().unwrap(),
        ChangeRequest {
            change_ip: true,
            change_port: false
        }
    );
    assert_eq!(msg.require::<ResponsePort>().unwrap(), ResponsePort(1234));
    assert_eq!(msg.require::<UseCandidate>().unwrap(), UseCandidate);
    assert_eq!(msg.require::<IceControlling>().unwrap(), IceControlling(42));
    let algs = msg.require::<PasswordAlgorithms>().unwrap();
    assert_eq!(
        algs.iter().collect::<Vec<_>>(),
        [PasswordAlgorithm::Sha256, PasswordAlgorithm::Md5]
    );
    assert_eq!(msg.require::<PasswordAlgorithm>().unwrap(), PasswordAlgorithm::Sha256);
    assert_eq!(msg.require::<UserHash>().unwrap(), UserHash([7; 32]));
    assert_eq!(msg.require::<UnknownAttributes>().unwrap().types(), [0x31, 0x32, 0x33]);
    assert_eq!(msg.require::<ErrorCode>().unwrap(), ErrorCode::new(438, "Stale Nonce"));
    assert_eq!(msg.require::<AlternateServer>().unwrap(), AlternateServer(relay));
    assert_eq!(msg.unknown_comprehension_required().count(), 0);
}

#[test]
fn unknown_comprehension_required_attributes_are_reported() {
    let mut buf = [0u8; 64];
    let mut w = MessageWriter::new(&mut buf, request(Method::BINDING), TID).unwrap();
    w.add_raw(0x7777, b"x").unwrap();
    w.add_raw(0xC001, b"optional").unwrap();
    let n = w.finish();
    let msg = Message::decode(&buf[..n]).unwrap();
    assert_eq!(msg.unknown_comprehension_required().collect::<Vec<_>>(), [0x7777]);
}

#[test]
fn integrity_sha256_round_trips_and_rejects_wrong_keys() {
    let key = IntegrityKey::long_term("alice", "natter", "s3cret", PasswordAlgorithm::Sha256).unwrap();
    let mut buf = [0u8; 128];
    let mut w = MessageWriter::new(&mut buf, request(Method::REFRESH), TID).unwrap();
    w.add(&Username("alice")).unwrap();
    w.add_message_integrity_sha256(&key).unwrap();
    w.add_fingerprint().unwrap();
    let n = w.finish();
    let msg = Message::decode(&buf[..n]).unwrap();
    assert_eq!(msg.verify_integrity(&key).unwrap(), IntegrityKind::Sha256);
    let md5 = IntegrityKey::long_term("alice", "natter", "s3cret", PasswordAlgorithm::Md5).unwrap();
    assert_eq!(msg.verify_integrity(&md5), Err(Error::IntegrityMismatch));
}

#[test]
fn attributes_after_message_integrity_are_ignored() {
    let key = IntegrityKey::short_term("pw").unwrap();
    let mut buf = [0u8; 128];
    let mut w = MessageWriter::new(&mut buf, request(Method::BINDING), TID).unwrap();
    w.add(&Username("u")).unwrap();
    w.add_message_integrity(&key).unwrap();
    w.add(&Software("smuggled")).unwrap();
    let n = w.finish();
    let msg = Message::decode(&buf[..n]).unwrap();
    assert_eq!(msg.get::<Software>().unwrap(), None);
    assert_eq!(msg.require::<Username>().unwrap(), Username("u"));
    msg.verify_integrity(&key).unwrap();
}

#[test]
fn attribute_after_fingerprint_is_an_error() {
    let mut buf = [0u8; 64];
    let mut w = MessageWriter::new(&mut buf, request(Method::BINDING), TID).unwrap();
    w.add_fingerprint().unwrap();
    w.add(&Software("late")).unwrap();
    let n = w.finish();
    assert_eq!(
        Message::decode(&buf[..n]).unwrap_err(),
        Error::AttributeAfterFingerprint(attribute::SOFTWARE)
    );
}

#[test]
fn header_and_length_rules() {
    let mut buf = [0u8; 64];
    let mut w = MessageWriter::new(&mut buf, request(Method::BINDING), TID).unwrap();
    w.add(&Software("abc")).unwrap();
    let n = w.finish();
    let good = buf[..n].to_vec();
    assert!(Message::decode(&good).is_ok());
    assert_eq!(Message::decode(&good[..19]).unwrap_err(), Error::TooShort(19));
    assert!(matches!(
        Message::decode(&good[..n - 4]).unwrap_err(),
        Error::LengthMismatch { .. }
    ));
    let mut bad = good.clone();
    bad[4] = 0;
    assert!(matches!(Message::decode(&bad).unwrap_err(), Error::BadMagicCookie(_)));
    let mut bad = good.clone();
    bad[0] = 0x80;
    assert_eq!(Message::decode(&bad).unwrap_err(), Error::NotStun(0x80));
    let mut bad = good.clone();
    bad[3] = 6; // not a multiple of 4
    assert_eq!(Message::decode(&bad).unwrap_err(), Error::UnalignedLength(6));
    let mut bad = good.clone();
    bad[23] = 200; // SOFTWARE length overruns
    assert!(matches!(
        Message::decode(&bad).unwrap_err(),
        Error::AttributeOverrun { typ: 0x8022, .. }
    ));
    let mut tiny = [0u8; 30];
    assert!(matches!(
        MessageWriter::new(&mut tiny, request(Method::BINDING), TID)
            .unwrap()
            .add(&Software("too long for it")),
        Err(Error::BufferTooSmall { .. })
    ));
}

#[test]
fn invalid_attribute_values_are_typed_errors() {
    let mut buf = [0u8; 64];
    let mut w = MessageWriter::new(&mut buf, request(Method::ALLOCATE), TID).unwrap();
    w.add_raw(attribute::XOR_PEER_ADDRESS, &[0, 9, 0, 0, 1, 2, 3, 4])
        .unwrap();
    w.add_raw(attribute::ERROR_CODE, &[0, 0, 7, 0]).unwrap();
    w.add_raw(attribute::USERNAME, &[0xff, 0xfe]).unwrap();
    let n = w.finish();
    let msg = Message::decode(&buf[..n]).unwrap();
    assert!(matches!(
        msg.get::<XorPeerAddress>(),
        Err(Error::InvalidAttribute { typ: 0x0012, .. })
    ));
    assert!(matches!(
        msg.get::<ErrorCode>(),
        Err(Error::InvalidAttribute { typ: 0x0009, .. })
    ));
    assert!(matches!(
        msg.get::<Username>(),
        Err(Error::InvalidAttribute { typ: 0x0006, .. })
    ));
    assert_eq!(
        msg.require::<Lifetime>(),
        Err(Error::MissingAttribute(attribute::LIFETIME))
    );
}

#[test]
fn nonce_cookie_carries_security_features() {
    let f = SecurityFeatures {
        password_algorithms: true,
        username_anonymity: false,
    };
    let nonce = format!("{}abcdef", f.cookie());
    assert!(nonce.starts_with("obMatJos2"));
    assert_eq!(SecurityFeatures::from_nonce(&nonce), Some(f));
    assert_eq!(SecurityFeatures::from_nonce("plain-nonce"), None);
}

#[test]
fn userhash_and_opaque_string() {
    assert_eq!(opaque_string("alice").unwrap(), "alice");
    // RFC 8265 §4.2: non-ASCII spaces map to ASCII space.
    assert_eq!(opaque_string("a\u{00A0}b").unwrap(), "a b");
    assert_eq!(opaque_string(""), Err(Error::InvalidOpaqueString));
    assert_ne!(userhash("alice", "r").unwrap(), userhash("bob", "r").unwrap());
}

#[test]
fn channel_data_round_trip_and_padding() {
    let mut buf = [0u8; 16];
    let n = ChannelData {
        number: 0x4000,
        data: b"hello",
    }
    .encode(&mut buf, true)
    .unwrap();
    assert_eq!(n, 12);
    assert_eq!(&buf[..9], &[0x40, 0, 0, 5, b'h', b'e', b'l', b'l', b'o']);
    assert_eq!(
        ChannelData::decode(&buf[..n]).unwrap(),
        ChannelData {
            number: 0x4000,
            data: b"hello"
        }
    );
    assert_eq!(
        ChannelData {
            number: 0x4FFF,
            data: b"hello"
        }
        .encode(&mut buf, false)
        .unwrap(),
        9
    );
    assert!(ChannelData::decode(&[0x80, 0, 0, 0]).is_err());
    assert!(ChannelData::decode(&[0x40, 0, 0, 9, 1]).is_err());
    assert_eq!(stream_frame_len(&buf[..2]).unwrap(), None);
    assert_eq!(PacketKind::of(&buf), PacketKind::ChannelData);
}

#[test]
fn stream_framing_splits_stun_and_channel_data() {
    let mut stream = Vec::new();
    let mut buf = [0u8; 64];
    let n = MessageWriter::new(&mut buf, request(Method::BINDING), TID)
        .unwrap()
        .finish();
    stream.extend_from_slice(&buf[..n]);
    let n = ChannelData {
        number: 0x4001,
        data: b"abcde",
    }
    .encode(&mut buf, true)
    .unwrap();
    stream.extend_from_slice(&buf[..n]);
    assert_eq!(stream_frame_len(&stream).unwrap(), Some(20));
    assert_eq!(stream_frame_len(&stream[20..]).unwrap(), Some(12));
    assert_eq!(stream_frame_len(&stream[20..31]).unwrap(), None);
    // A TLS ClientHello on a plain TCP port is neither STUN nor ChannelData.
    assert!(stream_frame_len(&[0x16, 0x03, 0x01, 0x02, 0x00]).is_err());
}

fn arb_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
    ]
}

proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(msg) = Message::decode(&bytes) {
            let _ = msg.get::<XorMappedAddress>();
            let _ = msg.get::<ErrorCode>();
            let _ = msg.get::<PasswordAlgorithms>();
            let _ = msg.get::<UnknownAttributes>();
            let _ = msg.get::<Username>();
            let _ = msg.verify_integrity(&IntegrityKey::from_bytes(b"k"));
            let _ = msg.unknown_comprehension_required().count();
        }
        let _ = ChannelData::decode(&bytes);
        let _ = stream_frame_len(&bytes);
    }

    #[test]
    fn valid_headers_with_random_attributes_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..200), method in 0u16..0x1000
    ) {
        let mut bytes = vec![0u8; 20];
        let len = body.len() & !3;
        bytes[..2].copy_from_slice(&MessageType::new(Method(method), Class::Request).to_u16().to_be_bytes());
        bytes[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        bytes[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        bytes.extend_from_slice(&body[..len]);
        if let Ok(msg) = Message::decode(&bytes) {
            for a in msg.attributes() {
                prop_assert!(a.value.len() <= len);
            }
            let _ = msg.get::<AddressErrorCode>();
            let _ = msg.get::<ChannelNumber>();
            let _ = msg.get::<XorPeerAddress>();
        }
    }

    #[test]
    fn addresses_round_trip(addr in arb_addr(), tid in any::<[u8; 12]>()) {
        let mut buf = [0u8; 128];
        let mut w = MessageWriter::new(&mut buf, request(Method::BINDING), TransactionId(tid)).unwrap();
        w.add(&XorMappedAddress(addr)).unwrap();
        w.add(&MappedAddress(addr)).unwrap();
        let n = w.finish();
        let msg = Message::decode(&buf[..n]).unwrap();
        prop_assert_eq!(msg.require::<XorMappedAddress>().unwrap().0, addr);
        prop_assert_eq!(msg.require::<MappedAddress>().unwrap().0, addr);
    }

    #[test]
    fn integrity_detects_any_single_byte_change(pos in 0usize..48, flip in 1u8..=255) {
        let key = IntegrityKey::short_term("password").unwrap();
        let mut buf = [0u8; 128];
        let mut w = MessageWriter::new(&mut buf, request(Method::BINDING), TID).unwrap();
        w.add(&Username("user:name")).unwrap();
        w.add(&Priority(12345)).unwrap();
        w.add_message_integrity(&key).unwrap();
        let n = w.finish();
        let mut bytes = buf[..n].to_vec();
        let pos = pos % (n - 24);
        bytes[pos] ^= flip;
        if let Ok(msg) = Message::decode(&bytes) {
            prop_assert!(msg.verify_integrity(&key).is_err());
        }
    }

    #[test]
    fn channel_data_round_trips(number in 0x4000u16..=0x7FFF, data in proptest::collection::vec(any::<u8>(), 0..100), padded in any::<bool>()) {
        let mut buf = [0u8; 120];
        let n = ChannelData { number, data: &data }.encode(&mut buf, padded).unwrap();
        prop_assert_eq!(ChannelData::decode(&buf[..n]).unwrap(), ChannelData { number, data: &data });
        if padded {
            prop_assert_eq!(stream_frame_len(&buf[..n]).unwrap(), Some(n));
        }
    }
}
