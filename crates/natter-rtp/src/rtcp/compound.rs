//! Compound RTCP datagrams (RFC 3550 §6.1, Appendix A.2) and reduced-
//! size RTCP (RFC 5506 §3.1), and the typed packet they carry.

use super::{
    fmt, packet_type, App, Bye, ExtendedReport, Fir, Nack, Pli, RawRtcp, ReceiverReport, Remb, RtcpEncode, Sdes,
    SenderReport, TransportFeedback,
};
use crate::error::Error;

/// A received RTCP datagram whose framing is valid: every packet has
/// version 2, a length within the datagram and consistent padding, and
/// the packets cover the datagram exactly.
///
/// RFC 3550 §6.1 wants a compound packet to start with SR or RR; RFC
/// 5506 lets a peer that negotiated `a=rtcp-rsize` send a lone feedback
/// packet, so that is not enforced here ([`Compound::is_reduced_size`]
/// tells). Padding is accepted on any packet, not only the last.
///
/// ```
/// # use natter_rtp::rtcp::*;
/// let mut buf = [0u8; 64];
/// let len = Pli { sender_ssrc: 1, media_ssrc: 2 }.encode(&mut buf)?;
/// let compound = Compound::parse(&buf[..len])?;
/// assert!(compound.is_reduced_size());
/// for packet in compound.packets() {
///     assert_eq!(packet?, RtcpPacket::Pli(Pli { sender_ssrc: 1, media_ssrc: 2 }));
/// }
/// # Ok::<(), natter_rtp::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Compound<'a> {
    data: &'a [u8],
}

impl<'a> Compound<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Self, Error> {
        if data.is_empty() {
            return Err(Error::RtcpTooShort {
                offset: 0,
                available: 0,
            });
        }
        let mut at = 0;
        while at < data.len() {
            let (_, len) = RawRtcp::parse(&data[at..], at)?;
            at += len;
        }
        Ok(Compound { data })
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// The packets with their framing, untyped.
    pub fn raw_packets(&self) -> RawPackets<'a> {
        RawPackets { data: self.data, at: 0 }
    }

    /// Each packet typed; one malformed packet yields an error and the
    /// walk goes on with the next.
    pub fn packets(&self) -> RtcpPackets<'a> {
        RtcpPackets {
            raw: self.raw_packets(),
        }
    }

    /// The first packet is neither SR nor RR (RFC 5506 §3.1).
    pub fn is_reduced_size(&self) -> bool {
        !matches!(self.data[1], packet_type::SR | packet_type::RR)
    }
}

/// Iterator over a compound's packets, untyped.
#[derive(Clone, Debug)]
pub struct RawPackets<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Iterator for RawPackets<'a> {
    type Item = RawRtcp<'a>;

    fn next(&mut self) -> Option<RawRtcp<'a>> {
        let rest = self.data.get(self.at..).filter(|r| !r.is_empty())?;
        // Compound::parse validated every packet's framing.
        let (raw, len) = RawRtcp::parse(rest, self.at).ok()?;
        self.at += len;
        Some(raw)
    }
}

/// Iterator over a compound's packets, typed.
#[derive(Clone, Debug)]
pub struct RtcpPackets<'a> {
    raw: RawPackets<'a>,
}

impl<'a> Iterator for RtcpPackets<'a> {
    type Item = Result<RtcpPacket<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.raw.next().map(|raw| RtcpPacket::parse(&raw))
    }
}

/// One RTCP packet, typed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RtcpPacket<'a> {
    SenderReport(SenderReport<'a>),
    ReceiverReport(ReceiverReport<'a>),
    Sdes(Sdes<'a>),
    Bye(Bye<'a>),
    App(App<'a>),
    /// RTPFB FMT=1.
    Nack(Nack<'a>),
    /// RTPFB FMT=15.
    TransportFeedback(TransportFeedback<'a>),
    /// PSFB FMT=1.
    Pli(Pli),
    /// PSFB FMT=4.
    Fir(Fir<'a>),
    /// PSFB FMT=15 with identifier "REMB".
    Remb(Remb<'a>),
    ExtendedReport(ExtendedReport<'a>),
    /// Any other type or feedback format, untyped.
    Other(RawRtcp<'a>),
}

impl<'a> RtcpPacket<'a> {
    pub fn parse(raw: &RawRtcp<'a>) -> Result<Self, Error> {
        Ok(match (raw.packet_type, raw.count) {
            (packet_type::SR, _) => RtcpPacket::SenderReport(SenderReport::parse(raw)?),
            (packet_type::RR, _) => RtcpPacket::ReceiverReport(ReceiverReport::parse(raw)?),
            (packet_type::SDES, _) => RtcpPacket::Sdes(Sdes::parse(raw)?),
            (packet_type::BYE, _) => RtcpPacket::Bye(Bye::parse(raw)?),
            (packet_type::APP, _) => RtcpPacket::App(App::parse(raw)?),
            (packet_type::XR, _) => RtcpPacket::ExtendedReport(ExtendedReport::parse(raw)?),
            (packet_type::RTPFB, fmt::NACK) => RtcpPacket::Nack(Nack::parse(raw)?),
            (packet_type::RTPFB, fmt::TRANSPORT_CC) => RtcpPacket::TransportFeedback(TransportFeedback::parse(raw)?),
            (packet_type::PSFB, fmt::PLI) => RtcpPacket::Pli(Pli::parse(raw)?),
            (packet_type::PSFB, fmt::FIR) => RtcpPacket::Fir(Fir::parse(raw)?),
            (packet_type::PSFB, fmt::AFB) if Remb::is_remb(raw) => RtcpPacket::Remb(Remb::parse(raw)?),
            _ => RtcpPacket::Other(*raw),
        })
    }
}

/// RFC 5761 §4: whether a datagram on a muxed RTP/RTCP port is RTCP
/// (its second byte, the RTCP packet type, is 192..=223).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 2 && (192..=223).contains(&datagram[1])
}

/// Concatenates packets into a compound datagram in a borrowed buffer.
///
/// ```
/// # use natter_rtp::rtcp::*;
/// let mut buf = [0u8; 256];
/// let mut w = CompoundWriter::new(&mut buf);
/// w.add(&ReceiverReportBuilder { ssrc: 1, ..Default::default() })?;
/// w.add(&Cname { ssrc: 1, cname: "natter" })?;
/// w.add(&Pli { sender_ssrc: 1, media_ssrc: 2 })?;
/// let len = w.finish();
/// assert_eq!(Compound::parse(&buf[..len])?.packets().count(), 3);
/// # Ok::<(), natter_rtp::Error>(())
/// ```
#[derive(Debug)]
pub struct CompoundWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> CompoundWriter<'b> {
    pub fn new(buf: &'b mut [u8]) -> Self {
        CompoundWriter { buf, len: 0 }
    }

    /// Appends one packet.
    pub fn add(&mut self, packet: &dyn RtcpEncode) -> Result<(), Error> {
        let n = packet.encode(&mut self.buf[self.len..]).map_err(|e| match e {
            Error::BufferTooSmall { needed, .. } => Error::BufferTooSmall {
                needed: self.len + needed,
                available: self.buf.len(),
            },
            e => e,
        })?;
        self.len += n;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Ends the datagram and returns its length.
    pub fn finish(self) -> usize {
        self.len
    }
}
