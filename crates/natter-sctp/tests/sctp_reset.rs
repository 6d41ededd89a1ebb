//! natter's own SCTP resetting streams (RFC 6525) as WebRTC closes a data
//! channel (RFC 8831 §6.7): the request goes only once everything sent on
//! the stream is acknowledged (§5.1.2), so the peer delivers it all and
//! resets at once; each side then resets its own outgoing stream, the
//! streams number from 0 again; a lost request or answer is recovered on
//! the request's timer (§5.1.1); a request whose data has not all
//! arrived waits ("In progress", §5.2.2 E2); wrong sequence numbers and
//! requests WebRTC does not use are answered (§5.2.1). Two natter
//! associations on the in-memory wire under a virtual clock, and natter
//! against sctp-proto closing data channels.

mod sctp_support;

use std::time::Duration;

use natter_sctp::sctp::association::{Event, ResetError, SendError};
use natter_sctp::sctp::chunk::*;
use natter_sctp::sctp::param::*;
use natter_sctp::sctp::wire::{FixedList, Tlv, TlvList};
use natter_sctp::sctp::Tsn;
use proptest::prelude::*;
use sctp_support::{chunks_of, dcep_open, packet, random_loss, Natter, Side, Wire};

/// A RE-CONFIG parameter that crossed the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Request { seq: u32, last_tsn: u32, streams: Vec<u16> },
    Response { seq: u32, result: ReconfigResult },
    Other(u16),
}

fn reconfig_params(bytes: &[u8]) -> Vec<Seen> {
    chunks_of(bytes, |c| match c {
        Chunk::ReConfig(params) => Some(
            params
                .iter()
                .map(|p| match p {
                    Param::OutgoingSsnReset(r) => Seen::Request {
                        seq: r.request_seq,
                        last_tsn: r.last_tsn.0,
                        streams: r.streams.iter().collect(),
                    },
                    Param::ReconfigResponse(r) => Seen::Response {
                        seq: r.response_seq,
                        result: r.result,
                    },
                    other => Seen::Other(other.tlv_type()),
                })
                .collect::<Vec<_>>(),
        ),
        _ => None,
    })
    .concat()
}

/// The RE-CONFIG parameters one side sent, lost or not, in order.
fn reconfigs<A: Side, B: Side>(w: &Wire<A, B>, from_a: bool) -> Vec<Seen> {
    w.wire
        .iter()
        .filter(|s| s.from_a == from_a)
        .flat_map(|s| reconfig_params(&s.bytes))
        .collect()
}

/// The TSNs of DATA on `stream` that a side sent.
fn data_tsns<A: Side, B: Side>(w: &Wire<A, B>, from_a: bool, stream: u16) -> Vec<(u32, u16)> {
    w.wire
        .iter()
        .filter(|s| s.from_a == from_a)
        .flat_map(|s| {
            chunks_of(&s.bytes, |c| match c {
                Chunk::Data(d) if d.stream == stream => Some((d.tsn.0, d.ssn)),
                _ => None,
            })
        })
        .collect()
}

fn events(n: &Natter) -> Vec<Event> {
    n.events.iter().map(|(_, e)| *e).collect()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect()
}

