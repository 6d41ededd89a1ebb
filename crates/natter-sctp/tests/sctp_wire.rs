//! natter's SCTP wire format (RFC 9260 §3): every chunk WebRTC uses is
//! written into a buffer and parsed back equal, with its parameters and
//! error causes; arbitrary bytes never panic the parser.

use natter_sctp::sctp::cause::ErrorCause;
use natter_sctp::sctp::chunk::*;
use natter_sctp::sctp::param::*;
use natter_sctp::sctp::wire::{FixedList, TlvList, UnknownAction};
use natter_sctp::sctp::*;
use proptest::prelude::*;

/// Parameters with owned bytes; [`ParamSpec::param`] borrows them.
#[derive(Debug, Clone)]
enum ParamSpec {
    Bytes(u8, Vec<u8>),
    Word(u8, u32),
    Streams(u8, u32, u32, u32, Vec<u16>),
    Response(u32, u32, Option<(u32, u32)>),
    AddStreams(bool, u32, u16),
    ForwardTsnSupported,
    Unknown(u16, Vec<u8>),
}

impl ParamSpec {
    fn param(&self) -> Param<'_> {
        match self {
            ParamSpec::Bytes(0, b) => Param::HeartbeatInfo(b),
            ParamSpec::Bytes(1, b) => Param::StateCookie(b),
            ParamSpec::Bytes(2, b) => Param::UnrecognizedParameter(b),
            ParamSpec::Bytes(_, b) => Param::SupportedExtensions(b),
            ParamSpec::Word(0, n) => Param::CookiePreservative(*n),
            ParamSpec::Word(1, n) => Param::SsnTsnReset { request_seq: *n },
            ParamSpec::Word(_, n) => Param::ZeroChecksumAcceptable { edmid: *n },
            ParamSpec::Streams(0, a, b, c, s) => Param::OutgoingSsnReset(OutgoingSsnReset {
                request_seq: *a,
                response_seq: *b,
                last_tsn: Tsn(*c),
                streams: FixedList::Items(s),
            }),
            ParamSpec::Streams(1, _, _, _, s) => Param::SupportedAddressTypes(FixedList::Items(s)),
            ParamSpec::Streams(_, a, _, _, s) => Param::IncomingSsnReset(IncomingSsnReset {
                request_seq: *a,
                streams: FixedList::Items(s),
            }),
            ParamSpec::Response(seq, result, tsns) => Param::ReconfigResponse(ReconfigResponse {
                response_seq: *seq,
                result: ReconfigResult::from_code(*result),
                next_tsns: tsns.map(|(a, b)| (Tsn(a), Tsn(b))),
            }),
            ParamSpec::AddStreams(true, seq, n) => Param::AddOutgoingStreams {
                request_seq: *seq,
                new_streams: *n,
            },
            ParamSpec::AddStreams(false, seq, n) => Param::AddIncomingStreams {
                request_seq: *seq,
                new_streams: *n,
            },
            ParamSpec::ForwardTsnSupported => Param::ForwardTsnSupported,
            ParamSpec::Unknown(ty, v) => Param::Unknown { ty: *ty, value: v },
        }
    }
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn param_spec() -> impl Strategy<Value = ParamSpec> + Clone {
    // Types that are none of those natter parses (IPv4, IPv6, ECN, AUTH
    // random, and types nobody assigned).
    let unknown = prop_oneof![
        Just(5u16),
        Just(6),
        Just(0x8000),
        Just(0x8002),
        Just(0x4123),
        Just(0xc006)
    ];
    prop_oneof![
        (0..4u8, bytes(40)).prop_map(|(k, b)| ParamSpec::Bytes(k, b)),
        (0..3u8, any::<u32>()).prop_map(|(k, n)| ParamSpec::Word(k, n)),
        (
            0..3u8,
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            proptest::collection::vec(any::<u16>(), 0..6)
        )
            .prop_map(|(k, a, b, c, s)| ParamSpec::Streams(k, a, b, c, s)),
        (
            any::<u32>(),
            0..8u32,
            proptest::option::of((any::<u32>(), any::<u32>()))
        )
            .prop_map(|(s, r, t)| ParamSpec::Response(s, r, t)),
        (any::<bool>(), any::<u32>(), any::<u16>()).prop_map(|(o, s, n)| ParamSpec::AddStreams(o, s, n)),
        Just(ParamSpec::ForwardTsnSupported),
        (unknown, bytes(20)).prop_map(|(t, b)| ParamSpec::Unknown(t, b)),
    ]
}

