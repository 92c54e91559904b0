//! Session key → bucket → version, with version ranges anchored so that a weight change moves few users.
//!
//! A key and a per-route salt hash to one of [`BUCKETS`] buckets (xxh3-64, so the bucket is the same in every
//! process, on every platform and in every release). A [`Layout`] lays the versions' shares out on the buckets:
//!
//! ```text
//! bucket 0                                                                     bucket 9999
//! | v1 → | v3 → | v5 → |        v0 (stable, the middle)        | ← v6 | ← v4 | ← v2 |
//! ```
//!
//! Version 1 grows from bucket 0 upward, version 2 from bucket 9999 downward, further versions stack after them
//! alternately (3 after 1, 4 after 2, …), and the stable version 0 holds what is left in the middle.
//!
//! What this guarantees, exactly, for any two share vectors `old` → `new`:
//! - versions 1 and 2 sit at an anchor, so their range depends on their own share only: a bucket leaves them only
//!   if their share fell, and joins them only if their share rose;
//! - the stable version's range is what the others leave, so a bucket leaves it only for a version that grew and
//!   joins it only from a version that shrank.
//!
//! With 2 versions that is the whole story: raising one moves only users of the other into it, lowering it moves
//! only its own users out. With 3 versions it holds exactly when the stable version's weight changes, or when weight
//! moves between the stable version and one anchored version. It does *not* when an anchored version changes and
//! both others absorb the change: raising version 1 shrinks version 2 too, whose freed buckets go to the stable
//! version while the stable version's lowest buckets go to version 1 — so some users of version 2 move to the
//! stable version (no user ever leaves version 1 or joins version 2). With more than 3 versions, version 3 and up
//! sit behind an inner version, so their range shifts whenever that inner version's share changes, even if their
//! own does not.

use std::ops::Range;

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// The number of buckets, one per slot of [`sluice_config::SLOTS`] (0.01 % resolution).
pub(crate) const BUCKETS: u16 = 10_000;

const _: () = assert!(BUCKETS as u32 == sluice_config::SLOTS);

/// The hash seed for a route's salt. Call once when the route table is built, not per request.
pub(crate) fn salt_seed(salt: &str) -> u64 {
    xxh3_64(salt.as_bytes())
}

/// The bucket, in `0..BUCKETS`, of a session key under a route's [`salt_seed`]. Allocation-free.
pub(crate) fn bucket(key: &[u8], salt_seed: u64) -> u16 {
    let b = xxh3_64_with_seed(key, salt_seed) % u64::from(BUCKETS);
    u16::try_from(b).expect("a value below BUCKETS fits in u16")
}

/// One version's range of buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    start: u16,
    end: u16,
    version: usize,
}

/// The versions of one route laid out on anchored bucket ranges (see the module docs). Built once per route table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The non-empty ranges in bucket order; together they cover `0..BUCKETS`, or nothing if every share is 0.
    segments: Box<[Segment]>,
}

impl Layout {
    /// Lays out `shares`, indexed by version (index 0 is the stable version), as returned by
    /// [`sluice_config::shares`]. Anything that does not sum to [`sluice_config::SLOTS`] is treated as weights and
    /// normalised by that same function.
    pub(crate) fn new(shares: &[u32]) -> Self {
        let total: u64 = shares.iter().map(|&s| u64::from(s)).sum();
        let normalised;
        let shares = if total == 0 || total == u64::from(sluice_config::SLOTS) {
            shares
        } else {
            normalised = sluice_config::shares(shares);
            &normalised
        };
        let share = |v: usize| u16::try_from(shares[v]).expect("a share sums with others to at most BUCKETS");

        let mut segments = Vec::with_capacity(shares.len());
        if total != 0 {
            let mut bottom = 0u16;
            for v in (1..shares.len()).step_by(2) {
                let end = bottom + share(v);
                segments.push(Segment {
                    start: bottom,
                    end,
                    version: v,
                });
                bottom = end;
            }
            let mut top_side = Vec::with_capacity(shares.len() / 2);
            let mut top = BUCKETS;
            for v in (2..shares.len()).step_by(2) {
                let start = top - share(v);
                top_side.push(Segment {
                    start,
                    end: top,
                    version: v,
                });
                top = start;
            }
            segments.push(Segment {
                start: bottom,
                end: top,
                version: 0,
            });
            segments.extend(top_side.into_iter().rev());
            segments.retain(|s| s.start < s.end);
        }
        Self {
            segments: segments.into_boxed_slice(),
        }
    }

    /// The version that owns `bucket`; `None` if every share is 0 (or `bucket` is out of range).
    /// O(log versions), allocation-free.
    pub(crate) fn version_for(&self, bucket: u16) -> Option<usize> {
        let i = self.segments.partition_point(|s| s.end <= bucket);
        self.segments.get(i).map(|s| s.version)
    }

