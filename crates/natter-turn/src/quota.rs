//! Allocation quotas per user and in total (coturn's `user-quota` and
//! `total-quota`). The ledger is plain data; a server with several
//! worker threads keeps one ledger behind a lock at its I/O layer and
//! consults it when a core asks for a relay.

use std::collections::HashMap;

/// Counts live allocations against the limits; 0 means unlimited.
#[derive(Debug, Default)]
pub struct QuotaLedger {
    user_quota: u32,
    total_quota: u32,
    total: u32,
    per_user: HashMap<String, u32>,
}

impl QuotaLedger {
    pub fn new(user_quota: u32, total_quota: u32) -> Self {
        QuotaLedger {
            user_quota,
            total_quota,
            ..Default::default()
        }
    }

    /// Counts one more allocation for `user`, if the quotas allow it.
    pub fn acquire(&mut self, user: &str) -> bool {
        if self.total_quota != 0 && self.total >= self.total_quota {
            return false;
        }
        let n = self.per_user.get(user).copied().unwrap_or(0);
        if self.user_quota != 0 && n >= self.user_quota {
            return false;
        }
        self.per_user.insert(user.to_owned(), n + 1);
        self.total += 1;
        true
    }

    /// Returns an allocation of `user` to the pool.
    pub fn release(&mut self, user: &str) {
        if let Some(n) = self.per_user.get_mut(user) {
            *n -= 1;
            self.total -= 1;
            if *n == 0 {
                self.per_user.remove(user);
            }
        }
    }

    pub fn total(&self) -> u32 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_total_quotas() {
        let mut q = QuotaLedger::new(2, 3);
        assert!(q.acquire("a"));
        assert!(q.acquire("a"));
        assert!(!q.acquire("a"));
        assert!(q.acquire("b"));
        assert!(!q.acquire("c"));
        q.release("a");
        assert!(q.acquire("c"));
        q.release("nobody");
        assert_eq!(q.total(), 3);
    }
}
