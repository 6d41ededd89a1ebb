//! "Last N": which publications a subscriber with a fixed pool of
//! receive slots gets, in a room larger than its pool (Jitsi
//! Videobridge's name for it). Publishers are ranked by when they were
//! last the active speaker (RFC 6464 levels, [`crate::speaker`]), most
//! recent first; those who never were follow in join order. A
//! subscriber receives, of each kind, the publications of the
//! best-ranked others, as many as its pool holds.
//!
//! Pure state and a pure choice: [`LastN`] keeps the ranking,
//! [`LastN::choose`] turns it and the room's publications into one
//! subscriber's set. The room applies the difference as unsubscribe and
//! subscribe events; the worker fills its slots from them, so a new
//! speaker enters everyone's slots without renegotiation.

use crate::participant::ParticipantId;
use crate::publication::PublicationId;

/// A subscriber's receive slots of each kind: the most publications
/// of that kind it can receive at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    pub audio: usize,
    pub video: usize,
}

/// One publication as the choice sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub publisher: ParticipantId,
    pub publication: PublicationId,
    pub audio: bool,
}

/// The room's publishers ranked: latest active speakers first, then
/// the rest in join order.
#[derive(Clone, Debug, Default)]
pub struct LastN {
    order: Vec<ParticipantId>,
}

impl LastN {
    /// The ranking, best first.
    pub fn order(&self) -> &[ParticipantId] {
        &self.order
    }

    /// A participant joins: ranked after everyone.
    pub fn join(&mut self, id: ParticipantId) {
        if !self.order.contains(&id) {
            self.order.push(id);
        }
    }

    pub fn leave(&mut self, id: ParticipantId) {
        self.order.retain(|p| *p != id);
    }

    /// `id` became the active speaker: ranked first. Returns whether
    /// the ranking changed.
    pub fn spoke(&mut self, id: ParticipantId) -> bool {
        match self.order.iter().position(|p| *p == id) {
            Some(0) | None => false,
            Some(at) => {
                self.order[..=at].rotate_right(1);
                true
            }
        }
    }

    /// What `subscriber` receives with `pool`: of `candidates` (the
    /// room's publications, in publication order), its audio choices
    /// then its video ones, each the best-ranked others' up to the
    /// pool, written to `chosen` (cleared first; reused, so a warm room
    /// allocates nothing). A publisher's several publications of a kind
    /// (camera and screen share) go in publication order. Its own and
    /// those of publishers not ranked are never chosen.
    pub fn choose(
        &self,
        subscriber: ParticipantId,
        pool: Pool,
        candidates: &[Candidate],
        chosen: &mut Vec<PublicationId>,
    ) {
        chosen.clear();
        for (audio, room) in [(true, pool.audio), (false, pool.video)] {
            let mut left = room;
            for publisher in self.order.iter().filter(|p| **p != subscriber) {
                let of_kind = candidates
                    .iter()
                    .filter(|c| c.publisher == *publisher && c.audio == audio);
                for candidate in of_kind {
                    if left == 0 {
                        break;
                    }
                    chosen.push(candidate.publication);
                    left -= 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: u64) -> ParticipantId {
        ParticipantId(id)
    }

    /// Participant `n` publishes audio `10 n` and video `10 n + 1`.
    fn room(participants: u64) -> (LastN, Vec<Candidate>) {
        let mut last_n = LastN::default();
        let mut candidates = Vec::new();
        for n in 1..=participants {
            last_n.join(p(n));
            for (offset, audio) in [(0, true), (1, false)] {
                candidates.push(Candidate {
                    publisher: p(n),
                    publication: PublicationId((10 * n + offset) as u32),
                    audio,
                });
            }
        }
        (last_n, candidates)
    }

    fn chosen(last_n: &LastN, subscriber: u64, pool: Pool, candidates: &[Candidate]) -> Vec<u32> {
        let mut out = vec![PublicationId(999)];
        last_n.choose(p(subscriber), pool, candidates, &mut out);
        out.into_iter().map(|id| id.0).collect()
    }

    #[test]
    fn without_speakers_the_first_joiners_fill_the_pool() {
        let (last_n, candidates) = room(6);
        let pool = Pool { audio: 2, video: 3 };
        // Audio then video, join order, never one's own.
        assert_eq!(chosen(&last_n, 1, pool, &candidates), [20, 30, 21, 31, 41]);
        assert_eq!(chosen(&last_n, 3, pool, &candidates), [10, 20, 11, 21, 41]);
        // A pool larger than the room takes everyone else.
        let all = Pool { audio: 10, video: 10 };
        assert_eq!(chosen(&last_n, 6, all, &candidates).len(), 10);
        assert_eq!(
            chosen(&last_n, 6, Pool { audio: 0, video: 0 }, &candidates),
            [] as [u32; 0]
        );
    }

    #[test]
    fn the_latest_speakers_come_first() {
        let (mut last_n, candidates) = room(6);
        let pool = Pool { audio: 2, video: 2 };
        assert!(last_n.spoke(p(5)));
        assert_eq!(last_n.order(), [p(5), p(1), p(2), p(3), p(4), p(6)]);
        assert_eq!(chosen(&last_n, 1, pool, &candidates), [50, 20, 51, 21]);
        assert!(last_n.spoke(p(4)));
        // 4, then 5 who spoke before, then join order.
        assert_eq!(chosen(&last_n, 1, pool, &candidates), [40, 50, 41, 51]);
        assert_eq!(chosen(&last_n, 4, pool, &candidates), [50, 10, 51, 11]);
        // The speaker again, or nobody known: nothing changes.
        assert!(!last_n.spoke(p(4)));
        assert!(!last_n.spoke(p(9)));
        last_n.leave(p(4));
        assert_eq!(chosen(&last_n, 1, pool, &candidates), [50, 20, 51, 21]);
        // A joiner comes last, however recently it joined.
        last_n.join(p(4));
        last_n.join(p(4));
        assert_eq!(last_n.order(), [p(5), p(1), p(2), p(3), p(6), p(4)]);
    }

    #[test]
    fn a_publisher_without_a_kind_leaves_its_place_to_the_next() {
        let (last_n, mut candidates) = room(4);
        // 2 publishes no video, 3 a camera and a screen share.
        candidates.retain(|c| c.publication.0 != 21);
        candidates.push(Candidate {
            publisher: p(3),
            publication: PublicationId(32),
            audio: false,
        });
        let pool = Pool { audio: 1, video: 3 };
        assert_eq!(chosen(&last_n, 1, pool, &candidates), [20, 31, 32, 41]);
        let pool = Pool { audio: 1, video: 2 };
        assert_eq!(chosen(&last_n, 1, pool, &candidates), [20, 31, 32]);
        // A publisher not ranked (not in the room) is never chosen.
        candidates.push(Candidate {
            publisher: p(7),
            publication: PublicationId(70),
            audio: true,
        });
        assert_eq!(
            chosen(&last_n, 1, Pool { audio: 9, video: 0 }, &candidates),
            [20, 30, 40]
        );
    }
}