/// RFC 8831 §6.7 from both ends: a closes stream 3 with data still
/// queued; b delivers all of it, sees the reset and resets its side; both
/// hear their reset completed, and stream 3 starts again from SSN 0.
#[test]
fn closing_a_stream_delivers_its_data_then_resets_both_ways() {
    let mut w = sctp_support::natter_pair();
    let messages: Vec<Vec<u8>> = (0..5).map(|i| pattern(20_000, i)).collect();
    for m in &messages {
        w.a.assoc.send(3, 53, false, m).unwrap();
    }
    w.a.assoc.send(4, 51, false, b"other stream").unwrap();
    let now = w.now;
    w.a.assoc.reset_streams(now, &[3]).unwrap();
    assert_eq!(
        w.a.assoc.send(3, 53, false, b"too late"),
        Err(SendError::StreamResetting(3))
    );
    w.a.assoc.send(4, 51, false, b"still open").unwrap();
    w.run_for(Duration::from_secs(1));

    let got: Vec<(u16, Vec<u8>)> = std::iter::from_fn(|| w.b.assoc.poll_message())
        .map(|m| (m.stream, m.data))
        .collect();
    let on_3: Vec<&Vec<u8>> = got.iter().filter(|(s, _)| *s == 3).map(|(_, d)| d).collect();
    assert_eq!(
        on_3,
        messages.iter().collect::<Vec<_>>(),
        "everything before the reset, in order"
    );
    assert_eq!(got.iter().filter(|(s, _)| *s == 4).count(), 2);
    assert_eq!(events(&w.b)[1..], [Event::IncomingStreamReset(3)]);

    // The request went after the SACK of stream 3's last DATA: its Last
    // Assigned TSN covers them, and b performed it at once.
    let highest = data_tsns(&w, true, 3).iter().map(|(t, _)| *t).max().unwrap();
    let requests = reconfigs(&w, true);
    let [Seen::Request { seq, last_tsn, streams }] = requests.as_slice() else {
        panic!("one request: {requests:?}");
    };
    assert_eq!(
        *seq,
        w.b.assoc.peer().unwrap().initial_tsn.0,
        "RFC 6525 §4.1: numbered from the Initial TSN"
    );
    assert!(!Tsn(*last_tsn).is_before(Tsn(highest)));
    assert_eq!(streams, &[3]);
    assert_eq!(
        reconfigs(&w, false),
        [Seen::Response {
            seq: *seq,
            result: ReconfigResult::SuccessPerformed
        }]
    );
    assert_eq!(events(&w.a)[1..], [Event::OutgoingStreamReset(3)]);

    // b closes its side too (what a data channel does on the event).
    let now = w.now;
    w.b.assoc.reset_streams(now, &[3]).unwrap();
    w.run_for(Duration::from_secs(1));
    assert_eq!(
        events(&w.b)[1..],
        [Event::IncomingStreamReset(3), Event::OutgoingStreamReset(3)]
    );
    assert_eq!(
        events(&w.a)[1..],
        [Event::OutgoingStreamReset(3), Event::IncomingStreamReset(3)]
    );
    let b_request = reconfigs(&w, false)
        .into_iter()
        .find(|s| matches!(s, Seen::Request { .. }))
        .unwrap();
    let Seen::Request { seq: b_seq, .. } = b_request else {
        unreachable!()
    };
    assert_eq!(b_seq, w.a.assoc.peer().unwrap().initial_tsn.0);

    // The stream is reused: SSNs from 0 again, and b delivers.
    w.a.assoc.send(3, 51, false, b"a new channel").unwrap();
    w.run_for(Duration::from_secs(1));
    assert_eq!(data_tsns(&w, true, 3).last().unwrap().1, 0);
    let m = w.b.assoc.poll_message().unwrap();
    assert_eq!((m.stream, m.data.as_slice()), (3, &b"a new channel"[..]));
}

/// RFC 6525 §5.1.1: a lost request goes again with the same number when
/// its timer fires; a lost answer is given again, the reset performed
/// once.
#[test]
fn lost_requests_and_answers_are_recovered_on_the_timer() {
    for lose_request in [true, false] {
        let mut w = sctp_support::natter_pair();
        w.a.assoc.send(2, 51, false, b"last words").unwrap();
        w.run_for(Duration::from_secs(1));
        let mut lost = false;
        w.drop = Box::new(move |from_a, types, _| {
            let hit = types.contains(&RE_CONFIG) && from_a == lose_request && !lost;
            lost |= hit;
            hit
        });
        let now = w.now;
        w.a.assoc.reset_streams(now, &[2]).unwrap();
        w.run_for(Duration::from_secs(10));
        let requests: Vec<Seen> = reconfigs(&w, true);
        assert_eq!(requests.len(), 2, "{requests:?}");
        assert_eq!(requests[0], requests[1], "the same request again");
        let again = w
            .wire
            .iter()
            .filter(|s| s.from_a && s.chunk_types() == [RE_CONFIG])
            .map(|s| s.at);
        let times: Vec<_> = again.collect();
        assert!(times[1] - times[0] >= Duration::from_secs(1), "after the RTO");
        let answers = reconfigs(&w, false);
        let expected = if lose_request { 1 } else { 2 };
        assert_eq!(answers.len(), expected, "{answers:?}");
        assert!(answers.iter().all(|a| matches!(
            a,
            Seen::Response {
                result: ReconfigResult::SuccessPerformed,
                ..
            }
        )));
        assert_eq!(events(&w.b)[1..], [Event::IncomingStreamReset(2)], "performed once");
        assert_eq!(events(&w.a)[1..], [Event::OutgoingStreamReset(2)]);
    }
}

