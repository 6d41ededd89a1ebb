//! Role conflicts (RFC 8445 §7.3.1.1, §7.2.5.1): both agents claiming
//! the same role are told apart by their tie-breakers, and the loser
//! switches.

use natter_stun::{IceControlled, IceControlling, Message};

use super::check_list::PairState;
use super::{Agent, Event, Role};

impl Agent {
    /// §7.3.1.1: a request whose ICE-CONTROLLING or ICE-CONTROLLED
    /// claims our role. The larger tie-breaker keeps its role: returns
    /// true when that is ours (the request is answered 487 Role
    /// Conflict), else takes the other role.
    pub(super) fn repair_role_conflict(&mut self, msg: &Message<'_>) -> bool {
        let their_controlling = msg.get::<IceControlling>().ok().flatten();
        let their_controlled = msg.get::<IceControlled>().ok().flatten();
        match (self.role, their_controlling, their_controlled) {
            (Role::Controlling, Some(IceControlling(tb)), _) => {
                if self.tie_breaker >= tb {
                    return true;
                }
                self.switch_role(Role::Controlled);
            }
            (Role::Controlled, _, Some(IceControlled(tb))) => {
                if self.tie_breaker < tb {
                    return true;
                }
                self.switch_role(Role::Controlling);
            }
            _ => {}
        }
        false
    }

    /// §7.2.5.1: a 487 to our check of `pair`: switch to the role
    /// opposite the one the request claimed, and check the pair again.
    pub(super) fn on_role_conflict_response(&mut self, pair: usize, sent_role: Role) {
        if self.role == sent_role {
            self.switch_role(match sent_role {
                Role::Controlling => Role::Controlled,
                Role::Controlled => Role::Controlling,
            });
        }
        let p = &mut self.check_list.pairs[pair];
        if p.state != PairState::Succeeded {
            p.state = PairState::Waiting;
        }
        self.check_list.trigger(pair);
    }

    /// A role change recomputes pair priorities; the new controlling
    /// agent starts nominating afresh.
    pub(super) fn switch_role(&mut self, role: Role) {
        if self.role == role || self.config.lite {
            return;
        }
        self.role = role;
        self.nominating = None;
        for p in &mut self.check_list.pairs {
            p.use_candidate = false;
        }
        self.recompute_priorities();
        self.events.push_back(Event::RoleChanged(role));
    }
}
