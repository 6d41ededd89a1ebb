//! Test support shared by natter-ice's integration tests: an in-memory
//! network with NATs under a virtual clock ([`net`]), and endpoints to
//! put on it ([`probe`], [`stun_server`], [`turn_server`]).

// Each test file uses a different part of this module.
#![allow(dead_code)]

pub mod net;
pub mod probe;
pub mod stun_server;
pub mod turn_server;