/// RFC 6525 §5.2.2 E2, against a sender that asks before its data is
/// acknowledged (as usrsctp and dcsctp do): b answers "In progress",
/// delivers the data when it comes, resets the stream then and answers
/// the repeated request "Performed".
#[test]
fn a_request_ahead_of_its_data_waits_for_it() {
    let mut w = sctp_support::natter_pair();
    // a's DATA is lost for a while: b's cumulative TSN stays behind.
    w.drop = Box::new(|from_a, types, _| from_a && types.contains(&DATA));
    w.a.assoc.send(5, 51, false, b"one").unwrap();
    w.a.assoc.send(5, 51, false, b"two").unwrap();
    w.run_for(Duration::from_millis(50));
    let tsns = data_tsns(&w, true, 5);
    let last = Tsn(tsns.iter().map(|(t, _)| *t).max().unwrap());
    let seq = w.b.assoc.peer().unwrap().initial_tsn.0;
    let streams = [5u16];
    let (tag, response_seq) = (
        w.b.assoc.local_tag(),
        w.a.assoc.peer().unwrap().initial_tsn.0.wrapping_sub(1),
    );
    let request = |seq| {
        packet(
            tag,
            &[Chunk::ReConfig(TlvList::Items(&[Param::OutgoingSsnReset(
                OutgoingSsnReset {
                    request_seq: seq,
                    response_seq,
                    last_tsn: last,
                    streams: FixedList::Items(&streams),
                },
            )]))],
        )
    };
    let early = request(seq);
    w.inject_to_b(&early);
    w.drop = Box::new(|_, _, _| false);
    w.run_for(Duration::from_millis(5));
    assert_eq!(
        reconfigs(&w, false),
        [Seen::Response {
            seq,
            result: ReconfigResult::InProgress
        }]
    );
    assert_eq!(events(&w.b)[1..], []);
    // T3-rtx brings the data.
    w.run_for(Duration::from_secs(3));
    assert_eq!(events(&w.b)[1..], [Event::IncomingStreamReset(5)]);
    let got: Vec<Vec<u8>> = std::iter::from_fn(|| w.b.assoc.poll_message())
        .map(|m| m.data)
        .collect();
    assert_eq!(got, [b"one".to_vec(), b"two".to_vec()]);
    let again = request(seq);
    w.inject_to_b(&again);
    w.run_for(Duration::from_millis(5));
    assert_eq!(
        reconfigs(&w, false)[1..],
        [Seen::Response {
            seq,
            result: ReconfigResult::SuccessPerformed
        }]
    );
    assert_eq!(events(&w.b)[1..], [Event::IncomingStreamReset(5)], "performed once");
}

