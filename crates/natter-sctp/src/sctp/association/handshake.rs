//! Association setup (RFC 9260 §5.1), INIT collisions and restarts
//! (§5.2), stale cookies (§5.2.6).

use std::time::{Duration, Instant};

use super::{Association, CloseReason, Config, DropReason, Event, Peer, State, Timer};
use crate::sctp::cause::ErrorCause;
use crate::sctp::chunk::{Chunk, Init, FORWARD_TSN, INIT_ACK, I_DATA, I_FORWARD_TSN, RE_CONFIG};
use crate::sctp::cookie::{Capabilities, Cookie, CookieError};
use crate::sctp::param::{Param, EDMID_SCTP_OVER_DTLS};
use crate::sctp::tsn::Tsn;
use crate::sctp::wire::{Tlv, TlvList, UnknownAction};

/// Unrecognized parameters echoed in one INIT ACK at most.
const MAX_UNRECOGNIZED: usize = 8;

/// The extensions we announce (RFC 5061 §4.2.7).
fn extensions(config: &Config) -> &'static [u8] {
    if config.interleaving {
        &[FORWARD_TSN, RE_CONFIG, I_DATA, I_FORWARD_TSN]
    } else {
        &[FORWARD_TSN, RE_CONFIG]
    }
}

/// INIT and INIT ACK share everything but the cookie and the reports.
pub(super) fn our_init<'a>(config: &Config, tag: u32, tsn: Tsn, params: &'a [Param<'a>]) -> Init<'a> {
    Init {
        initiate_tag: tag,
        a_rwnd: config.receive_window,
        outbound_streams: config.outbound_streams,
        inbound_streams: config.inbound_streams,
        initial_tsn: tsn,
        params: TlvList::Items(params),
    }
}

/// Our optional parameters, with room for `extra` in front.
pub(super) fn our_params<'a>(config: &Config, extra: &[Param<'a>], out: &mut Vec<Param<'a>>) {
    out.extend_from_slice(extra);
    out.push(Param::SupportedExtensions(extensions(config)));
    out.push(Param::ForwardTsnSupported);
    if config.zero_checksum {
        out.push(Param::ZeroChecksumAcceptable {
            edmid: EDMID_SCTP_OVER_DTLS,
        });
    }
}

impl Association {
    pub(super) fn send_init(&mut self) {
        let mut params = Vec::with_capacity(4);
        let preservative = self.cookie_preservative_ms.map(Param::CookiePreservative);
        our_params(&self.config, preservative.as_slice(), &mut params);
        let init = our_init(&self.config, self.local_tag, self.local_initial_tsn, &params);
        // §8.5.1 A: an INIT goes with tag 0.
        self.queue(0, &[Chunk::Init(init)]);
    }

    pub(super) fn send_cookie_echo(&mut self) {
        let cookie = std::mem::take(&mut self.cookie_echo);
        let tag = self.peer_tag();
        self.queue(tag, &[Chunk::CookieEcho(&cookie)]);
        self.cookie_echo = cookie;
    }

    /// What the peer's INIT or INIT ACK says it supports.
    pub(super) fn capabilities(&self, init: &Init<'_>) -> Capabilities {
        Capabilities {
            partial_reliability: init.forward_tsn_supported() || init.supports_chunk(FORWARD_TSN),
            stream_reset: init.supports_chunk(RE_CONFIG),
            interleaving: self.config.interleaving && init.supports_chunk(I_DATA) && init.supports_chunk(I_FORWARD_TSN),
            zero_checksum: self.config.zero_checksum && init.zero_checksum_edmid() == Some(EDMID_SCTP_OVER_DTLS),
        }
    }

