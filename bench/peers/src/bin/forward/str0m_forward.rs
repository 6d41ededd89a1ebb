//! str0m 0.25 in RTP mode (`set_rtp_mode(true)`): the forwarder demuxes
//! its socket with `Rtc::accepts`, as str0m's chat example does, takes
//! `Event::RtpPacket` from the publisher's connection and writes it with
//! `direct_api().stream_tx_by_mid(..).write_rtp(..)` on the subscriber's
//! (payload passed on without a copy, nackable like a forwarded packet
//! must be for NACK answers). One `send_to` per datagram: str0m leaves
//! batching to the application, and std has no sendmmsg.

use std::io::ErrorKind;
use std::net::UdpSocket;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};

use crate::{finish, socket, Flags, Meter, Outcome, Run, FRAME, FRAME_TICKS, SEQ_OFFSET, TS_OFFSET};

fn rtc(socket: &UdpSocket, now: Instant) -> Rtc {
    let mut rtc = Rtc::builder().set_rtp_mode(true).build(now);
    let address = socket.local_addr().expect("local address");
    rtc.add_local_candidate(Candidate::host(address, "udp").expect("host candidate"));
    rtc
}

/// `sender` offers one send-only video m-line, `receiver` answers.
fn offer_video(sender: &mut Rtc, receiver: &mut Rtc) -> Mid {
    let mut change = sender.sdp_api();
    let mid = change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let (offer, pending) = change.apply().expect("a change to offer");
    let answer = receiver.sdp_api().accept_offer(offer).expect("offer applies");
    sender.sdp_api().accept_answer(pending, answer).expect("answer applies");
    mid
}

fn vp8(rtc: &Rtc) -> Pt {
    let params = rtc.codec_config().find(|p| p.spec().codec == Codec::Vp8);
    params.expect("VP8 is a default codec").pt()
}

/// Polls `rtc` up to its next timeout: datagrams out on `socket`, events
/// to `on_event`.
fn drain(rtc: &mut Rtc, socket: &UdpSocket, mut on_event: impl FnMut(Event)) -> Instant {
    loop {
        match rtc.poll_output().expect("str0m output") {
            Output::Timeout(t) => return t,
            Output::Transmit(t) => {
                let _ = socket.send_to(&t.contents, t.destination);
            }
            Output::Event(e) => on_event(e),
        }
    }
}

/// One datagram from `socket` for whichever of `rtcs` accepts it.
fn receive(socket: &UdpSocket, buf: &mut [u8], rtcs: &mut [Rtc]) {
    let (n, source) = match socket.recv_from(buf) {
        Ok(r) => r,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return,
        Err(e) => panic!("recv_from: {e}"),
    };
    let Ok(contents) = buf[..n].try_into() else {
        return;
    };
    let destination = socket.local_addr().expect("local address");
    let input = Input::Receive(
        Instant::now(),
        Receive {
            proto: Protocol::Udp,
            source,
            destination,
            contents,
        },
    );
    if let Some(rtc) = rtcs.iter_mut().find(|r| r.accepts(&input)) {
        rtc.handle_input(input).expect("str0m input");
    }
}

/// Fires `rtc`'s timer when due.
fn tick(rtc: &mut Rtc, timeout: Instant) {
    let now = Instant::now();
    if timeout <= now {
        rtc.handle_input(Input::Timeout(now)).expect("str0m timeout");
    }
}