/// RFC 6525 §5.2.1: a request number that is neither the next nor the
/// last is an error; requests WebRTC does not use are denied (and their
/// number is taken); bad API use is a clear error.
#[test]
fn sequence_numbers_and_unused_requests_are_answered() {
    let mut w = sctp_support::natter_pair();
    let seq = w.b.assoc.peer().unwrap().initial_tsn.0;
    let tag = w.b.assoc.local_tag();
    let wrong = packet(
        tag,
        &[Chunk::ReConfig(TlvList::Items(&[Param::OutgoingSsnReset(
            OutgoingSsnReset {
                request_seq: seq.wrapping_add(5),
                response_seq: 0,
                last_tsn: Tsn(0),
                streams: FixedList::Items(&[1]),
            },
        )]))],
    );
    w.inject_to_b(&wrong);
    let add = packet(
        tag,
        &[Chunk::ReConfig(TlvList::Items(&[
            Param::AddOutgoingStreams {
                request_seq: seq,
                new_streams: 4,
            },
            Param::IncomingSsnReset(IncomingSsnReset {
                request_seq: seq.wrapping_add(1),
                streams: FixedList::Items(&[]),
            }),
        ]))],
    );
    w.inject_to_b(&add);
    w.run_for(Duration::from_millis(5));
    assert_eq!(
        reconfigs(&w, false),
        [
            Seen::Response {
                seq: seq.wrapping_add(5),
                result: ReconfigResult::ErrorBadSequenceNumber
            },
            Seen::Response {
                seq,
                result: ReconfigResult::Denied
            },
            Seen::Response {
                seq: seq.wrapping_add(1),
                result: ReconfigResult::Denied
            },
        ]
    );
    assert_eq!(events(&w.b)[1..], []);
    let now = w.now;
    assert_eq!(w.a.assoc.reset_streams(now, &[]), Err(ResetError::NoStreams));
}

/// Against sctp-proto closing data channels: natter resets the stream of
/// the channel it opened and sctp-proto reports it finished (and the
/// harness, as webrtc-data does, resets sctp-proto's side); then sctp-proto closes a channel of its own and natter hears
/// the reset. Through 10% loss.
#[test]
fn natter_and_sctp_proto_close_channels_both_ways() {
    let mut w = sctp_support::natter_and_proto();
    w.drop = random_loss(23, 10);
    w.a.assoc.send(0, 50, false, &dcep_open("natters")).unwrap();
    w.run_for(Duration::from_secs(5));
    w.a.assoc.send(0, 51, false, b"bye").unwrap();
    let now = w.now;
    w.a.assoc.reset_streams(now, &[0]).unwrap();
    w.run_for(Duration::from_secs(30));
    let closed: Vec<_> =
        w.b.events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    sctp_proto::Event::Stream(sctp_proto::StreamEvent::Finished { id: 0 })
                )
            })
            .collect();
    assert_eq!(closed.len(), 1, "{:?}", w.b.events);
    let natter_events = events(&w.a);
    assert!(
        natter_events.contains(&Event::OutgoingStreamReset(0)),
        "{natter_events:?}"
    );
    assert!(
        natter_events.contains(&Event::IncomingStreamReset(0)),
        "{natter_events:?}"
    );

    // sctp-proto (the DTLS server) opens an odd stream and closes it.
    w.b.send(1, 50, &dcep_open("theirs"));
    w.run_for(Duration::from_secs(5));
    w.b.assoc().stream(1).unwrap().close().unwrap();
    w.run_for(Duration::from_secs(30));
    let odd: Vec<Event> = events(&w.a)
        .into_iter()
        .filter(|e| matches!(e, Event::IncomingStreamReset(s) if s % 2 == 1))
        .collect();
    assert_eq!(odd.len(), 1, "{:?}", w.a.events);
}

/// One request or response of the property test, numbered relative to
/// what the receiving association expects.
#[derive(Debug, Clone)]
enum Spec {
    Outgoing { seq: i8, last_tsn: i8, streams: Vec<u16> },
    Incoming { seq: i8 },
    Response { seq: i8, result: u32 },
}

