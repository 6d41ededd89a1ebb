//! A TURN client's Allocate over UDP (RFC 8656 §7), for the tests that
//! allocate on `natter serve`'s embedded TURN server.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use natter_stun::{
    AddressFamily, Class, ErrorCode, IntegrityKey, Message, MessageType, MessageWriter, Method, Nonce, Realm,
    RequestedAddressFamily, RequestedTransport, TransactionId, Username,
};

/// How long an answer may take to arrive.
const WAIT: Duration = Duration::from_secs(5);

/// An Allocate for a UDP relay, asking for `family` when given
/// (REQUESTED-ADDRESS-FAMILY, RFC 8656 §18.6), and authenticated when
/// `auth` = (username, realm, nonce, key).
pub fn allocate(tid: u8, family: Option<AddressFamily>, auth: Option<(&str, &str, &str, &IntegrityKey)>) -> Vec<u8> {
    let mut out = vec![0u8; 512];
    let mut w = MessageWriter::new(
        &mut out,
        MessageType::new(Method::ALLOCATE, Class::Request),
        TransactionId([tid; 12]),
    )
    .unwrap();
    w.add(&RequestedTransport::UDP).unwrap();
    if let Some(family) = family {
        w.add(&RequestedAddressFamily(family)).unwrap();
    }
    if let Some((username, realm, nonce, key)) = auth {
        w.add(&Username(username)).unwrap();
        w.add(&Realm(realm)).unwrap();
        w.add(&Nonce(nonce)).unwrap();
        w.add_message_integrity(key).unwrap();
    }
    let n = w.finish();
    out.truncate(n);
    out
}

/// Sends `request` until an answer arrives (UDP may drop either way).
pub fn exchange(socket: &UdpSocket, to: SocketAddr, request: &[u8]) -> Vec<u8> {
    socket.set_read_timeout(Some(Duration::from_millis(250))).unwrap();
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 1500];
    loop {
        assert!(Instant::now() < deadline, "no answer from TURN at {to}");
        socket.send_to(request, to).unwrap();
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            assert_eq!(from, to);
            return buf[..n].to_vec();
        }
    }
}

/// The ERROR-CODE of a response, if it has one.
pub fn error_code(response: &[u8]) -> Option<u16> {
    let m = Message::decode(response).unwrap();
    m.get::<ErrorCode>().unwrap().map(|e| e.code)
}

/// The first Allocate (asking for `family` when given) is challenged:
/// 401 with the realm and a nonce (RFC 8489 §9.2.3), which it returns.
pub fn challenge(socket: &UdpSocket, turn: SocketAddr, family: Option<AddressFamily>) -> (String, String) {
    let response = exchange(socket, turn, &allocate(1, family, None));
    let m = Message::decode(&response).unwrap();
    assert_eq!(
        (m.class(), error_code(&response)),
        (Class::ErrorResponse, Some(401)),
        "the first Allocate is challenged"
    );
    let realm = m.require::<Realm>().expect("REALM in the 401").0.to_owned();
    let nonce = m.require::<Nonce>().expect("NONCE in the 401").0.to_owned();
    (realm, nonce)
}
