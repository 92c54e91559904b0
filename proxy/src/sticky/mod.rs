//! Sticky version choice: session keys, anchored bucket ranges, signed pin cookies and match rules.
//!
//! Pure logic only: nothing here touches the network or the config file. For one request the router will
//! 1. try the match rules ([`rule::first_match`]),
//! 2. then a valid pin cookie ([`pin::PinKeys::verify`]),
//! 3. then hash the session key ([`key::KeySource::extract`], or the proxy-issued `sluice_id` cookie) into a
//!    bucket ([`bucket::bucket`]) and look it up in the route's [`bucket::Layout`].

// Nothing calls this module yet: the router wires it in next.
#![allow(dead_code)]

pub(crate) mod bucket;
pub(crate) mod key;
pub(crate) mod pin;
pub(crate) mod rule;
