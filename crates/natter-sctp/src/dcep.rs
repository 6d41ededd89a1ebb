//! The Data Channel Establishment Protocol's messages (RFC 8832 §5).
//!
//! [`DcepMessage::parse`] borrows the received bytes; [`DcepMessage::encode`]
//! writes into the caller's buffer. Every length is checked against the
//! bytes at hand, and a message must use exactly the bytes it was given.

use crate::error::DcepError;

/// RFC 8832 §8.2.1: message type of DATA_CHANNEL_ACK.
pub const MESSAGE_TYPE_ACK: u8 = 0x02;
/// RFC 8832 §8.2.1: message type of DATA_CHANNEL_OPEN.
pub const MESSAGE_TYPE_OPEN: u8 = 0x03;
/// RFC 8832 §5.1: the fixed part of DATA_CHANNEL_OPEN, before label and protocol.
pub const OPEN_HEADER_LEN: usize = 12;
/// RFC 8832 §5.2: DATA_CHANNEL_ACK is the message type alone.
pub const ACK_LEN: usize = 1;

/// The Channel Type of DATA_CHANNEL_OPEN (RFC 8832 §5.1, §8.2.2): the
/// high bit asks for unordered delivery, the low bits pick the
/// reliability the Reliability Parameter qualifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelType {
    /// 0x00: DATA_CHANNEL_RELIABLE.
    Reliable,
    /// 0x80: DATA_CHANNEL_RELIABLE_UNORDERED.
    ReliableUnordered,
    /// 0x01: DATA_CHANNEL_PARTIAL_RELIABLE_REXMIT; the parameter is the
    /// number of retransmissions.
    PartialReliableRexmit,
    /// 0x81: DATA_CHANNEL_PARTIAL_RELIABLE_REXMIT_UNORDERED.
    PartialReliableRexmitUnordered,
    /// 0x02: DATA_CHANNEL_PARTIAL_RELIABLE_TIMED; the parameter is a
    /// lifetime in milliseconds.
    PartialReliableTimed,
    /// 0x82: DATA_CHANNEL_PARTIAL_RELIABLE_TIMED_UNORDERED.
    PartialReliableTimedUnordered,
}

/// How a channel limits retransmission, as its [`ChannelType`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReliabilityKind {
    Reliable,
    /// Limited by a count of retransmissions.
    Rexmit,
    /// Limited by a lifetime in milliseconds.
    Timed,
}

impl ChannelType {
    /// The octet on the wire.
    pub const fn value(self) -> u8 {
        match self {
            ChannelType::Reliable => 0x00,
            ChannelType::ReliableUnordered => 0x80,
            ChannelType::PartialReliableRexmit => 0x01,
            ChannelType::PartialReliableRexmitUnordered => 0x81,
            ChannelType::PartialReliableTimed => 0x02,
            ChannelType::PartialReliableTimedUnordered => 0x82,
        }
    }

    /// The channel type with wire value `value`; the others are
    /// unassigned or reserved (RFC 8832 §8.2.2).
    pub fn from_value(value: u8) -> Result<ChannelType, DcepError> {
        Ok(match value {
            0x00 => ChannelType::Reliable,
            0x80 => ChannelType::ReliableUnordered,
            0x01 => ChannelType::PartialReliableRexmit,
            0x81 => ChannelType::PartialReliableRexmitUnordered,
            0x02 => ChannelType::PartialReliableTimed,
            0x82 => ChannelType::PartialReliableTimedUnordered,
            other => return Err(DcepError::UnknownChannelType(other)),
        })
    }

    /// The channel type for an ordering and a kind of reliability.
    pub const fn new(ordered: bool, kind: ReliabilityKind) -> ChannelType {
        match (ordered, kind) {
            (true, ReliabilityKind::Reliable) => ChannelType::Reliable,
            (false, ReliabilityKind::Reliable) => ChannelType::ReliableUnordered,
            (true, ReliabilityKind::Rexmit) => ChannelType::PartialReliableRexmit,
            (false, ReliabilityKind::Rexmit) => ChannelType::PartialReliableRexmitUnordered,
            (true, ReliabilityKind::Timed) => ChannelType::PartialReliableTimed,
            (false, ReliabilityKind::Timed) => ChannelType::PartialReliableTimedUnordered,
        }
    }