    /// Every version's non-empty range, in bucket order, for display. Versions with a share of 0 are left out.
    pub(crate) fn ranges(&self) -> Vec<(usize, Range<u16>)> {
        self.segments.iter().map(|s| (s.version, s.start..s.end)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sluice_config::shares;

    fn counts(layout: &Layout, versions: usize) -> Vec<u32> {
        let mut counts = vec![0; versions];
        for b in 0..BUCKETS {
            counts[layout.version_for(b).expect("some share is not 0")] += 1;
        }
        counts
    }

    /// Every bucket whose version differs between two layouts, as (bucket, old version, new version).
    fn moves(old: &Layout, new: &Layout) -> Vec<(u16, usize, usize)> {
        (0..BUCKETS)
            .filter_map(|b| {
                let (a, c) = (old.version_for(b)?, new.version_for(b)?);
                (a != c).then_some((b, a, c))
            })
            .collect()
    }

    #[test]
    fn hash_is_standard_xxh3_and_never_changes() {
        // The XXH3-64 reference value for empty input, seed 0: anyone can recompute buckets outside sluice.
        assert_eq!(xxh3_64(b""), 0x2D06_8005_38D3_94C2);
        // Pinned: if these change, every sticky user flips version on upgrade.
        let seed = salt_seed("checkout");
        assert_eq!(seed, 0xC959_7D5D_E438_33CC);
        assert_eq!(bucket(b"user-1", seed), 7_502);
        assert_eq!(bucket(b"user-2", seed), 8_586);
        assert_eq!(u64::from(bucket(b"", 0)), 0x2D06_8005_38D3_94C2 % 10_000);
    }

    #[test]
    fn salt_changes_the_bucket() {
        let same = (0..100u32)
            .filter(|i| {
                let key = format!("user-{i}");
                bucket(key.as_bytes(), salt_seed("a")) == bucket(key.as_bytes(), salt_seed("b"))
            })
            .count();
        assert!(same < 3, "{same} of 100 keys kept their bucket under another salt");
    }

    #[test]
    fn layout_of_three() {
        let layout = Layout::new(&[8000, 1500, 500]);
        assert_eq!(layout.ranges(), vec![(1, 0..1500), (0, 1500..9500), (2, 9500..10_000)]);
        assert_eq!(layout.version_for(0), Some(1));
        assert_eq!(layout.version_for(1499), Some(1));
        assert_eq!(layout.version_for(1500), Some(0));
        assert_eq!(layout.version_for(9499), Some(0));
        assert_eq!(layout.version_for(9500), Some(2));
        assert_eq!(layout.version_for(9999), Some(2));
        assert_eq!(layout.version_for(10_000), None);
    }

    #[test]
    fn layout_of_five_stacks_alternately() {
        let layout = Layout::new(&[6000, 1000, 1000, 1000, 1000]);
        assert_eq!(
            layout.ranges(),
            vec![
                (1, 0..1000),
                (3, 1000..2000),
                (0, 2000..8000),
                (4, 8000..9000),
                (2, 9000..10_000)
            ]
        );
    }

    #[test]
    fn zero_shares_are_left_out_and_all_zero_is_none() {
        assert_eq!(Layout::new(&[0, 10_000]).ranges(), vec![(1, 0..10_000)]);
        assert_eq!(Layout::new(&[10_000, 0, 0]).ranges(), vec![(0, 0..10_000)]);
        for layout in [Layout::new(&[0, 0]), Layout::new(&[])] {
            assert_eq!(layout.version_for(0), None);
            assert_eq!(layout.ranges(), vec![]);
        }
    }

    #[test]
    fn raw_weights_are_normalised() {
        assert_eq!(Layout::new(&[95, 5]), Layout::new(&[9500, 500]));
    }

    #[test]
    fn fourth_version_shifts_when_the_inner_one_changes() {
        // Documented limit: version 3 stacks on version 1, so its users move although its own share is unchanged.
        let old = Layout::new(&[7000, 1000, 1000, 1000]);
        let new = Layout::new(&[6000, 2000, 1000, 1000]);
        assert_eq!(old.ranges()[1], (3, 1000..2000));
        assert_eq!(new.ranges()[1], (3, 2000..3000));
        assert!(moves(&old, &new).iter().any(|&(_, a, _)| a == 3));
    }

    #[test]
    fn three_versions_raising_an_anchored_one_moves_the_other_anchored_into_stable() {
        // Documented limit: raising version 1 from 10 to 30 shrinks version 2's share too.
        let old = Layout::new(&shares(&[80, 10, 10]));
        let new = Layout::new(&shares(&[80, 30, 10]));
        let moves = moves(&old, &new);
        assert!(moves.iter().all(|&(_, a, c)| c == 1 || (a, c) == (2, 0)));
        assert!(moves.iter().any(|&(_, a, c)| (a, c) == (2, 0)));
    }

    /// The issue's scenario: blue (stable) and canary, 10,000 users.
    #[test]
    fn canary_ramp_keeps_users_sticky() {
        let seed = salt_seed("checkout");
        let users: Vec<u16> = (0..10_000)
            .map(|i| bucket(format!("user-{i}").as_bytes(), seed))
            .collect();
        let assign = |weights: &[u32]| -> Vec<usize> {
            let layout = Layout::new(&shares(weights));
            users
                .iter()
                .map(|&b| layout.version_for(b).expect("weights are not all 0"))
                .collect()
        };
        let at_5 = assign(&[95, 5]);
        let canary_5 = at_5.iter().filter(|&&v| v == 1).count();
        assert!(
            (450..=550).contains(&canary_5),
            "{canary_5} of 10000 users on the canary at 5 %"
        );

        let at_25 = assign(&[75, 25]);
        let blue_5 = 10_000 - canary_5;
        let moved_to_canary = at_5.iter().zip(&at_25).filter(|&(&a, &b)| a == 0 && b == 1).count();
        let moved_to_blue = at_5.iter().zip(&at_25).filter(|&(&a, &b)| a == 1 && b == 0).count();
        assert_eq!(moved_to_blue, 0, "every canary user stays on the canary");
        let moved = moved_to_canary as f64 / blue_5 as f64;
        // Expected 2000/9500 = 21.05 % of blue users.
        assert!((0.20..0.22).contains(&moved), "{moved:.4} of blue users moved");

        assert!(assign(&[100, 0]).iter().all(|&v| v == 0));
        assert_eq!(
            assign(&[95, 5]),
            at_5,
            "back at 5 % exactly the original canary users return"
        );
    }

    fn weights(n: usize) -> impl Strategy<Value = Vec<u32>> {
        // Small weights make ties and zero shares common; large ones exercise the 0.01 % rounding.
        prop::collection::vec(prop_oneof![0u32..4, 0u32..1_000_000], n)
            .prop_filter("not all zero", |w| w.iter().any(|&x| x > 0))
    }

    proptest! {
        /// (a) Every version gets exactly its share of buckets.
        #[test]
        fn bucket_count_equals_share(w in (1usize..=7).prop_flat_map(weights)) {
            let s = shares(&w);
            prop_assert_eq!(counts(&Layout::new(&s), w.len()), s);
        }

        /// (b) The exact guarantee, for any two share vectors of 2 or 3 versions: a bucket leaves an anchored
        /// version only if its share fell and joins one only if its share rose. (With 3 versions every move has an
        /// anchored end, so this also pins the stable version: it loses users only to a version that grew and
        /// gains them only from one that shrank.)
        #[test]
        fn moves_follow_share_changes(
            (old, new) in (2usize..=3).prop_flat_map(|n| (weights(n), weights(n)))
        ) {
            let (so, sn) = (shares(&old), shares(&new));
            for (b, a, c) in moves(&Layout::new(&so), &Layout::new(&sn)) {
                prop_assert!(a == 0 || sn[a] < so[a], "bucket {} left version {} whose share did not fall", b, a);
                prop_assert!(c == 0 || sn[c] > so[c], "bucket {} joined version {} whose share did not rise", b, c);
            }
        }

        /// (b') The ramp a user performs: change ONE version's weight, the others' weights stay. With 2 versions, or
        /// when the stable version's weight changes, raising moves users only into that version and lowering only
        /// out of it. With 3 versions and an anchored version changed, the only other moves are the documented
        /// ones between the other anchored version and the stable one.
        #[test]
        fn ramping_one_weight(
            (old, v, w) in (2usize..=3).prop_flat_map(|n| (weights(n), 0..n, 0u32..1_000_000))
        ) {
            let mut new = old.clone();
            new[v] = w;
            prop_assume!(new.iter().any(|&x| x > 0));
            let (so, sn) = (shares(&old), shares(&new));
            let other = 3 - v; // the other anchored version when v is 1 or 2 of 3
            for (b, a, c) in moves(&Layout::new(&so), &Layout::new(&sn)) {
                if sn[v] > so[v] {
                    prop_assert!(c == v || (old.len() == 3 && v != 0 && (a, c) == (other, 0)),
                        "raising {}: bucket {} moved {} → {}", v, b, a, c);
                } else {
                    prop_assert!(a == v || (old.len() == 3 && v != 0 && (a, c) == (0, other)),
                        "lowering {}: bucket {} moved {} → {}", v, b, a, c);
                }
            }
        }

        /// Versions 1 and 2 are anchored with any number of versions: nobody leaves them while their share does
        /// not fall.
        #[test]
        fn first_two_anchored_hold_for_any_count(
            (old, new) in (3usize..=7).prop_flat_map(|n| (weights(n), weights(n)))
        ) {
            let (so, sn) = (shares(&old), shares(&new));
            for (b, a, _) in moves(&Layout::new(&so), &Layout::new(&sn)) {
                prop_assert!(!(a == 1 || a == 2) || sn[a] < so[a], "bucket {} left version {}", b, a);
            }
        }

        /// (c) Same key, salt and weights give the same version, from independently built layouts.
        #[test]
        fn deterministic(key in prop::collection::vec(any::<u8>(), 0..64), salt in ".{0,16}",
                         w in (1usize..=5).prop_flat_map(weights)) {
            let (l1, l2) = (Layout::new(&shares(&w)), Layout::new(&shares(&w)));
            let b = bucket(&key, salt_seed(&salt));
            prop_assert!(b < BUCKETS);
            prop_assert_eq!(b, bucket(&key, salt_seed(&salt)));
            prop_assert_eq!(l1.version_for(b), l2.version_for(b));
        }
    }
}
