//! Fixed log-linear latency buckets: 16 per power of two of microseconds (≤ 6.25 % wide), from 1 µs to ~134 s.
//!
//! Fixed boundaries let windows be merged by adding counts and compared bucket by bucket (Mann-Whitney U on
//! binned samples) without keeping raw samples on the request path.

use std::time::Duration;

/// Sub-buckets per power of two.
const SUB: u32 = 16;
/// Powers of two covered above the linear first octave: up to 2^27 µs ≈ 134 s.
const OCTAVES: u32 = 27;
/// Number of buckets.
pub const BUCKETS: usize = (SUB + OCTAVES * SUB) as usize;

/// The bucket of a latency in microseconds. Values beyond the range land in the last bucket.
pub fn bucket_of(micros: u64) -> usize {
    if micros < u64::from(SUB) {
        return micros as usize;
    }
    // The octave is the position of the highest bit above the first 4; the next 4 bits pick the sub-bucket.
    let high = 63 - micros.leading_zeros();
    let octave = high - SUB.trailing_zeros();
    let sub = (micros >> octave) as u32 - SUB;
    let index = (SUB + octave * SUB + sub) as usize;
    index.min(BUCKETS - 1)
}

/// The smallest latency (µs) that falls in `bucket`.
pub fn lower_bound(bucket: usize) -> u64 {
    let b = bucket as u64;
    let sub = u64::from(SUB);
    if b < sub {
        return b;
    }
    let octave = (b - sub) / sub;
    let within = (b - sub) % sub;
    (sub + within) << octave
}

/// A representative latency for `bucket`: its midpoint.
pub fn midpoint(bucket: usize) -> Duration {
    let low = lower_bound(bucket);
    let high = if bucket + 1 < BUCKETS {
        lower_bound(bucket + 1)
    } else {
        low + 1
    };
    Duration::from_micros(low + (high - low) / 2)
}

/// The latency at quantile `q` (0..=1) of bucket `counts`, as the bucket's upper edge (conservative for guards).
pub fn quantile(counts: &[u64], q: f64) -> Option<Duration> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (bucket, &count) in counts.iter().enumerate() {
        seen += count;
        if seen >= rank {
            let upper = if bucket + 1 < BUCKETS {
                lower_bound(bucket + 1)
            } else {
                lower_bound(bucket)
            };
            return Some(Duration::from_micros(upper));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotone_and_bounded() {
        let mut last = 0;
        for micros in [
            0,
            1,
            15,
            16,
            17,
            31,
            32,
            33,
            100,
            1_000,
            20_000,
            50_000,
            1_000_000,
            10_000_000,
            u64::MAX,
        ] {
            let b = bucket_of(micros);
            assert!(b >= last, "{micros} went back to bucket {b}");
            assert!(b < BUCKETS);
            last = b;
        }
    }

    #[test]
    fn each_value_lies_in_its_bucket() {
        for micros in (0..200_000u64).step_by(7).chain([1 << 20, (1 << 26) + 12_345]) {
            let b = bucket_of(micros);
            assert!(
                lower_bound(b) <= micros,
                "{micros}: bucket {b} starts at {}",
                lower_bound(b)
            );
            if b + 1 < BUCKETS {
                assert!(
                    micros < lower_bound(b + 1),
                    "{micros}: bucket {b} ends at {}",
                    lower_bound(b + 1)
                );
            }
        }
    }

    #[test]
    fn buckets_are_at_most_six_and_a_quarter_percent_wide() {
        for b in 16..BUCKETS - 1 {
            let (low, high) = (lower_bound(b), lower_bound(b + 1));
            assert!(
                (high - low) as f64 / low as f64 <= 0.0625 + 1e-9,
                "bucket {b}: {low}..{high}"
            );
        }
    }

    #[test]
    fn quantiles_of_a_known_spread() {
        let mut counts = vec![0u64; BUCKETS];
        for ms in 1..=100u64 {
            counts[bucket_of(ms * 1000)] += 1;
        }
        let p50 = quantile(&counts, 0.5).unwrap().as_micros() as f64;
        let p99 = quantile(&counts, 0.99).unwrap().as_micros() as f64;
        assert!((50_000.0..=50_000.0 * 1.07).contains(&p50), "p50 {p50}");
        assert!((99_000.0..=99_000.0 * 1.07).contains(&p99), "p99 {p99}");
        assert_eq!(quantile(&vec![0; BUCKETS], 0.5), None);
    }
}