    /// Whether messages are delivered in order.
    pub const fn is_ordered(self) -> bool {
        self.value() & 0x80 == 0
    }

    /// The kind of reliability.
    pub const fn reliability(self) -> ReliabilityKind {
        match self.value() & 0x7f {
            0x01 => ReliabilityKind::Rexmit,
            0x02 => ReliabilityKind::Timed,
            _ => ReliabilityKind::Reliable,
        }
    }
}

/// RFC 8832 §5.1: the priority of a channel. The four values of the
/// W3C `RTCPriorityType` have names; any value may arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Priority(pub u16);

impl Priority {
    /// "very-low" / below normal.
    pub const BELOW_NORMAL: Priority = Priority(128);
    /// "low", the default.
    pub const NORMAL: Priority = Priority(256);
    /// "medium".
    pub const HIGH: Priority = Priority(512);
    /// "high".
    pub const EXTRA_HIGH: Priority = Priority(1024);
}

impl Default for Priority {
    fn default() -> Self {
        Priority::NORMAL
    }
}

/// DATA_CHANNEL_OPEN (RFC 8832 §5.1), borrowing its label and protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DataChannelOpen<'a> {
    pub channel_type: ChannelType,
    pub priority: Priority,
    /// Retransmissions or milliseconds for partially reliable types;
    /// for reliable ones RFC 8832 §5.1 says send 0 and ignore on receipt.
    pub reliability_parameter: u32,
    /// UTF-8, possibly empty.
    pub label: &'a str,
    /// The subprotocol, UTF-8, possibly empty.
    pub protocol: &'a str,
}

/// A DCEP message: the payload of an SCTP user message with PPID 50.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DcepMessage<'a> {
    Open(DataChannelOpen<'a>),
    /// DATA_CHANNEL_ACK (RFC 8832 §5.2).
    Ack,
}

impl<'a> DcepMessage<'a> {
    /// Parses one DCEP message that fills `data` exactly.
    pub fn parse(data: &'a [u8]) -> Result<DcepMessage<'a>, DcepError> {
        let Some(&message_type) = data.first() else {
            return Err(DcepError::Empty);
        };
        match message_type {
            MESSAGE_TYPE_ACK => {
                if data.len() != ACK_LEN {
                    return Err(DcepError::TrailingBytes {
                        expected: ACK_LEN,
                        actual: data.len(),
                    });
                }
                Ok(DcepMessage::Ack)
            }
            MESSAGE_TYPE_OPEN => DataChannelOpen::parse(data).map(DcepMessage::Open),
            other => Err(DcepError::UnknownMessageType(other)),
        }
    }

    /// The number of bytes [`DcepMessage::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        match self {
            DcepMessage::Ack => ACK_LEN,
            DcepMessage::Open(open) => open.encoded_len(),
        }
    }

    /// Writes the message at the start of `buf` and returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, DcepError> {
        match self {
            DcepMessage::Ack => {
                let Some(first) = buf.first_mut() else {
                    return Err(DcepError::BufferTooSmall { needed: ACK_LEN });
                };
                *first = MESSAGE_TYPE_ACK;
                Ok(ACK_LEN)
            }
            DcepMessage::Open(open) => open.encode(buf),
        }
    }

    /// Encodes into a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>, DcepError> {
        let mut buf = vec![0; self.encoded_len()];
        let n = self.encode(&mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }
}

