//! Stream reset (RFC 6525), as WebRTC closes a data channel (RFC 8831
//! §6.7): each side resets its outgoing stream with an Outgoing SSN
//! Reset Request (§4.1) in a RE-CONFIG chunk (§3.1).
//!
//! Our side (§5.1.1, §5.1.2): [`Association::reset_streams`] holds the
//! streams (no new messages), and the request goes once everything sent
//! on them is acknowledged, so the peer, whose cumulative TSN is then
//! past it all, can reset them at once (§5.2.2 E3) instead of answering
//! "In progress". One request is outstanding at a time, numbered from our
//! Initial TSN (§4.1); it is sent again on its timer (RTO, backed off and
//! counted as an error, §5.1.1), and after "In progress" (without
//! counting). "Success" resets the streams' SSNs to 0 and they take
//! messages again; a refusal lets them go on as they were.
//!
//! The peer's side (§5.2.1, §5.2.2): its requests are numbered from its
//! Initial TSN; the last one is answered again with the same result when
//! repeated, any other number with "Error: Bad Sequence Number". An
//! Outgoing SSN Reset Request whose Last Assigned TSN has not yet arrived
//! waits ("In progress", deferred reset processing, §5.2.2 E2) and is
//! performed when the cumulative TSN reaches it. The other requests
//! (Incoming SSN Reset, SSN/TSN Reset, Add Streams, §5.2.3 to §5.2.6) are
//! answered "Denied": WebRTC does not use them.

use std::time::Instant;

use super::{Association, Event, State};
use crate::sctp::chunk::Chunk;
use crate::sctp::param::{OutgoingSsnReset, Param, ReconfigResponse, ReconfigResult};
use crate::sctp::tsn::Tsn;
use crate::sctp::wire::{FixedList, TlvList};

/// Why [`Association::reset_streams`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResetError {
    #[error("the association is not established")]
    NotEstablished,
    /// RFC 6525 §3.1: the peer did not list RE-CONFIG among its
    /// supported extensions.
    #[error("the peer does not support stream reset (RFC 6525)")]
    NotSupported,
    #[error("no stream to reset")]
    NoStreams,
}

/// Our request in flight.
#[derive(Debug)]
struct Request {
    seq: u32,
    last_tsn: Tsn,
    streams: Vec<u16>,
    /// When it goes again.
    resend_at: Instant,
    /// The peer answered "In progress": sending it again is no error.
    in_progress: bool,
}

#[derive(Debug)]
pub(super) struct Reconfig {
    /// §4.1: the next Re-configuration Request Sequence Number we use.
    next_seq: u32,
    /// Streams to reset in the next request.
    pending: Vec<u16>,
    /// §5.1.1: at most one request in flight.
    outstanding: Option<Request>,
    /// The peer's next request number (§5.2.1), and the answer to its
    /// last one.
    peer_next_seq: u32,
    last_result: ReconfigResult,
    /// §5.2.2 E2: the peer's reset waiting for TSNs up to its Last
    /// Assigned TSN.
    deferred: Option<(Tsn, Vec<u16>)>,
}

impl Reconfig {
    pub(super) fn new(local_initial_tsn: Tsn, peer_initial_tsn: Tsn) -> Self {
        Reconfig {
            next_seq: local_initial_tsn.0,
            pending: Vec::new(),
            outstanding: None,
            peer_next_seq: peer_initial_tsn.0,
            last_result: ReconfigResult::SuccessNothingToDo,
            deferred: None,
        }
    }

    pub(super) fn timeout(&self) -> Option<Instant> {
        self.outstanding.as_ref().map(|r| r.resend_at)
    }

    /// Whether `stream` is to be reset or being reset.
    fn is_resetting(&self, stream: u16) -> bool {
        self.pending.contains(&stream) || self.outstanding.as_ref().is_some_and(|r| r.streams.contains(&stream))
    }
}

/// How a peer's request number compares with the one expected (§5.2.1).
enum Numbered {
    New,
    /// The last one again: its answer was lost.
    Repeated,
    Bad,
}

impl Association {
    /// RFC 6525 §5.1.2 (RFC 8831 §6.7, closing a data channel): resets
    /// our outgoing `streams`. They take no new messages
    /// ([`SendError::StreamResetting`](super::SendError::StreamResetting));
    /// what is queued on them is still sent, and once it is all
    /// acknowledged the request goes. [`Event::OutgoingStreamReset`]
    /// follows for each when the peer performed it, or
    /// [`Event::StreamResetFailed`] if it refused.
    pub fn reset_streams(&mut self, now: Instant, streams: &[u16]) -> Result<(), ResetError> {
        if self.state != State::Established {
            return Err(ResetError::NotEstablished);
        }
        if !self.peer.is_some_and(|p| p.capabilities.stream_reset) {
            return Err(ResetError::NotSupported);
        }
        if streams.is_empty() {
            return Err(ResetError::NoStreams);
        }
        let (Some(sender), Some(reconfig)) = (self.sender.as_mut(), self.reconfig.as_mut()) else {
            return Err(ResetError::NotEstablished);
        };
        for &s in streams {
            if !reconfig.is_resetting(s) {
                sender.pause(s);
                reconfig.pending.push(s);
            }
        }
        self.progress_reset(now);
        Ok(())
    }

