//! AV1 over RTP (AV1 RTP Specification v1.0.0, AOMedia): OBUs and
//! their headers (AV1 Bitstream Specification §5.3), the
//! sequence header as far as the frame size, the aggregation header and
//! OBU elements of a payload (§4.4, §4.5), a packetizer and a temporal
//! unit reassembler, and the Dependency Descriptor header extension
//! (Appendix A).

mod aggregation;
mod depacketizer;
mod dependency_descriptor;
mod obu;
mod packetizer;
mod sequence_header;

pub use aggregation::{Av1AggregationHeader, Av1Elements, Av1Payload};
pub use depacketizer::{Av1Depacketizer, Av1Frame};
pub use dependency_descriptor::{
    DecodeTargetIndication, DependencyDescriptor, DependencyStructure, FrameTemplate, TemplateStructure,
    URI_DEPENDENCY_DESCRIPTOR,
};
pub use obu::{leb128_len, read_leb128, write_leb128, Obu, ObuExtension, ObuHeader, ObuType, Obus};
pub use packetizer::Av1Packetizer;
pub(crate) use packetizer::ElementRun;
pub use sequence_header::{Av1FrameHeader, Av1FrameType, Av1SequenceHeader};