#[derive(Debug, Clone)]
enum CauseSpec {
    Stream(u16),
    Missing(Vec<u16>),
    Stale(u32),
    Empty(u8),
    Bytes(u8, Vec<u8>),
    NoUserData(u32),
    Other(u16, Vec<u8>),
}

impl CauseSpec {
    fn cause(&self) -> ErrorCause<'_> {
        match self {
            CauseSpec::Stream(id) => ErrorCause::InvalidStreamIdentifier(*id),
            CauseSpec::Missing(l) => ErrorCause::MissingMandatoryParameter(FixedList::Items(l)),
            CauseSpec::Stale(n) => ErrorCause::StaleCookie { staleness_us: *n },
            CauseSpec::Empty(0) => ErrorCause::OutOfResource,
            CauseSpec::Empty(1) => ErrorCause::InvalidMandatoryParameter,
            CauseSpec::Empty(_) => ErrorCause::CookieWhileShuttingDown,
            CauseSpec::Bytes(0, b) => ErrorCause::UnrecognizedChunkType(b),
            CauseSpec::Bytes(1, b) => ErrorCause::UnrecognizedParameters(b),
            CauseSpec::Bytes(2, b) => ErrorCause::UserInitiatedAbort(b),
            CauseSpec::Bytes(_, b) => ErrorCause::ProtocolViolation(b),
            CauseSpec::NoUserData(t) => ErrorCause::NoUserData(Tsn(*t)),
            CauseSpec::Other(code, b) => ErrorCause::Other { code: *code, info: b },
        }
    }
}

fn cause_spec() -> impl Strategy<Value = CauseSpec> {
    prop_oneof![
        any::<u16>().prop_map(CauseSpec::Stream),
        proptest::collection::vec(any::<u16>(), 0..5).prop_map(CauseSpec::Missing),
        any::<u32>().prop_map(CauseSpec::Stale),
        (0..3u8).prop_map(CauseSpec::Empty),
        (0..4u8, bytes(30)).prop_map(|(k, b)| CauseSpec::Bytes(k, b)),
        any::<u32>().prop_map(CauseSpec::NoUserData),
        (prop_oneof![Just(5u16), Just(11), Just(0x100), Just(0xffff)], bytes(12))
            .prop_map(|(c, b)| CauseSpec::Other(c, b)),
    ]
}

/// A chunk with owned parts.
#[derive(Debug, Clone)]
enum ChunkSpec {
    Data(u8, u32, u16, u16, u32, Vec<u8>),
    IData(u8, u32, u16, u32, u32, Vec<u8>),
    Init(bool, [u32; 3], u16, u16, Vec<ParamSpec>),
    Sack(u32, u32, Vec<(u16, u16)>, Vec<u32>),
    Heartbeat(bool, Vec<ParamSpec>),
    Causes(u8, Vec<CauseSpec>),
    Shutdown(u32),
    Empty(u8),
    CookieEcho(Vec<u8>),
    ForwardTsn(u32, Vec<(u16, u16)>),
    IForwardTsn(u32, Vec<(u16, bool, u32)>),
    ReConfig(Vec<ParamSpec>),
    Unknown(u8, u8, Vec<u8>),
}