    pub(super) fn since_epoch(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.epoch)
    }

    /// RFC 9260 §5.1 B, §5.2.1, §5.2.2: answer an INIT with an INIT ACK
    /// whose cookie holds everything, keeping no new state.
    pub(super) fn handle_init(&mut self, now: Instant, init: &Init<'_>) -> Result<(), DropReason> {
        // §3.3.2: an Initiate Tag of 0 is discarded silently.
        if init.initiate_tag == 0 {
            return Err(DropReason::VerificationTag { found: 0 });
        }
        if init.outbound_streams == 0 || init.inbound_streams == 0 {
            // §3.3.2: no streams is an invalid mandatory parameter.
            let cause = [ErrorCause::InvalidMandatoryParameter];
            self.queue(
                init.initiate_tag,
                &[Chunk::Abort {
                    reflected: false,
                    causes: TlvList::Items(&cause),
                }],
            );
            return Ok(());
        }
        if self.state == State::ShutdownAckSent {
            // §9.2: the peer's SHUTDOWN COMPLETE was lost; SHUTDOWN ACK again.
            let tag = self.peer_tag();
            self.queue(tag, &[Chunk::ShutdownAck]);
            return Ok(());
        }
        let (tag, tsn, tie) = match self.state {
            State::Closed => (self.secrets.next_u32(), Tsn(self.secrets.next_u32()), (0, 0)),
            // §5.2.1: the INIT ACK repeats our INIT's tag and TSN.
            State::CookieWait => (self.local_tag, self.local_initial_tsn, (0, 0)),
            State::CookieEchoed => (
                self.local_tag,
                self.local_initial_tsn,
                (self.local_tag, self.peer_tag()),
            ),
            // §5.2.2: new tag and TSN; tie-tags tell a restart (§5.2.4 A).
            _ => (
                self.secrets.next_u32(),
                Tsn(self.secrets.next_u32()),
                (self.local_tag, self.peer_tag()),
            ),
        };
        // §5.1.3: the peer may ask for a longer cookie life; grant up to
        // twice ours.
        let preserve = init.params.iter().find_map(|p| match p {
            Param::CookiePreservative(ms) => Some(Duration::from_millis(u64::from(ms))),
            _ => None,
        });
        let cookie = Cookie {
            local_tag: tag,
            peer_tag: init.initiate_tag,
            local_initial_tsn: tsn,
            peer_initial_tsn: init.initial_tsn,
            peer_a_rwnd: init.a_rwnd,
            outbound_streams: self.config.outbound_streams.min(init.inbound_streams),
            inbound_streams: self.config.inbound_streams.min(init.outbound_streams),
            peer: self.capabilities(init),
            local_tie_tag: tie.0,
            peer_tie_tag: tie.1,
            created: self.since_epoch(now),
            lifetime: self.config.cookie_lifetime + preserve.unwrap_or_default().min(self.config.cookie_lifetime),
        };
        let sealed = self.secrets.seal(&cookie);
        // §3.2.1: report the parameters whose type asks for it.
        let mut unknown = Vec::new();
        for p in init.params.iter() {
            if let Param::Unknown { ty, .. } = p {
                let action = UnknownAction::for_param(ty);
                if action.report && unknown.len() < MAX_UNRECOGNIZED {
                    let mut raw = vec![0; p.padded_len()];
                    p.write(&mut raw);
                    unknown.push(raw);
                }
                if !action.skip {
                    break;
                }
            }
        }
        let mut params: Vec<Param<'_>> = vec![Param::StateCookie(&sealed)];
        params.extend(unknown.iter().map(|u| Param::UnrecognizedParameter(u)));
        let mut all = Vec::with_capacity(params.len() + 3);
        our_params(&self.config, &params, &mut all);
        let ack = our_init(&self.config, tag, tsn, &all);
        self.queue(init.initiate_tag, &[Chunk::InitAck(ack)]);
        Ok(())
    }

    /// RFC 9260 §5.1 C: our INIT was answered; echo the cookie.
    pub(super) fn handle_init_ack(&mut self, now: Instant, ack: &Init<'_>) -> Result<(), DropReason> {
        // §5.2.3: an INIT ACK outside COOKIE-WAIT is discarded.
        if self.state != State::CookieWait {
            return Err(DropReason::Unexpected(INIT_ACK));
        }
        let Some(cookie) = ack.state_cookie() else {
            // §5.1 C: without a cookie the INIT ACK is an error.
            self.abort_invalid_init_ack(ack.initiate_tag);
            return Ok(());
        };
        if ack.initiate_tag == 0 || ack.outbound_streams == 0 || ack.inbound_streams == 0 {
            self.abort_invalid_init_ack(ack.initiate_tag);
            return Ok(());
        }
        self.measure_setup_rtt(now);
        self.peer = Some(Peer {
            verification_tag: ack.initiate_tag,
            initial_tsn: ack.initial_tsn,
            receive_window: ack.a_rwnd,
            outbound_streams: self.config.outbound_streams.min(ack.inbound_streams),
            inbound_streams: self.config.inbound_streams.min(ack.outbound_streams),
            capabilities: self.capabilities(ack),
        });
        self.cookie_echo.clear();
        self.cookie_echo.extend_from_slice(cookie);
        self.cookie_preservative_ms = None;
        self.state = State::CookieEchoed;
        self.send_cookie_echo();
        self.start_timer(Timer::T1Cookie, now);
        Ok(())
    }

    fn abort_invalid_init_ack(&mut self, peer_tag: u32) {
        let cause = [ErrorCause::InvalidMandatoryParameter];
        // The INIT ACK's tag, if it gave one; ours reflected otherwise.
        let (tag, reflected) = if peer_tag == 0 {
            (self.local_tag, true)
        } else {
            (peer_tag, false)
        };
        self.queue(
            tag,
            &[Chunk::Abort {
                reflected,
                causes: TlvList::Items(&cause),
            }],
        );
        self.close(CloseReason::InvalidInitAck);
    }

    /// RFC 9260 §5.1.5 (no association) and §5.2.4 (one exists).
    pub(super) fn handle_cookie_echo(&mut self, now: Instant, bytes: &[u8], tag: u32) -> Result<(), DropReason> {
        let cookie = match self.secrets.open(bytes, self.since_epoch(now)) {
            Ok(c) => c,
            Err(CookieError::Forged) => return Err(DropReason::ForgedCookie),
            Err(CookieError::Stale { by, peer_tag }) => {
                // §5.1.5 step 3: say how stale, in microseconds.
                let us = u32::try_from(by.as_micros()).unwrap_or(u32::MAX);
                let cause = [ErrorCause::StaleCookie { staleness_us: us }];
                self.queue(peer_tag, &[Chunk::Error(TlvList::Items(&cause))]);
                return Ok(());
            }
        };
        if tag != cookie.local_tag {
            return Err(DropReason::VerificationTag { found: tag });
        }
        if self.state == State::Closed {
            self.establish(&cookie, Event::Connected);
        } else {
            let local = cookie.local_tag == self.local_tag;
            let peer = self.peer.is_some_and(|p| p.verification_tag == cookie.peer_tag);
            let tie = cookie.local_tie_tag == self.local_tag && cookie.peer_tie_tag == self.peer_tag();
            match (local, peer) {
                // §5.2.4 A: the peer restarted.
                (false, false) if tie && self.state == State::Established => self.establish(&cookie, Event::Restarted),
                // §5.2.4 B: INITs crossed; D: our own association.
                (true, _) => {
                    if self.state != State::Established || !peer {
                        let event = if self.state == State::Established {
                            Event::Restarted
                        } else {
                            Event::Connected
                        };
                        self.establish(&cookie, event);
                    }
                }
                // §5.2.4 C, and anything else: discard.
                _ => return Err(DropReason::Unexpected(crate::sctp::chunk::COOKIE_ECHO)),
            }
        }
        let tag = self.peer_tag();
        self.queue(tag, &[Chunk::CookieAck]);
        Ok(())
    }

    /// Takes the association's parameters from a cookie and is up.
    pub(super) fn establish(&mut self, c: &Cookie, event: Event) {
        self.local_tag = c.local_tag;
        self.local_initial_tsn = c.local_initial_tsn;
        self.peer = Some(Peer {
            verification_tag: c.peer_tag,
            initial_tsn: c.peer_initial_tsn,
            receive_window: c.peer_a_rwnd,
            outbound_streams: c.outbound_streams,
            inbound_streams: c.inbound_streams,
            capabilities: c.peer,
        });
        self.state = State::Established;
        self.timer = None;
        self.cookie_echo.clear();
        self.start_transfer();
        self.events.push_back(event);
    }

    /// RFC 9260 §5.1 E.
    pub(super) fn handle_cookie_ack(&mut self, now: Instant) -> Result<(), DropReason> {
        if self.state != State::CookieEchoed {
            // A COOKIE ACK for an association already up is harmless.
            return Ok(());
        }
        self.measure_setup_rtt(now);
        self.state = State::Established;
        self.timer = None;
        self.cookie_echo.clear();
        self.start_transfer();
        self.events.push_back(Event::Connected);
        Ok(())
    }

    /// RFC 9260 §5.2.6: our cookie came too late; INIT again asking for
    /// a longer life. Other causes are only counted by the caller.
    pub(super) fn handle_error(&mut self, now: Instant, causes: TlvList<'_, ErrorCause<'_>>) {
        let stale = causes.iter().find_map(|c| match c {
            ErrorCause::StaleCookie { staleness_us } => Some(staleness_us),
            _ => None,
        });
        if let (Some(us), State::CookieEchoed) = (stale, self.state) {
            // §5.2.6: the RECOMMENDED preservative is twice the staleness.
            let ms = (u64::from(us) * 2).div_ceil(1000).max(1);
            self.cookie_preservative_ms = Some(u32::try_from(ms).unwrap_or(u32::MAX));
            self.peer = None;
            self.state = State::CookieWait;
            self.send_init();
            self.start_timer(Timer::T1Init, now);
        }
    }
}
