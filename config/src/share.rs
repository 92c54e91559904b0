//! Turning relative weights into shares of a fixed 10,000-slot space (0.01 % resolution).
//!
//! Weighted choice, the `check` summary and (later) sticky buckets all use the same shares, so what an operator
//! reads is what the proxy does.

/// Number of slots a route's traffic is divided into: one slot is 0.01 %.
pub const SLOTS: u32 = 10_000;

/// Shares of [`SLOTS`] for relative `weights`, by the largest-remainder method: the result sums to exactly
/// [`SLOTS`] unless every weight is 0 (then every share is 0), and a non-zero weight never rounds to 0.
pub fn shares(weights: &[u32]) -> Vec<u32> {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    if total == 0 {
        return vec![0; weights.len()];
    }
    let slots = u64::from(SLOTS);
    let mut out: Vec<u32> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<(u64, usize)> = Vec::with_capacity(weights.len());
    for (i, &w) in weights.iter().enumerate() {
        let exact = u64::from(w) * slots;
        // Floor, but keep every non-zero weight visible: 1 in a billion still gets its 0.01 %.
        let floor = (exact / total).max(u64::from(w > 0));
        out.push(u32::try_from(floor).expect("a share is at most SLOTS"));
        remainders.push((exact % total, i));
    }
    let assigned: u64 = out.iter().map(|&s| u64::from(s)).sum();
    if assigned < slots {
        // Hand out the missing slots to the largest remainders; ties go to the earlier weight.
        remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, i) in remainders.iter().cycle().take((slots - assigned) as usize) {
            out[i] += 1;
        }
    } else {
        // Only the minimum-one rule can overshoot; take the excess back from the largest shares.
        let mut excess = assigned - slots;
        while excess > 0 {
            let largest = (0..out.len())
                .max_by_key(|&i| (out[i], std::cmp::Reverse(i)))
                .expect("not empty");
            out[largest] -= 1;
            excess -= 1;
        }
    }
    out
}

/// A share of [`SLOTS`] as a percentage with two decimals, e.g. `9.99` for 999.
pub fn percent(share: u32) -> String {
    format!("{}.{:02}", share / 100, share % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ninety_ten() {
        assert_eq!(shares(&[90, 10]), vec![9000, 1000]);
        assert_eq!(shares(&[9, 1]), vec![9000, 1000]);
    }

    #[test]
    fn tiny_weight_keeps_one_slot() {
        assert_eq!(shares(&[9999, 1]), vec![9999, 1]);
        assert_eq!(shares(&[1_000_000_000, 1]), vec![9999, 1]);
    }

    #[test]
    fn thirds_sum_to_slots() {
        assert_eq!(shares(&[1, 1, 1]), vec![3334, 3333, 3333]);
    }

    #[test]
    fn all_zero_is_all_zero() {
        assert_eq!(shares(&[0, 0]), vec![0, 0]);
        assert_eq!(shares(&[]), Vec::<u32>::new());
    }

    #[test]
    fn zero_weight_gets_nothing() {
        assert_eq!(shares(&[0, 5]), vec![0, 10_000]);
    }

    #[test]
    fn sums_to_slots_for_many_weights() {
        let weights: Vec<u32> = (0..200).map(|i| (i * 7919) % 1000 + 1).collect();
        let s = shares(&weights);
        assert_eq!(s.iter().sum::<u32>(), SLOTS);
        assert!(s.iter().all(|&x| x >= 1));
    }

    #[test]
    fn percent_has_two_decimals() {
        assert_eq!(percent(999), "9.99");
        assert_eq!(percent(1), "0.01");
        assert_eq!(percent(10_000), "100.00");
    }
}