/// Builds the chunk a spec describes and hands it to `f`.
fn with_chunk<R>(spec: &ChunkSpec, f: impl FnOnce(Chunk<'_>) -> R) -> R {
    let params: Vec<Param<'_>>;
    let causes: Vec<ErrorCause<'_>>;
    let gaps: Vec<GapAckBlock>;
    let fwd: Vec<SkippedStream>;
    let ifwd: Vec<SkippedMessage>;
    let chunk = match spec {
        ChunkSpec::Data(flags, tsn, stream, ssn, ppid, payload) => Chunk::Data(Data {
            flags: flags_of(*flags),
            tsn: Tsn(*tsn),
            stream: *stream,
            ssn: *ssn,
            ppid: *ppid,
            payload,
        }),
        ChunkSpec::IData(flags, tsn, stream, mid, ppid_or_fsn, payload) => Chunk::IData(IData {
            flags: flags_of(*flags),
            tsn: Tsn(*tsn),
            stream: *stream,
            mid: *mid,
            ppid_or_fsn: *ppid_or_fsn,
            payload,
        }),
        ChunkSpec::Init(ack, [tag, rwnd, tsn], os, is, p) => {
            params = p.iter().map(ParamSpec::param).collect();
            let init = Init {
                initiate_tag: *tag,
                a_rwnd: *rwnd,
                outbound_streams: *os,
                inbound_streams: *is,
                initial_tsn: Tsn(*tsn),
                params: TlvList::Items(&params),
            };
            if *ack {
                Chunk::InitAck(init)
            } else {
                Chunk::Init(init)
            }
        }
        ChunkSpec::Sack(cum, rwnd, g, dups) => {
            gaps = g.iter().map(|&(start, end)| GapAckBlock { start, end }).collect();
            Chunk::Sack(Sack {
                cumulative_tsn_ack: Tsn(*cum),
                a_rwnd: *rwnd,
                gap_blocks: FixedList::Items(&gaps),
                duplicates: FixedList::Items(dups),
            })
        }
        ChunkSpec::Heartbeat(ack, p) => {
            params = p.iter().map(ParamSpec::param).collect();
            if *ack {
                Chunk::HeartbeatAck(TlvList::Items(&params))
            } else {
                Chunk::Heartbeat(TlvList::Items(&params))
            }
        }
        ChunkSpec::Causes(kind, c) => {
            causes = c.iter().map(CauseSpec::cause).collect();
            match kind {
                0 => Chunk::Error(TlvList::Items(&causes)),
                k => Chunk::Abort {
                    reflected: *k == 1,
                    causes: TlvList::Items(&causes),
                },
            }
        }
        ChunkSpec::Shutdown(cum) => Chunk::Shutdown {
            cumulative_tsn_ack: Tsn(*cum),
        },
        ChunkSpec::Empty(0) => Chunk::ShutdownAck,
        ChunkSpec::Empty(1) => Chunk::CookieAck,
        ChunkSpec::Empty(k) => Chunk::ShutdownComplete { reflected: *k == 2 },
        ChunkSpec::CookieEcho(c) => Chunk::CookieEcho(c),
        ChunkSpec::ForwardTsn(cum, s) => {
            fwd = s.iter().map(|&(stream, ssn)| SkippedStream { stream, ssn }).collect();
            Chunk::ForwardTsn(ForwardTsn {
                new_cumulative_tsn: Tsn(*cum),
                skipped: FixedList::Items(&fwd),
            })
        }
        ChunkSpec::IForwardTsn(cum, s) => {
            ifwd = s
                .iter()
                .map(|&(stream, unordered, mid)| SkippedMessage { stream, unordered, mid })
                .collect();
            Chunk::IForwardTsn(ForwardTsn {
                new_cumulative_tsn: Tsn(*cum),
                skipped: FixedList::Items(&ifwd),
            })
        }
        ChunkSpec::ReConfig(p) => {
            params = p.iter().map(ParamSpec::param).collect();
            Chunk::ReConfig(TlvList::Items(&params))
        }
        ChunkSpec::Unknown(ty, flags, v) => Chunk::Unknown {
            ty: *ty,
            flags: *flags,
            value: v,
        },
    };
    f(chunk)
}

fn flags_of(bits: u8) -> DataFlags {
    DataFlags {
        immediate: bits & 8 != 0,
        unordered: bits & 4 != 0,
        beginning: bits & 2 != 0,
        end: bits & 1 != 0,
    }
}

fn chunk_spec() -> impl Strategy<Value = ChunkSpec> {
    let params = proptest::collection::vec(param_spec(), 0..5);
    // Types of none of the chunks natter parses (ECNE, CWR, AUTH, ASCONF
    // ACK, PAD, ASCONF, unassigned).
    let unknown = prop_oneof![
        Just(12u8),
        Just(13),
        Just(15),
        Just(0x80),
        Just(0x84),
        Just(0xc1),
        Just(0x7f)
    ];
    prop_oneof![
        (
            0..16u8,
            any::<u32>(),
            any::<u16>(),
            any::<u16>(),
            any::<u32>(),
            bytes(64)
        )
            .prop_map(|(f, t, s, n, p, b)| ChunkSpec::Data(f, t, s, n, p, b)),
        (
            0..16u8,
            any::<u32>(),
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
            bytes(64)
        )
            .prop_map(|(f, t, s, m, p, b)| ChunkSpec::IData(f, t, s, m, p, b)),
        (
            any::<bool>(),
            any::<[u32; 3]>(),
            any::<u16>(),
            any::<u16>(),
            params.clone()
        )
            .prop_map(|(a, w, o, i, p)| ChunkSpec::Init(a, w, o, i, p)),
        (
            any::<u32>(),
            any::<u32>(),
            proptest::collection::vec(any::<(u16, u16)>(), 0..8),
            proptest::collection::vec(any::<u32>(), 0..8)
        )
            .prop_map(|(c, r, g, d)| ChunkSpec::Sack(c, r, g, d)),
        (any::<bool>(), params.clone()).prop_map(|(a, p)| ChunkSpec::Heartbeat(a, p)),
        (0..3u8, proptest::collection::vec(cause_spec(), 0..4)).prop_map(|(k, c)| ChunkSpec::Causes(k, c)),
        any::<u32>().prop_map(ChunkSpec::Shutdown),
        (0..4u8).prop_map(ChunkSpec::Empty),
        bytes(100).prop_map(ChunkSpec::CookieEcho),
        (any::<u32>(), proptest::collection::vec(any::<(u16, u16)>(), 0..6))
            .prop_map(|(c, s)| ChunkSpec::ForwardTsn(c, s)),
        (any::<u32>(), proptest::collection::vec(any::<(u16, bool, u32)>(), 0..6))
            .prop_map(|(c, s)| ChunkSpec::IForwardTsn(c, s)),
        proptest::collection::vec(param_spec(), 1..3).prop_map(ChunkSpec::ReConfig),
        (unknown, any::<u8>(), bytes(30)).prop_map(|(t, f, b)| ChunkSpec::Unknown(t, f, b)),
    ]
}

const HEADER: CommonHeader = CommonHeader {
    source_port: 5000,
    destination_port: 5000,
    verification_tag: 0x1234_5678,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Write a packet of chunks, parse it back: the same header and the
    /// same chunks, in order, with either checksum mode.
    #[test]
    fn every_chunk_round_trips(specs in proptest::collection::vec(chunk_spec(), 1..4), zero in any::<bool>()) {
        let mode = if zero { ChecksumMode::ZeroAcceptable } else { ChecksumMode::Crc32c };
        let mut buf = vec![0u8; 4096];
        let mut w = PacketWriter::new(&mut buf, HEADER).unwrap();
        for spec in &specs {
            with_chunk(spec, |c| w.push(&c)).unwrap();
        }
        let n = w.finish(mode);
        prop_assert_eq!(n % 4, 0);
        let packet = Packet::parse(&buf[..n], mode).unwrap();
        prop_assert_eq!(packet.header, HEADER);
        let raw: Vec<_> = packet.chunks().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(raw.len(), specs.len());
        for (spec, raw) in specs.iter().zip(&raw) {
            let parsed = raw.parse().unwrap();
            with_chunk(spec, |c| {
                prop_assert_eq!(raw.ty, c.chunk_type());
                prop_assert_eq!(parsed, c);
                Ok(())
            })?;
        }
    }

    /// Whatever the bytes, parsing returns; with the checksum made right,
    /// the chunk and parameter parsers see them too.
    #[test]
    fn arbitrary_bytes_never_panic(mut b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Packet::parse(&b, ChecksumMode::Crc32c);
        if b.len() >= 12 {
            let sum = packet::crc32c(&b);
            b[8..12].copy_from_slice(&sum.to_le_bytes());
            let p = Packet::parse(&b, ChecksumMode::Crc32c).unwrap();
            for raw in p.chunks().flatten() {
                if let Ok(Chunk::Init(init) | Chunk::InitAck(init)) = raw.parse() {
                    let _ = (init.state_cookie(), init.zero_checksum_edmid(), init.params.iter().count());
                }
            }
        }
    }

    /// A chunk's value with random bytes after a known type's header.
    #[test]
    fn arbitrary_values_of_known_types_never_panic(ty in prop_oneof![0u8..16, Just(0x40u8), Just(0x82), Just(0xc0), Just(0xc2)], flags: u8, v in bytes(80)) {
        if let Ok(c) = Chunk::parse(ty, flags, &v) {
            // Whatever parsed writes back to the same length.
            prop_assert_eq!(c.value_len() <= v.len() + 3, true);
        }
    }
}

#[test]
fn a_bad_chunk_length_is_an_error_that_says_where() {
    let mut buf = [0u8; 32];
    let mut w = PacketWriter::new(&mut buf, HEADER).unwrap();
    w.push(&Chunk::CookieAck).unwrap();
    w.push(&Chunk::ShutdownAck).unwrap();
    let n = w.finish(ChecksumMode::Crc32c);
    // Claim the second chunk is 9 bytes long: it overruns the packet.
    buf[18..20].copy_from_slice(&9u16.to_be_bytes());
    let sum = packet::crc32c(&buf[..n]);
    buf[8..12].copy_from_slice(&sum.to_le_bytes());
    let p = Packet::parse(&buf[..n], ChecksumMode::Crc32c).unwrap();
    let got: Vec<_> = p.chunks().collect();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].unwrap().parse().unwrap(), Chunk::CookieAck);
    assert_eq!(
        got[1],
        Err(WireError::ChunkLength {
            ty: SHUTDOWN_ACK,
            offset: 16,
            length: 9,
            available: 4
        })
    );
}