pub fn run(run: &Run) -> Outcome {
    str0m::crypto::from_feature_flags().install_process_default();
    let (p_socket, f_socket, s_socket) = (socket(), socket(), socket());
    let now = Instant::now();
    let mut publisher = rtc(&p_socket, now);
    let mut up = rtc(&f_socket, now);
    let mut down = rtc(&f_socket, now);
    let mut subscriber = rtc(&s_socket, now);
    let up_mid = offer_video(&mut publisher, &mut up);
    let down_mid = offer_video(&mut down, &mut subscriber);
    let pt = vp8(&publisher);
    let down_pt = vp8(&down);
    let flags = Arc::new(Flags::default());

    let forwarder = {
        let flags = flags.clone();
        thread::spawn(move || {
            let mut rtcs = [up, down];
            let mut timeouts = [now; 2];
            let mut buf = vec![0u8; 2048];
            let mut meter = Meter::default();
            let mut connected = [false; 2];
            while !flags.stop() {
                receive(&f_socket, &mut buf, &mut rtcs);
                for (rtc, t) in rtcs.iter_mut().zip(timeouts) {
                    tick(rtc, t);
                }
                let [up, down] = &mut rtcs;
                timeouts[0] = drain(up, &f_socket, |e| match e {
                    Event::Connected => connected[0] = true,
                    Event::RtpPacket(p) => {
                        let seq = (*p.seq_no + u64::from(SEQ_OFFSET)).into();
                        let ts = p.header.timestamp.wrapping_add(TS_OFFSET);
                        let write = RtpWrite::new(down_pt, seq, ts, p.timestamp, p.payload)
                            .marker(p.header.marker)
                            .nackable(true);
                        let mut api = down.direct_api();
                        let stream = api.stream_tx_by_mid(down_mid, None).expect("subscriber's stream");
                        stream.write_rtp(write);
                        meter.forwarded();
                    }
                    _ => {}
                });
                timeouts[1] = drain(down, &f_socket, |e| {
                    if let Event::Connected = e {
                        connected[1] = true;
                    }
                });
                if connected == [true; 2] {
                    flags.go.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
            meter
        })
    };

    let subscriber = {
        let flags = flags.clone();
        thread::spawn(move || {
            let mut rtcs = [subscriber];
            let mut timeout = now;
            let mut buf = vec![0u8; 2048];
            let mut received = 0u64;
            while !flags.stop() {
                receive(&s_socket, &mut buf, &mut rtcs);
                tick(&mut rtcs[0], timeout);
                timeout = drain(&mut rtcs[0], &s_socket, |e| {
                    if let Event::RtpPacket(_) = e {
                        received += 1;
                    }
                });
            }
            received
        })
    };

    let publisher = {
        let flags = flags.clone();
        let run = Run { ..*run };
        thread::spawn(move || {
            let mut rtcs = [publisher];
            let mut timeout = now;
            let mut buf = vec![0u8; 2048];
            let mut sent = 0u64;
            let mut start = None;
            let mut done_at = None;
            loop {
                receive(&p_socket, &mut buf, &mut rtcs);
                let rtc = &mut rtcs[0];
                tick(rtc, timeout);
                let now = Instant::now();
                if flags.go() {
                    let start = *start.get_or_insert(now);
                    while sent < run.packets && now >= start + run.due(sent) {
                        let seq = (1000 + sent).into();
                        let ts = 90_000 + (sent / FRAME) as u32 * FRAME_TICKS;
                        let write = RtpWrite::new(pt, seq, ts, now, run.payload(sent))
                            .marker(sent % FRAME == FRAME - 1)
                            .nackable(true);
                        let mut api = rtc.direct_api();
                        api.stream_tx_by_mid(up_mid, None)
                            .expect("publisher's stream")
                            .write_rtp(write);
                        sent += 1;
                    }
                }
                timeout = drain(rtc, &p_socket, |_| {});
                if sent == run.packets {
                    let at = *done_at.get_or_insert(now);
                    if now > at + Duration::from_secs(1) {
                        return sent;
                    }
                }
            }
        })
    };

    let sent = finish(&flags, publisher);
    Outcome {
        sent,
        meter: forwarder.join().expect("forwarder thread"),
        received: subscriber.join().expect("subscriber thread"),
        // str0m does not say; its DTLS is dimpl, which always picks this.
        profile: "AeadAes256Gcm (dimpl's choice)".into(),
    }
}