fn spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        (-2i8..3, -3i8..4, proptest::collection::vec(0u16..8, 0..4))
            .prop_map(|(seq, last_tsn, streams)| { Spec::Outgoing { seq, last_tsn, streams } }),
        (-2i8..3).prop_map(|seq| Spec::Incoming { seq }),
        (-2i8..3, 0u32..8).prop_map(|(seq, result)| Spec::Response { seq, result }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// RE-CONFIG chunks of one or two parameters, numbered around what the
    /// association expects, with a reset of its own outstanding: every
    /// request is answered once with its own number, a number that is
    /// neither the next nor the last is "Bad Sequence Number", nothing
    /// panics, and the association stays up and still resets its stream.
    #[test]
    fn any_reconfig_sequence_is_answered_and_survived(chunks in proptest::collection::vec(proptest::collection::vec(spec(), 1..3), 1..8)) {
        let mut w = sctp_support::natter_pair();
        w.a.assoc.send(1, 51, false, b"data").unwrap();
        w.run_for(Duration::from_millis(100));
        let now = w.now;
        w.b.assoc.reset_streams(now, &[6]).unwrap();
        let b_initial = w.a.assoc.peer().unwrap().initial_tsn.0;
        let a_initial = w.b.assoc.peer().unwrap().initial_tsn.0;
        let tag = w.b.assoc.local_tag();
        let mut next = a_initial;
        for params in &chunks {
            let lists: Vec<Vec<u16>> = params.iter().map(|p| match p {
                Spec::Outgoing { streams, .. } => streams.clone(),
                _ => Vec::new(),
            }).collect();
            let built: Vec<Param<'_>> = params.iter().zip(&lists).map(|(p, list)| match p {
                Spec::Outgoing { seq, last_tsn, .. } => Param::OutgoingSsnReset(OutgoingSsnReset {
                    request_seq: next.wrapping_add(*seq as u32),
                    response_seq: b_initial.wrapping_sub(1),
                    last_tsn: Tsn(a_initial.wrapping_add(*last_tsn as u32)),
                    streams: FixedList::Items(list),
                }),
                Spec::Incoming { seq } => Param::IncomingSsnReset(IncomingSsnReset {
                    request_seq: next.wrapping_add(*seq as u32),
                    streams: FixedList::Items(list),
                }),
                Spec::Response { seq, result } => Param::ReconfigResponse(ReconfigResponse {
                    response_seq: b_initial.wrapping_add(*seq as u32),
                    result: ReconfigResult::from_code(*result),
                    next_tsns: None,
                }),
            }).collect();
            let before = reconfigs(&w, false).len();
            let p = packet(tag, &[Chunk::ReConfig(TlvList::Items(&built))]);
            w.inject_to_b(&p);
            w.run_for(Duration::from_millis(30));
            let answers: Vec<Seen> = reconfigs(&w, false)[before..]
                .iter()
                .filter(|s| matches!(s, Seen::Response { .. }))
                .cloned()
                .collect();
            let requests: Vec<u32> = built.iter().filter_map(|p| match p {
                Param::OutgoingSsnReset(r) => Some(r.request_seq),
                Param::IncomingSsnReset(r) => Some(r.request_seq),
                _ => None,
            }).collect();
            prop_assert_eq!(answers.len(), requests.len(), "{:?}", answers);
            for (seq, answer) in requests.iter().zip(&answers) {
                let Seen::Response { seq: answered, result } = answer else { unreachable!() };
                prop_assert_eq!(answered, seq);
                let in_sequence = *seq == next || *seq == next.wrapping_sub(1);
                prop_assert_eq!(*result == ReconfigResult::ErrorBadSequenceNumber, !in_sequence, "{:?}", answer);
                if *seq == next && *result != ReconfigResult::ErrorRequestAlreadyInProgress {
                    next = next.wrapping_add(1);
                }
            }
        }
        prop_assert_eq!(w.b.assoc.state(), natter_sctp::sctp::association::State::Established);
        w.run_for(Duration::from_secs(10));
        prop_assert!(events(&w.a).contains(&Event::IncomingStreamReset(6)), "{:?}", w.a.events);
        prop_assert!(
            events(&w.b).iter().any(|e| matches!(e, Event::OutgoingStreamReset(6) | Event::StreamResetFailed(6))),
            "{:?}", w.b.events
        );
    }
}
