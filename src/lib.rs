//! kaprobe: make TCP keepalive visible and testable.
//!
//! Data travels one way: `capture` (packet sources) -> `wire` (frame ->
//! segment) -> `flow` (per-connection state) -> `keepalive` (the rules) ->
//! `report` (per-connection verdicts and writers). `engine` joins the middle
//! steps; `analyze` feeds it from files, `sniff` from a live interface.
//! `poke` differs in what it does: it asks a connection's peer, through the
//! socket table, a crafted segment and the same capture and wire code.

#![forbid(unsafe_code)]

pub mod analyze;
pub mod capture;
pub mod cli;
pub mod docs;
pub mod engine;
pub mod flow;
pub mod keepalive;
pub mod poke;
pub mod privilege;
pub mod report;
pub mod signals;
pub mod sniff;
pub mod wire;

#[cfg(test)]
mod testkit;
