//! natter-sdp: Session Description Protocol (RFC 8866) parsing and
//! writing, with typed access to the attributes WebRTC uses.
//!
//! - RFC 8866 §5: the session and media description lines, parsed from
//!   CRLF or LF text and written with CRLF in the §5 order
//!   ([`SessionDescription`], [`MediaSection`]). Unknown line types and
//!   unknown attributes are kept, in order.
//! - The attributes JSEP (RFC 8829) reads and writes, typed on demand from
//!   the raw attribute list ([`Attributes`], [`TypedAttribute`]): BUNDLE
//!   groups (RFC 8843, RFC 5888), `msid` (RFC 8830), ICE (RFC 8839; the
//!   `candidate` value itself is natter-ice's), DTLS `fingerprint`
//!   (RFC 8122) and `setup` (RFC 4145), directions (RFC 8866 §6.7),
//!   RTCP multiplexing and feedback (RFC 5761, RFC 8858, RFC 5506,
//!   RFC 3605, RFC 4585), header extensions (RFC 8285), `rtpmap` and
//!   `fmtp` joined into [`Codec`]s, SSRC attributes (RFC 5576), `rid`
//!   (RFC 8851), `simulcast` (RFC 8853), data channels (RFC 8841, and
//!   SNAP's `sctp-init`, draft-hancke-tsvwg-snap-01) and `b=AS`/`b=TIAS`
//!   (RFC 8866 §5.8, RFC 3890).
//!
//! Left out: the RFC 8866 §5.10-§5.12 `r=`, `z=` and `k=` values are kept
//! as text, not typed; the semantics of offer/answer (RFC 3264, JSEP)
//! belong to the PeerConnection layer above.
//!
//! Bad input is a [`ParseError`] naming the line and its kind, never a
//! panic. Whatever parses writes back as text that parses to the same
//! value.
//!
//! ```
//! use natter_sdp::{
//!     Codec, Direction, Feedback, Group, MediaKind, MediaSection, Origin, Parameter, Protocol,
//!     SessionDescription,
//! };
//!
//! // Write an offer with one audio section...
//! let mut offer = SessionDescription::new(Origin::new(4_611_731_400_430_051_336, 2));
//! offer.attributes.push_typed(&Group::bundle(["0"]))?;
//! let mut audio = MediaSection::new(MediaKind::Audio, Protocol::UdpTlsRtpSavpf);
//! audio.set_mid("0")?;
//! audio.set_direction(Direction::SendRecv);
//! let mut opus = Codec::new(111, "opus", 48_000);
//! opus.channels = Some(2);
//! opus.parameters.push(Parameter::new("useinbandfec", Some("1")));
//! opus.feedback.push(Feedback::new("transport-cc", None));
//! audio.push_codec(&opus)?;
//! offer.media.push(audio);
//! let text = offer.to_string();
//! assert!(text.contains("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"));
//! assert!(text.contains("a=rtpmap:111 opus/48000/2\r\n"));
//!
//! // ...and read it back.
//! let parsed: SessionDescription = text.parse()?;
//! assert_eq!(parsed, offer);
//! let bundle: Vec<Group> = parsed.bundle_groups().collect();
//! assert_eq!(bundle[0].mids, ["0"]);
//! let media = parsed.media_by_mid("0").expect("section 0");
//! assert_eq!(media.direction(), Direction::SendRecv);
//! assert_eq!(media.codecs(), [opus]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod address;
pub mod attribute;
pub mod bandwidth;
pub mod codec;
pub mod description;
pub mod direction;
pub mod dtls;
pub mod error;
pub mod extmap;
pub mod fmtp;
mod grammar;
pub mod group;
pub mod line;
pub mod media;
pub mod msid;
pub mod rid;
pub mod rtcp;
pub mod rtpmap;
pub mod simulcast;
pub mod ssrc;

pub use address::Address;
pub use attribute::{Attribute, Attributes, Flag, TypedAttribute};
pub use bandwidth::{Bandwidth, BandwidthType};
pub use codec::Codec;
pub use description::{MediaView, Origin, SessionDescription, Timing};
pub use direction::Direction;
pub use dtls::{Fingerprint, HashFunction, Setup};
pub use error::{AttributeError, LineError, LineKind, ParseError, ValueError};
pub use extmap::Extmap;
pub use fmtp::{parse_parameters, Fmtp, Parameter};
pub use group::Group;
pub use line::UnknownLine;
pub use media::{MediaKind, MediaSection, Protocol};
pub use msid::{Msid, MsidSemantic};
pub use rid::{Rid, RidDirection};
pub use rtcp::{Feedback, Rtcp, RtcpFeedback};
pub use rtpmap::RtpMap;
pub use simulcast::{Simulcast, SimulcastRid};
pub use ssrc::{Ssrc, SsrcGroup, SsrcGroupSemantics};