    /// Sends the pending request once the streams' data is acknowledged
    /// and no other request is outstanding.
    pub(super) fn progress_reset(&mut self, now: Instant) {
        let (Some(sender), Some(reconfig)) = (self.sender.as_ref(), self.reconfig.as_mut()) else {
            return;
        };
        if reconfig.outstanding.is_some() || reconfig.pending.is_empty() || !sender.reset_ready(&reconfig.pending) {
            return;
        }
        let seq = reconfig.next_seq;
        reconfig.next_seq = seq.wrapping_add(1);
        reconfig.outstanding = Some(Request {
            seq,
            // Every TSN of these streams is at or before the peer's
            // cumulative ack (reset_ready), so it performs the reset at
            // once rather than waiting for data of other streams.
            last_tsn: sender.cumulative(),
            streams: std::mem::take(&mut reconfig.pending),
            resend_at: now + self.rto.get(),
            in_progress: false,
        });
        self.send_reset_request();
    }

    fn send_reset_request(&mut self) {
        let Some(c) = self.reconfig.as_mut() else { return };
        let Some(r) = c.outstanding.as_mut() else { return };
        // Taken out while the packet is written, as send_cookie_echo does.
        let streams = std::mem::take(&mut r.streams);
        let request = [Param::OutgoingSsnReset(OutgoingSsnReset {
            request_seq: r.seq,
            // §4.1: not answering an Incoming SSN Reset Request: the
            // peer's next request number minus 1.
            response_seq: c.peer_next_seq.wrapping_sub(1),
            last_tsn: r.last_tsn,
            streams: FixedList::Items(&streams),
        })];
        let tag = self.peer_tag();
        self.queue(tag, &[Chunk::ReConfig(TlvList::Items(&request))]);
        if let Some(r) = self.reconfig.as_mut().and_then(|c| c.outstanding.as_mut()) {
            r.streams = streams;
        }
    }

    /// §5.1.1: the request's timer. Returns whether the association
    /// closed (too many errors).
    pub(super) fn reset_timeout(&mut self, now: Instant) -> bool {
        let Some(r) = self.reconfig.as_ref().and_then(|c| c.outstanding.as_ref()) else {
            return false;
        };
        if now < r.resend_at {
            return false;
        }
        if !r.in_progress {
            if self.count_error() {
                return true;
            }
            self.rto.back_off();
        }
        let at = now + self.rto.get();
        if let Some(r) = self.reconfig.as_mut().and_then(|c| c.outstanding.as_mut()) {
            r.resend_at = at;
        }
        self.send_reset_request();
        false
    }

    /// A RE-CONFIG chunk (RFC 6525 §5.2): requests answered in one
    /// RE-CONFIG, responses to ours taken.
    pub(super) fn handle_reconfig(&mut self, now: Instant, params: TlvList<'_, Param<'_>>) {
        // The chunk holds one or two parameters (checked on parse).
        let mut answers = Vec::with_capacity(2);
        for p in params.iter() {
            let (response_seq, result) = match p {
                Param::OutgoingSsnReset(r) => self.peer_outgoing_reset(&r),
                Param::IncomingSsnReset(r) => self.refuse_request(r.request_seq),
                Param::SsnTsnReset { request_seq }
                | Param::AddOutgoingStreams { request_seq, .. }
                | Param::AddIncomingStreams { request_seq, .. } => self.refuse_request(request_seq),
                Param::ReconfigResponse(r) => {
                    self.reset_response(now, &r);
                    continue;
                }
                _ => continue,
            };
            answers.push(Param::ReconfigResponse(ReconfigResponse {
                response_seq,
                result,
                next_tsns: None,
            }));
        }
        if !answers.is_empty() {
            let tag = self.peer_tag();
            self.queue(tag, &[Chunk::ReConfig(TlvList::Items(&answers))]);
        }
    }

    /// §5.2.1: how `seq` compares with the peer's next request number.
    fn numbered(&self, seq: u32) -> Numbered {
        let Some(c) = self.reconfig.as_ref() else {
            return Numbered::Bad;
        };
        if seq == c.peer_next_seq {
            Numbered::New
        } else if seq == c.peer_next_seq.wrapping_sub(1) {
            Numbered::Repeated
        } else {
            Numbered::Bad
        }
    }

