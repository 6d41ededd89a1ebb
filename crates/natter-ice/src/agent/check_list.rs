//! Candidate pairs and the check list (RFC 8445 §6.1.2): pair states,
//! pair priority, foundations, unfreezing and the triggered-check
//! queue (§7.3.1.4).

use std::collections::VecDeque;
use std::time::Duration;

/// RFC 8445 §6.1.2.6: the state of a candidate pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PairState {
    Frozen,
    Waiting,
    InProgress,
    Succeeded,
    Failed,
}

/// RFC 8445 §6.1.2.3: `2^32·MIN(G,D) + 2·MAX(G,D) + (G>D?1:0)`, G being
/// the controlling agent's candidate priority and D the controlled's.
/// Saturates: a peer-reflexive priority comes from the wire, and values
/// past 2^31 (which no RFC 8445 priority reaches) would overflow.
pub fn pair_priority(controlling: u32, controlled: u32) -> u64 {
    let (g, d) = (u64::from(controlling), u64::from(controlled));
    (g.min(d) << 32)
        .saturating_add(2 * g.max(d))
        .saturating_add(u64::from(g > d))
}

/// One local/remote pairing (RFC 8445 §6.1.2.2), by index into the
/// agent's candidate tables.
#[derive(Clone, Debug)]
pub struct CandidatePair {
    pub local: usize,
    pub remote: usize,
    pub priority: u64,
    pub state: PairState,
    /// §7.2.5.3.2: in the valid list.
    pub valid: bool,
    /// The valid pair a successful check of this pair produced (itself,
    /// or one with a peer-reflexive local candidate, §7.2.5.3.2).
    pub valid_pair: Option<usize>,
    /// §8.1.1: nominated (USE-CANDIDATE sent and answered, or received).
    pub nominated: bool,
    /// Controlling: the next check of this pair carries USE-CANDIDATE.
    pub use_candidate: bool,
    /// Controlled: a USE-CANDIDATE request arrived before this pair
    /// succeeded (§7.3.1.5); nominate it when it does.
    pub nominate_on_success: bool,
    /// Pairs made by §7.2.5.3.2 rather than §6.1.2 take no ordinary checks.
    pub in_check_list: bool,
    pub rtt: Option<Duration>,
}

impl CandidatePair {
    pub fn new(local: usize, remote: usize, priority: u64) -> Self {
        CandidatePair {
            local,
            remote,
            priority,
            state: PairState::Frozen,
            valid: false,
            valid_pair: None,
            nominated: false,
            use_candidate: false,
            nominate_on_success: false,
            in_check_list: true,
            rtt: None,
        }
    }

    /// Whether checking of this pair has ended.
    pub fn is_done(&self) -> bool {
        matches!(self.state, PairState::Succeeded | PairState::Failed)
    }
}

/// The check list of the single data stream and component WebRTC uses
/// (RFC 8445 §6.1.2; rtcp-mux and BUNDLE leave one).
#[derive(Clone, Debug, Default)]
pub struct CheckList {
    pub pairs: Vec<CandidatePair>,
    /// §7.3.1.4: pairs to check before any ordinary check, in order.
    pub triggered: VecDeque<usize>,
}

impl CheckList {
    pub fn clear(&mut self) {
        self.pairs.clear();
        self.triggered.clear();
    }

    pub fn find(&self, local: usize, remote: usize) -> Option<usize> {
        self.pairs.iter().position(|p| p.local == local && p.remote == remote)
    }

    /// Adds a pair, keeping at most `limit` (§6.1.2.5): past the limit a
    /// new pair replaces the lowest-priority frozen pair if it beats it.
    /// Returns the pair's index, or `None` if it was pruned.
    pub fn add(&mut self, pair: CandidatePair, limit: usize) -> Option<usize> {
        if self.pairs.len() < limit.max(1) {
            self.pairs.push(pair);
            return Some(self.pairs.len() - 1);
        }
        let victim = self
            .pairs
            .iter()
            .enumerate()
            .filter(|(i, p)| p.state == PairState::Frozen && !self.triggered.contains(i))
            .min_by_key(|(_, p)| p.priority)
            .map(|(i, _)| i)?;
        if self.pairs[victim].priority >= pair.priority {
            return None;
        }
        self.pairs[victim] = pair;
        Some(victim)
    }

    /// §7.3.1.4: queues a triggered check, once.
    pub fn trigger(&mut self, pair: usize) {
        if !self.triggered.contains(&pair) {
            self.triggered.push_back(pair);
        }
    }