#[test]
fn a_sack_whose_counts_overrun_is_rejected() {
    // cum 1, a_rwnd 2, 3 gap blocks claimed, none there.
    let v = [0, 0, 0, 1, 0, 0, 0, 2, 0, 3, 0, 0];
    assert!(matches!(
        Chunk::parse(SACK, 0, &v),
        Err(WireError::Chunk { ty: SACK, .. })
    ));
}

#[test]
fn unknown_types_act_by_their_upper_two_bits() {
    assert_eq!(
        UnknownAction::for_chunk(0x3f),
        UnknownAction {
            skip: false,
            report: false
        }
    );
    assert_eq!(
        UnknownAction::for_chunk(0x7f),
        UnknownAction {
            skip: false,
            report: true
        }
    );
    assert_eq!(
        UnknownAction::for_chunk(0xbf),
        UnknownAction {
            skip: true,
            report: false
        }
    );
    assert_eq!(
        UnknownAction::for_chunk(0xff),
        UnknownAction {
            skip: true,
            report: true
        }
    );
    assert_eq!(
        UnknownAction::for_param(0x4001),
        UnknownAction {
            skip: false,
            report: true
        }
    );
    assert_eq!(
        UnknownAction::for_param(0xc006),
        UnknownAction {
            skip: true,
            report: true
        }
    );
}

