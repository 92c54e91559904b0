//! Weighted choice without a key: a smooth weighted round robin, precomputed when the table is built.
//!
//! nginx's smooth algorithm interleaves versions (90/10 gives nine blues then one canary, never bursts) and hits the
//! shares exactly over each cycle. Precomputing the cycle makes a choice one relaxed `fetch_add` and an index, with no
//! lock and no per-request arithmetic over the weights.

use std::sync::atomic::{AtomicUsize, Ordering};

use sluice_config::shares;

/// A precomputed cycle of version indices whose frequencies are the route's shares (0.01 % resolution).
#[derive(Debug)]
pub(crate) struct Schedule {
    cycle: Box<[u16]>,
    cursor: AtomicUsize,
}

impl Schedule {
    /// A schedule for relative weights; an empty cycle when every weight is 0.
    pub(crate) fn new(weights: &[u32]) -> Self {
        let shares = shares(weights);
        let divisor = shares.iter().copied().filter(|&s| s > 0).fold(0, gcd);
        let reduced: Vec<i64> = shares
            .iter()
            .map(|&s| i64::from(s.checked_div(divisor).unwrap_or(0)))
            .collect();
        let total: i64 = reduced.iter().sum();
        let mut current = vec![0i64; reduced.len()];
        let mut cycle = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for _ in 0..total {
            for (c, w) in current.iter_mut().zip(&reduced) {
                *c += w;
            }
            // Ties go to the earlier version, so the cycle is the same in every process.
            let best = (0..current.len())
                .max_by_key(|&i| (current[i], std::cmp::Reverse(i)))
                .expect("total > 0 implies at least one version");
            current[best] -= total;
            cycle.push(u16::try_from(best).expect("routes have far fewer than 65,536 versions"));
        }
        Schedule {
            cycle: cycle.into_boxed_slice(),
            cursor: AtomicUsize::new(0),
        }
    }

    /// The next version index, or `None` when no version has weight.
    pub(crate) fn next(&self) -> Option<usize> {
        if self.cycle.is_empty() {
            return None;
        }
        let n = self.cursor.fetch_add(1, Ordering::Relaxed);
        Some(usize::from(self.cycle[n % self.cycle.len()]))
    }

    /// Length of one full cycle.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.cycle.len()
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(schedule: &Schedule, versions: usize, n: usize) -> Vec<usize> {
        let mut c = vec![0; versions];
        for _ in 0..n {
            c[schedule.next().unwrap()] += 1;
        }
        c
    }

    #[test]
    fn ninety_ten_is_exact_per_cycle() {
        let s = Schedule::new(&[90, 10]);
        assert_eq!(s.len(), 10);
        assert_eq!(counts(&s, 2, 20_000), vec![18_000, 2_000]);
    }

    #[test]
    fn smallest_share_is_one_in_ten_thousand() {
        let s = Schedule::new(&[9999, 1]);
        assert_eq!(s.len(), 10_000);
        assert_eq!(counts(&s, 2, 20_000), vec![19_998, 2]);
    }

    #[test]
    fn all_zero_has_no_choice() {
        assert_eq!(Schedule::new(&[0, 0]).next(), None);
    }

    #[test]
    fn zero_weight_version_never_chosen() {
        let s = Schedule::new(&[0, 3, 0]);
        assert_eq!(counts(&s, 3, 100), vec![0, 100, 0]);
    }

    #[test]
    fn smooth_no_bursts_of_the_small_version() {
        // 50/30/20: no version may appear more than twice in a row, the canary never twice in a row.
        let s = Schedule::new(&[50, 30, 20]);
        let seq: Vec<usize> = (0..s.len() * 3).map(|_| s.next().unwrap()).collect();
        for w in seq.windows(3) {
            assert!(!(w[0] == w[1] && w[1] == w[2]), "burst in {seq:?}");
        }
        for w in seq.windows(2) {
            assert!(!(w[0] == 2 && w[1] == 2), "canary burst in {seq:?}");
        }
    }

    #[test]
    fn every_window_of_a_cycle_is_close_to_the_share() {
        // In any window of 100 requests at 90/10 the canary gets exactly 10: smooth, not 100 then 0.
        let s = Schedule::new(&[90, 10]);
        let seq: Vec<usize> = (0..1000).map(|_| s.next().unwrap()).collect();
        for w in seq.windows(100) {
            assert_eq!(w.iter().filter(|&&v| v == 1).count(), 10);
        }
    }
}