    /// §7.2.5.3.3: a check of pair `of` succeeded; the frozen pairs of
    /// its foundation become waiting. `foundation(p)` is pair p's.
    pub fn unfreeze_foundation(&mut self, foundation: impl Fn(&CandidatePair) -> (usize, usize), of: usize) {
        let of = foundation(&self.pairs[of]);
        for p in &mut self.pairs {
            if p.state == PairState::Frozen && foundation(p) == of {
                p.state = PairState::Waiting;
            }
        }
    }

    /// §6.1.4.2: the pair the next Ta tick checks: the head of the
    /// triggered queue, else the highest-priority waiting pair, else the
    /// highest-priority frozen pair whose foundation has no waiting or
    /// in-progress pair. `foundation(p)` is pair p's foundation and
    /// `checkable(p)` whether its local candidate can originate checks.
    pub fn next_check(
        &mut self,
        foundation: impl Fn(&CandidatePair) -> (usize, usize),
        checkable: impl Fn(&CandidatePair) -> bool,
    ) -> Option<usize> {
        if let Some(i) = self.triggered.pop_front() {
            return Some(i);
        }
        self.next_ordinary(foundation, checkable)
    }

    /// Whether [`CheckList::next_check`] would return a pair. Allocates
    /// nothing: the agent asks after every input.
    pub fn has_work(
        &self,
        foundation: impl Fn(&CandidatePair) -> (usize, usize),
        checkable: impl Fn(&CandidatePair) -> bool,
    ) -> bool {
        !self.triggered.is_empty() || self.next_ordinary(foundation, checkable).is_some()
    }

    fn next_ordinary(
        &self,
        foundation: impl Fn(&CandidatePair) -> (usize, usize),
        checkable: impl Fn(&CandidatePair) -> bool,
    ) -> Option<usize> {
        let candidates = || {
            self.pairs
                .iter()
                .enumerate()
                .filter(|(_, p)| p.in_check_list && checkable(p))
        };
        let waiting = candidates()
            .filter(|(_, p)| p.state == PairState::Waiting)
            .max_by_key(|(_, p)| p.priority)
            .map(|(i, _)| i);
        if waiting.is_some() {
            return waiting;
        }
        let busy = |f: (usize, usize)| {
            self.pairs
                .iter()
                .any(|p| matches!(p.state, PairState::Waiting | PairState::InProgress) && foundation(p) == f)
        };
        candidates()
            .filter(|(_, p)| p.state == PairState::Frozen && !busy(foundation(p)))
            .max_by_key(|(_, p)| p.priority)
            .map(|(i, _)| i)
    }

    /// The highest-priority valid pair.
    pub fn best_valid(&self) -> Option<usize> {
        self.pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.valid)
            .max_by_key(|(_, p)| p.priority)
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_priority_formula() {
        // RFC 8445 §6.1.2.3 with G > D and G < D.
        assert_eq!(pair_priority(10, 5), (5u64 << 32) + 20 + 1);
        assert_eq!(pair_priority(5, 10), (5u64 << 32) + 20);
        // Symmetric but for the tie bit.
        assert!(pair_priority(2000, 1000) == pair_priority(1000, 2000) + 1);
        // Hostile priorities saturate instead of overflowing.
        assert_eq!(pair_priority(u32::MAX, u32::MAX), u64::MAX);
    }

    #[test]
    fn unfreezes_one_pair_per_foundation() {
        let mut list = CheckList::default();
        for (i, prio) in [(0, 30), (1, 20), (2, 10)] {
            list.add(CandidatePair::new(i, 0, prio), 10);
        }
        // Pairs 0 and 1 share a foundation, pair 2 has its own.
        let f = |p: &CandidatePair| [(0, 0), (0, 0), (1, 0)][p.local];
        let first = list.next_check(f, |_| true).unwrap();
        assert_eq!(first, 0);
        list.pairs[first].state = PairState::InProgress;
        assert_eq!(list.next_check(f, |_| true), Some(2));
        list.pairs[2].state = PairState::InProgress;
        assert_eq!(list.next_check(f, |_| true), None);
        list.pairs[first].state = PairState::Succeeded;
        list.unfreeze_foundation(f, first);
        assert_eq!(list.next_check(f, |_| true), Some(1));
    }

    #[test]
    fn limit_keeps_best_pairs() {
        let mut list = CheckList::default();
        list.add(CandidatePair::new(0, 0, 5), 2);
        list.add(CandidatePair::new(1, 0, 7), 2);
        assert_eq!(list.add(CandidatePair::new(2, 0, 1), 2), None);
        assert_eq!(list.add(CandidatePair::new(3, 0, 9), 2), Some(0));
    }
}