#[test]
fn an_init_ack_as_chromium_sends_it() {
    // INIT ACK: tag, a_rwnd, streams, TSN; then a cookie, Supported
    // Extensions (FORWARD TSN, RE-CONFIG, I-DATA), Forward-TSN-Supported
    // and Zero Checksum Acceptable with the DTLS method.
    let exts = [FORWARD_TSN, RE_CONFIG, I_DATA];
    let params = [
        Param::StateCookie(b"cookie!"),
        Param::SupportedExtensions(&exts),
        Param::ForwardTsnSupported,
        Param::ZeroChecksumAcceptable {
            edmid: EDMID_SCTP_OVER_DTLS,
        },
    ];
    let init = Init {
        initiate_tag: 9,
        a_rwnd: 131_072,
        outbound_streams: 1024,
        inbound_streams: 1024,
        initial_tsn: Tsn(77),
        params: TlvList::Items(&params),
    };
    let mut buf = [0u8; 128];
    let mut w = PacketWriter::new(&mut buf, HEADER).unwrap();
    w.push(&Chunk::InitAck(init)).unwrap();
    let n = w.finish(ChecksumMode::Crc32c);
    // 12 header + 20 fixed + cookie 4+7+1 pad + ext 4+3+1 + fwd 4 + zc 8.
    assert_eq!(n, 12 + 20 + 12 + 8 + 4 + 8);
    let p = Packet::parse(&buf[..n], ChecksumMode::Crc32c).unwrap();
    let Chunk::InitAck(got) = p.chunks().next().unwrap().unwrap().parse().unwrap() else {
        panic!("not an INIT ACK")
    };
    assert_eq!(got.state_cookie(), Some(&b"cookie!"[..]));
    assert!(got.supports_chunk(I_DATA) && got.supports_chunk(RE_CONFIG) && !got.supports_chunk(ASCONF));
    assert!(got.forward_tsn_supported());
    assert_eq!(got.zero_checksum_edmid(), Some(EDMID_SCTP_OVER_DTLS));
}

/// ASCONF (RFC 5061), which natter does not support.
const ASCONF: u8 = 0xc1;