impl<'a> DataChannelOpen<'a> {
    fn parse(data: &'a [u8]) -> Result<DataChannelOpen<'a>, DcepError> {
        if data.len() < OPEN_HEADER_LEN {
            return Err(DcepError::Truncated {
                needed: OPEN_HEADER_LEN,
                actual: data.len(),
            });
        }
        let channel_type = ChannelType::from_value(data[1])?;
        let priority = Priority(u16::from_be_bytes([data[2], data[3]]));
        let reliability_parameter = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
        let label_len = usize::from(u16::from_be_bytes([data[8], data[9]]));
        let protocol_len = usize::from(u16::from_be_bytes([data[10], data[11]]));
        let needed = OPEN_HEADER_LEN + label_len + protocol_len;
        if data.len() < needed {
            return Err(DcepError::Truncated {
                needed,
                actual: data.len(),
            });
        }
        if data.len() > needed {
            return Err(DcepError::TrailingBytes {
                expected: needed,
                actual: data.len(),
            });
        }
        let label_end = OPEN_HEADER_LEN + label_len;
        let label = std::str::from_utf8(&data[OPEN_HEADER_LEN..label_end])
            .map_err(|_| DcepError::InvalidUtf8 { field: "label" })?;
        let protocol =
            std::str::from_utf8(&data[label_end..needed]).map_err(|_| DcepError::InvalidUtf8 { field: "protocol" })?;
        Ok(DataChannelOpen {
            channel_type,
            priority,
            reliability_parameter,
            label,
            protocol,
        })
    }

    /// The number of bytes the message takes.
    pub fn encoded_len(&self) -> usize {
        OPEN_HEADER_LEN + self.label.len() + self.protocol.len()
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, DcepError> {
        let label_len = u16::try_from(self.label.len()).map_err(|_| DcepError::FieldTooLong {
            field: "label",
            len: self.label.len(),
        })?;
        let protocol_len = u16::try_from(self.protocol.len()).map_err(|_| DcepError::FieldTooLong {
            field: "protocol",
            len: self.protocol.len(),
        })?;
        let needed = self.encoded_len();
        let Some(out) = buf.get_mut(..needed) else {
            return Err(DcepError::BufferTooSmall { needed });
        };
        out[0] = MESSAGE_TYPE_OPEN;
        out[1] = self.channel_type.value();
        out[2..4].copy_from_slice(&self.priority.0.to_be_bytes());
        out[4..8].copy_from_slice(&self.reliability_parameter.to_be_bytes());
        out[8..10].copy_from_slice(&label_len.to_be_bytes());
        out[10..12].copy_from_slice(&protocol_len.to_be_bytes());
        let label_end = OPEN_HEADER_LEN + self.label.len();
        out[OPEN_HEADER_LEN..label_end].copy_from_slice(self.label.as_bytes());
        out[label_end..].copy_from_slice(self.protocol.as_bytes());
        Ok(needed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An OPEN as Chromium sends it for `createDataChannel("chat", {protocol: "json"})`.
    const CHROMIUM_OPEN: &[u8] = &[
        0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x04, b'c', b'h', b'a', b't', b'j', b's',
        b'o', b'n',
    ];

    #[test]
    fn parses_a_known_open() {
        let msg = DcepMessage::parse(CHROMIUM_OPEN).unwrap();
        let DcepMessage::Open(open) = msg else {
            panic!("expected OPEN, got {msg:?}");
        };
        assert_eq!(open.channel_type, ChannelType::Reliable);
        assert_eq!(open.priority, Priority::NORMAL);
        assert_eq!(open.label, "chat");
        assert_eq!(open.protocol, "json");
        assert_eq!(msg.to_vec().unwrap(), CHROMIUM_OPEN);
    }

    #[test]
    fn ack_is_one_byte() {
        assert_eq!(DcepMessage::parse(&[0x02]).unwrap(), DcepMessage::Ack);
        assert_eq!(DcepMessage::Ack.to_vec().unwrap(), vec![0x02]);
        assert_eq!(
            DcepMessage::parse(&[0x02, 0x00]),
            Err(DcepError::TrailingBytes { expected: 1, actual: 2 })
        );
    }

    #[test]
    fn rejects_bad_messages() {
        assert_eq!(DcepMessage::parse(&[]), Err(DcepError::Empty));
        assert_eq!(DcepMessage::parse(&[0x01]), Err(DcepError::UnknownMessageType(1)));
        assert_eq!(
            DcepMessage::parse(&CHROMIUM_OPEN[..11]),
            Err(DcepError::Truncated { needed: 12, actual: 11 })
        );
        assert_eq!(
            DcepMessage::parse(&CHROMIUM_OPEN[..19]),
            Err(DcepError::Truncated { needed: 20, actual: 19 })
        );
        let mut bad_type = CHROMIUM_OPEN.to_vec();
        bad_type[1] = 0x03;
        assert_eq!(DcepMessage::parse(&bad_type), Err(DcepError::UnknownChannelType(3)));
        let mut bad_utf8 = CHROMIUM_OPEN.to_vec();
        bad_utf8[12] = 0xff;
        assert_eq!(
            DcepMessage::parse(&bad_utf8),
            Err(DcepError::InvalidUtf8 { field: "label" })
        );
        let mut long = CHROMIUM_OPEN.to_vec();
        long.push(0);
        assert_eq!(
            DcepMessage::parse(&long),
            Err(DcepError::TrailingBytes {
                expected: 20,
                actual: 21
            })
        );
    }

    #[test]
    fn encode_checks_the_buffer_and_lengths() {
        let open = DcepMessage::parse(CHROMIUM_OPEN).unwrap();
        let mut small = [0u8; 19];
        assert_eq!(open.encode(&mut small), Err(DcepError::BufferTooSmall { needed: 20 }));
        assert_eq!(
            DcepMessage::Ack.encode(&mut []),
            Err(DcepError::BufferTooSmall { needed: 1 })
        );
        let label = "x".repeat(70_000);
        let huge = DcepMessage::Open(DataChannelOpen {
            channel_type: ChannelType::Reliable,
            priority: Priority::NORMAL,
            reliability_parameter: 0,
            label: &label,
            protocol: "",
        });
        assert_eq!(
            huge.to_vec(),
            Err(DcepError::FieldTooLong {
                field: "label",
                len: 70_000
            })
        );
    }

    #[test]
    fn channel_types_split_into_ordering_and_reliability() {
        for v in 0..=255u8 {
            if let Ok(t) = ChannelType::from_value(v) {
                assert_eq!(t.value(), v);
                assert_eq!(ChannelType::new(t.is_ordered(), t.reliability()), t);
            }
        }
    }

    fn channel_type() -> impl Strategy<Value = ChannelType> {
        prop::sample::select(vec![
            ChannelType::Reliable,
            ChannelType::ReliableUnordered,
            ChannelType::PartialReliableRexmit,
            ChannelType::PartialReliableRexmitUnordered,
            ChannelType::PartialReliableTimed,
            ChannelType::PartialReliableTimedUnordered,
        ])
    }

    proptest! {
        #[test]
        fn open_round_trips(
            channel_type in channel_type(),
            priority in any::<u16>(),
            reliability_parameter in any::<u32>(),
            label in ".{0,40}",
            protocol in ".{0,40}",
        ) {
            let msg = DcepMessage::Open(DataChannelOpen {
                channel_type,
                priority: Priority(priority),
                reliability_parameter,
                label: &label,
                protocol: &protocol,
            });
            let bytes = msg.to_vec().unwrap();
            prop_assert_eq!(bytes.len(), msg.encoded_len());
            prop_assert_eq!(DcepMessage::parse(&bytes).unwrap(), msg);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(msg) = DcepMessage::parse(&data) {
                // What parses re-encodes to the same bytes.
                prop_assert_eq!(msg.to_vec().unwrap(), data);
            }
        }

        #[test]
        fn open_prefixes_never_panic(
            header in prop::collection::vec(any::<u8>(), 10..12),
            tail in prop::collection::vec(any::<u8>(), 0..32),
        ) {
            let mut data = vec![MESSAGE_TYPE_OPEN, 0x00];
            data.extend_from_slice(&header);
            data.extend_from_slice(&tail);
            if let Ok(msg) = DcepMessage::parse(&data) {
                prop_assert_eq!(msg.to_vec().unwrap(), data);
            }
        }
    }
}
