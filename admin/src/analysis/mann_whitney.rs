//! The Mann-Whitney U test on counts per ordered category (histogram buckets), and the latency-ratio shift.
//!
//! Samples in the same category are ties: they get the category's midrank, the variance is tie-corrected, and the
//! p-value is the normal approximation with continuity correction — what scipy's
//! `mannwhitneyu(x, y, method='asymptotic', use_continuity=True)` computes on the expanded samples.

use sluice_proxy::telemetry::histogram::{bucket_of, midpoint};

/// The direction of a one-sided test of the first sample against the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternative {
    /// The first sample is stochastically less than the second.
    Less,
    /// The first sample is stochastically greater than the second.
    Greater,
}

/// A Mann-Whitney U result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UTest {
    /// U of the first sample: pairs (x, y) with x > y, plus half the ties (scipy's `statistic`).
    pub u1: f64,
    /// Sample sizes.
    pub n1: u64,
    /// Second sample size.
    pub n2: u64,
    /// The continuity-corrected z in the direction of the alternative.
    pub z: f64,
    /// One-sided p-value.
    pub p_value: f64,
}

impl UTest {
    /// U₁ / (n₁ n₂): the probability that a draw from the first sample exceeds one from the second (ties half).
    pub fn superiority(&self) -> f64 {
        self.u1 / (self.n1 as f64 * self.n2 as f64)
    }
}

/// Tests `x` against `y`, each a count per ordered category (slices may differ in length; missing counts are 0).
/// `None` when either sample is empty. When every observation is tied, z is 0 and the p-value 1.
pub fn u_test(x: &[u64], y: &[u64], alternative: Alternative) -> Option<UTest> {
    let n1: u64 = x.iter().sum();
    let n2: u64 = y.iter().sum();
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let categories = x.len().max(y.len());
    let mut u1 = 0.0f64;
    let mut y_below = 0.0f64;
    let mut ties = 0.0f64;
    for k in 0..categories {
        let xk = x.get(k).copied().unwrap_or(0) as f64;
        let yk = y.get(k).copied().unwrap_or(0) as f64;
        u1 += xk * (y_below + 0.5 * yk);
        y_below += yk;
        let t = xk + yk;
        ties += t * t * t - t;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let n = n1f + n2f;
    let mean = n1f * n2f / 2.0;
    let var = n1f * n2f / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    let u = match alternative {
        Alternative::Greater => u1,
        Alternative::Less => n1f * n2f - u1,
    };
    let (z, p_value) = if var > 0.0 {
        let z = (u - mean - 0.5) / var.sqrt();
        (z, super::normal::sf(z))
    } else {
        (0.0, 1.0)
    };
    Some(UTest { u1, n1, n2, z, p_value })
}

/// Moves a latency histogram's counts to the buckets of their midpoints multiplied by `ratio`: the histogram of
/// `ratio × latency`, to within a bucket (≤ 6.25 %). With ratio 1 every count stays where it is.
pub fn scale(counts: &[u64], ratio: f64) -> Vec<u64> {
    scale_with_floor(counts, ratio, 0.0)
}

/// Like [`scale`], but every value moves up by at least `floor_micros`: the tolerance is the larger of `ratio ×`
/// and `+ floor`, so sub-millisecond jitter between two time windows is not judged as a regression.
pub fn scale_with_floor(counts: &[u64], ratio: f64, floor_micros: f64) -> Vec<u64> {
    let mut out = vec![0; counts.len()];
    let Some(last) = counts.len().checked_sub(1) else {
        return out;
    };
    for (bucket, &count) in counts.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let base = midpoint(bucket).as_micros() as f64;
        let micros = (base * ratio).max(base + floor_micros);
        let target = bucket_of(micros.round().max(0.0) as u64).min(last);
        out[target] += count;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_proxy::telemetry::histogram::BUCKETS;

    /// Counts per value for small integer samples.
    fn counts(values: &[usize]) -> Vec<u64> {
        let mut out = vec![0; 12];
        for &v in values {
            out[v] += 1;
        }
        out
    }

    fn close(actual: f64, expected: f64, rel: f64) {
        assert!(
            (actual - expected).abs() <= rel * expected.abs(),
            "got {actual:e}, expected {expected:e}"
        );
    }

    #[test]
    fn matches_scipy_without_ties() {
        // scipy.stats.mannwhitneyu([1,2,3,4,5], [6,7,8,9,10], alternative='less', method='asymptotic',
        //                          use_continuity=True): statistic 0.0, pvalue 0.006092890177235105
        let out = u_test(&counts(&[1, 2, 3, 4, 5]), &counts(&[6, 7, 8, 9, 10]), Alternative::Less).unwrap();
        assert_eq!(out.u1, 0.0);
        close(out.p_value, 0.006092890177235105, 1e-9);
    }

    #[test]
    fn matches_scipy_with_ties() {
        // scipy.stats.mannwhitneyu([1,2,2,3,3,3], [2,3,4,4,5,5], alternative='less', method='asymptotic'):
        // statistic 5.5. The brief quoted pvalue 0.02402098530155924; scipy's own formula (`_get_mwu_z`: U2 = 30.5,
        // μ = 18, continuity 0.5, tie term Σ(t³ − t) = 0 + 24 + 60 + 6 + 6 = 96, σ² = 36/12 · (13 − 96/132))
        // gives z = 12/6.067798762169179 = 1.9776529298921768 and norm.sf(z) = 0.023983936871365633 (evaluated
        // with Python's math.erfc). R's wilcox.test(correct = TRUE) uses the same variance.
        let out = u_test(
            &counts(&[1, 2, 2, 3, 3, 3]),
            &counts(&[2, 3, 4, 4, 5, 5]),
            Alternative::Less,
        )
        .unwrap();
        assert_eq!(out.u1, 5.5);
        close(out.z, 1.9776529298921768, 1e-12);
        close(out.p_value, 0.023983936871365633, 1e-9);
    }

    #[test]
    fn greater_is_less_with_the_samples_swapped() {
        let (x, y) = (counts(&[1, 2, 2, 3, 3, 3]), counts(&[2, 3, 4, 4, 5, 5]));
        let less = u_test(&x, &y, Alternative::Less).unwrap();
        let greater = u_test(&y, &x, Alternative::Greater).unwrap();
        close(greater.p_value, less.p_value, 1e-12);
        assert_eq!(greater.u1, 36.0 - 5.5);
    }

    #[test]
    fn degenerate_samples() {
        assert!(u_test(&[0, 0], &[1, 2], Alternative::Greater).is_none());
        let tied = u_test(&[0, 5], &[0, 7], Alternative::Greater).unwrap();
        assert_eq!((tied.z, tied.p_value, tied.superiority()), (0.0, 1.0, 0.5));
    }

    #[test]
    fn scaling_by_one_is_identity_and_by_two_moves_sixteen_buckets() {
        let hist: Vec<u64> = (0..BUCKETS as u64).map(|b| b % 7).collect();
        assert_eq!(scale(&hist, 1.0), hist);
        let mut one = vec![0; BUCKETS];
        one[bucket_of(10_000)] = 3;
        let doubled = scale(&one, 2.0);
        assert_eq!(doubled[bucket_of(10_000) + 16], 3);
        assert_eq!(doubled.iter().sum::<u64>(), 3);
        let mut top = vec![0; BUCKETS];
        top[BUCKETS - 1] = 1;
        assert_eq!(scale(&top, 10.0)[BUCKETS - 1], 1);
    }
}