    /// §5.2.3 to §5.2.6: requests WebRTC does not use, refused.
    fn refuse_request(&mut self, seq: u32) -> (u32, ReconfigResult) {
        let result = match self.numbered(seq) {
            Numbered::Bad => ReconfigResult::ErrorBadSequenceNumber,
            Numbered::Repeated => self.reconfig.as_ref().map_or(ReconfigResult::Denied, |c| c.last_result),
            Numbered::New => {
                if let Some(c) = self.reconfig.as_mut() {
                    c.peer_next_seq = seq.wrapping_add(1);
                    c.last_result = ReconfigResult::Denied;
                }
                ReconfigResult::Denied
            }
        };
        (seq, result)
    }

    /// §5.2.2: the peer resets its outgoing streams, at once if every
    /// TSN up to its Last Assigned TSN is in, else once they are.
    fn peer_outgoing_reset(&mut self, r: &OutgoingSsnReset<'_>) -> (u32, ReconfigResult) {
        let seq = r.request_seq;
        match self.numbered(seq) {
            Numbered::Bad => return (seq, ReconfigResult::ErrorBadSequenceNumber),
            Numbered::Repeated => {
                let last = self.reconfig.as_ref().map(|c| c.last_result);
                // A repeated request still in progress is looked at again.
                if let Some(result) = last.filter(|l| *l != ReconfigResult::InProgress) {
                    return (seq, result);
                }
            }
            Numbered::New => {
                if self.reconfig.as_ref().is_some_and(|c| c.deferred.is_some()) {
                    // One deferred reset at a time; the peer asks again.
                    return (seq, ReconfigResult::ErrorRequestAlreadyInProgress);
                }
            }
        }
        let cumulative = self.receiver.as_ref().map_or(r.last_tsn, |rx| rx.cumulative());
        let Some(c) = self.reconfig.as_mut() else {
            return (seq, ReconfigResult::Denied);
        };
        c.peer_next_seq = seq.wrapping_add(1);
        if r.last_tsn.is_after(cumulative) {
            // §5.2.2 E2: deferred reset processing.
            c.deferred = Some((r.last_tsn, r.streams.iter().collect()));
            c.last_result = ReconfigResult::InProgress;
        } else {
            c.deferred = None;
            c.last_result = ReconfigResult::SuccessPerformed;
            let streams: Vec<u16> = r.streams.iter().collect();
            self.reset_incoming(&streams);
        }
        (
            seq,
            self.reconfig.as_ref().map_or(ReconfigResult::Denied, |c| c.last_result),
        )
    }

    /// §5.2.2 E2: a deferred reset whose TSNs have all arrived is
    /// performed (answered when the peer asks again).
    pub(super) fn progress_deferred_reset(&mut self) {
        let cumulative = self.receiver.as_ref().map(|rx| rx.cumulative());
        let Some(c) = self.reconfig.as_mut() else { return };
        let Some((last_tsn, _)) = c.deferred.as_ref() else {
            return;
        };
        if cumulative.is_none_or(|cum| last_tsn.is_after(cum)) {
            return;
        }
        let Some((_, streams)) = c.deferred.take() else { return };
        c.last_result = ReconfigResult::SuccessPerformed;
        self.reset_incoming(&streams);
    }

    /// §5.2.2 E3: the peer's `streams` (all when empty) start over.
    fn reset_incoming(&mut self, streams: &[u16]) {
        let Some(rx) = self.receiver.as_mut() else { return };
        let events = &mut self.events;
        rx.reset_streams(streams, |s| events.push_back(Event::IncomingStreamReset(s)));
    }

    /// §5.2.7: the peer's answer to our request.
    fn reset_response(&mut self, now: Instant, response: &ReconfigResponse) {
        let at = now + self.rto.get();
        let Some(c) = self.reconfig.as_mut() else { return };
        let Some(r) = c.outstanding.as_mut().filter(|r| r.seq == response.response_seq) else {
            return;
        };
        self.errors = 0;
        match response.result {
            ReconfigResult::InProgress | ReconfigResult::ErrorRequestAlreadyInProgress => {
                r.in_progress = true;
                r.resend_at = at;
                return;
            }
            ReconfigResult::SuccessPerformed | ReconfigResult::SuccessNothingToDo => {
                if let (Some(sender), Some(r)) = (self.sender.as_mut(), c.outstanding.take()) {
                    sender.reset(&r.streams);
                    self.events
                        .extend(r.streams.iter().map(|s| Event::OutgoingStreamReset(*s)));
                }
            }
            _ => {
                if let (Some(sender), Some(r)) = (self.sender.as_mut(), c.outstanding.take()) {
                    sender.resume(&r.streams);
                    self.events
                        .extend(r.streams.iter().map(|s| Event::StreamResetFailed(*s)));
                }
            }
        }
        self.progress_reset(now);
    }
}
