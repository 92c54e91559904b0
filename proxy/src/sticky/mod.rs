//! Sticky version choice: session keys, anchored bucket ranges, signed pin cookies and match rules.
//!
//! Everything but [`choice`] is pure logic: nothing touches the network or the config. For one request the router
//! 1. tries the match rules ([`rule::first_match`]),
//! 2. then, in pin mode, a valid pin cookie ([`pin::PinKeys::verify`]),
//! 3. or, in bucket mode, hashes the session key ([`key::KeySource::extract`], or the proxy-issued `sluice_id`
//!    cookie) into a bucket ([`bucket::bucket`]) and looks it up in the route's [`bucket::Layout`].

use std::ops::Range;

pub(crate) mod bucket;
pub(crate) mod choice;
pub(crate) mod key;
pub(crate) mod pin;
pub(crate) mod rule;

/// Each version's bucket range (of 10,000) for `weights` in layout order (index 0 is the stable version), in bucket
/// order, as `(version index, range)`; versions of weight 0 are left out. What `sluice check` and the admin state
/// view show, computed exactly as the router lays out sticky routes.
pub fn bucket_ranges(weights: &[u32]) -> Vec<(usize, Range<u16>)> {
    bucket::Layout::new(weights).ranges()
}
