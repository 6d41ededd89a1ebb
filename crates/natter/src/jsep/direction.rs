//! Media directions as offer/answer combines them (RFC 3264 §6.1): which
//! way media flows once both sides have spoken.

use natter_sdp::Direction;

/// Whether `direction` includes sending.
pub(crate) fn sends(direction: Direction) -> bool {
    matches!(direction, Direction::SendRecv | Direction::SendOnly)
}

/// Whether `direction` includes receiving.
pub(crate) fn receives(direction: Direction) -> bool {
    matches!(direction, Direction::SendRecv | Direction::RecvOnly)
}

fn from_flags(send: bool, recv: bool) -> Direction {
    match (send, recv) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    }
}

/// The direction seen from the other side: `sendonly` becomes `recvonly`.
pub(crate) fn reversed(direction: Direction) -> Direction {
    from_flags(receives(direction), sends(direction))
}

/// What both allow.
pub(crate) fn intersection(a: Direction, b: Direction) -> Direction {
    from_flags(sends(a) && sends(b), receives(a) && receives(b))
}

/// The direction in effect for us, from our description's direction and
/// the peer's (RFC 3264 §6.1): we send what the peer receives and
/// receive what the peer sends.
pub(crate) fn negotiated(local: Direction, remote: Direction) -> Direction {
    intersection(local, reversed(remote))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_reverse_offers() {
        assert_eq!(
            negotiated(Direction::SendRecv, Direction::SendOnly),
            Direction::RecvOnly
        );
        assert_eq!(
            negotiated(Direction::SendRecv, Direction::RecvOnly),
            Direction::SendOnly
        );
        assert_eq!(
            negotiated(Direction::SendOnly, Direction::SendOnly),
            Direction::Inactive
        );
        assert_eq!(
            negotiated(Direction::RecvOnly, Direction::SendRecv),
            Direction::RecvOnly
        );
        assert_eq!(reversed(Direction::Inactive), Direction::Inactive);
    }
}
