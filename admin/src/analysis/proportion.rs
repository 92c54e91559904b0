//! One-sided test that one proportion exceeds another by more than a margin (non-inferiority).
//!
//! H0: p₁ − p₀ ≤ δ against H1: p₁ − p₀ > δ, with group 1 the canary and group 0 the stable version. The statistic
//! is Farrington & Manning's (1990) score z: (p̂₁ − p̂₀ − δ) / √(p̃₁(1 − p̃₁)/n₁ + p̃₀(1 − p̃₀)/n₀), where p̃ are the
//! maximum-likelihood rates restricted to p₁ − p₀ = δ. With δ = 0 it is the pooled two-proportion z.
//!
//! Large counts use its normal approximation. Small counts use the exact unconditional test on the same statistic
//! (Chan 1998, "Exact tests of equivalence and efficacy with a non-zero lower bound for comparative studies"): the
//! p-value is the largest, over the nuisance rate p₀ on the null boundary p₁ = p₀ + δ, of the probability of a
//! table at least as extreme. With δ = 0 this is Barnard's test (scipy's `barnard_exact(pooled=True)`).

use super::gamma::ln_choose;
use super::normal;

/// Which approximation a proportion test used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Normal approximation of the Farrington–Manning score statistic.
    FarringtonManning,
    /// Exact unconditional test on the same statistic, maximised over the nuisance rate.
    ExactUnconditional,
}

/// The outcome of a proportion test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Outcome {
    /// The Farrington–Manning z of the observed table.
    pub z: f64,
    /// One-sided p-value.
    pub p_value: f64,
    /// How it was computed.
    pub method: Method,
}

/// Above this many requests (both sides together) the exact test is not attempted: its cost grows with n, and by
/// then the normal approximation is good unless the rates are extreme.
pub const EXACT_MAX_TOTAL: u64 = 10_000;

/// Tests H1: p₁ − p₀ > `margin` for `x1` of `n1` against `x0` of `n0`. `None` when a side is empty.
///
/// The exact test is used when either side has under 1,000 requests, or when fewer than 5 errors are expected on
/// a side at the pooled rate (the normal approximation is anti-conservative there), as long as the total is at
/// most [`EXACT_MAX_TOTAL`]. In the second case the p-value is the larger of the exact and the normal one: the
/// switch depends on the error count, and taking the larger keeps the p-value non-increasing as canary errors
/// grow (the switch can only move it down).
pub fn test_difference_greater(x1: u64, n1: u64, x0: u64, n0: u64, margin: f64) -> Option<Outcome> {
    if n1 == 0 || n0 == 0 || x1 > n1 || x0 > n0 {
        return None;
    }
    let margin = margin.clamp(0.0, 1.0 - 1e-9);
    let normal = farrington_manning(x1, n1, x0, n0, margin);
    if n1 + n0 > EXACT_MAX_TOTAL {
        return Some(normal);
    }
    let pooled = (x1 + x0) as f64 / (n1 + n0) as f64;
    let small_sample = n1.min(n0) < 1_000;
    let few_errors = n1.min(n0) as f64 * pooled < 5.0;
    if small_sample {
        Some(exact_unconditional(x1, n1, x0, n0, margin))
    } else if few_errors {
        let exact = exact_unconditional(x1, n1, x0, n0, margin);
        Some(Outcome {
            p_value: exact.p_value.max(normal.p_value),
            ..exact
        })
    } else {
        Some(normal)
    }
}

/// The normal-approximation Farrington–Manning test.
pub fn farrington_manning(x1: u64, n1: u64, x0: u64, n0: u64, margin: f64) -> Outcome {
    let margin = margin.clamp(0.0, 1.0 - 1e-9);
    let z = score_z(x1, n1, x0, n0, margin);
    Outcome {
        z,
        p_value: normal::sf(z),
        method: Method::FarringtonManning,
    }
}

/// Rates maximising the likelihood subject to p₁ − p₀ = `margin`, returned as (p̃₁, p̃₀).
///
/// The restricted log-likelihood is concave in p₀ (a sum of logs of affine functions), so its derivative falls
/// monotonically: the maximum is at a boundary when the derivative has no sign change, and otherwise its single
/// root, found by Newton's method kept inside a bisection bracket. (Farrington & Manning give the cubic's closed
/// form; this cannot pick the wrong root.)
pub fn restricted_rates(x1: u64, n1: u64, x0: u64, n0: u64, margin: f64) -> (f64, f64) {
    let margin = margin.clamp(0.0, 1.0 - 1e-9);
    let (x1f, f1, x0f, f0) = (x1 as f64, (n1 - x1) as f64, x0 as f64, (n0 - x0) as f64);
    // The derivative of the log-likelihood in p₀ and its own derivative; empty cells contribute nothing (at the
    // boundaries the others may be ±∞, never both signs at once).
    let slope = |p: f64| {
        let (mut d, mut dd) = (0.0, 0.0);
        let mut add = |count: f64, at: f64, sign: f64| {
            if count > 0.0 {
                // Rounding can take 1 − p − δ just below 0 at the upper boundary.
                let at = at.max(0.0);
                d += sign * count / at;
                dd -= count / (at * at);
            }
        };
        add(x1f, p + margin, 1.0);
        add(f1, 1.0 - p - margin, -1.0);
        add(x0f, p, 1.0);
        add(f0, 1.0 - p, -1.0);
        (d, dd)
    };
    let (mut lo, mut hi) = (0.0f64, 1.0 - margin);
    if slope(lo).0 <= 0.0 {
        return (lo + margin, lo);
    }
    if slope(hi).0 >= 0.0 {
        return (hi + margin, hi);
    }
    let mut p = (x0f / n0 as f64).clamp(lo, hi);
    if p <= lo || p >= hi {
        p = 0.5 * (lo + hi);
    }
    for _ in 0..200 {
        let (d, dd) = slope(p);
        if d == 0.0 {
            break;
        }
        if d > 0.0 {
            lo = p;
        } else {
            hi = p;
        }
        let newton = p - d / dd;
        if dd < 0.0 && (newton - p).abs() <= 4.0 * f64::EPSILON * p {
            // Newton's step is below the resolution of p: converged.
            break;
        }
        p = if dd < 0.0 && newton > lo && newton < hi {
            newton
        } else {
            0.5 * (lo + hi)
        };
        if hi - lo <= f64::EPSILON * hi {
            break;
        }
    }
    (p + margin, p)
}

/// The Farrington–Manning score statistic; ±∞ when the restricted variance is zero (δ = 0 and every request in
/// both groups failed or none did, where the difference is 0 and so is z).
pub fn score_z(x1: u64, n1: u64, x0: u64, n0: u64, margin: f64) -> f64 {
    if margin == 0.0 {
        // Pooled closed form: exact, and fast for the exact test's many evaluations.
        let pooled = (x1 + x0) as f64 / (n1 + n0) as f64;
        let diff = x1 as f64 / n1 as f64 - x0 as f64 / n0 as f64;
        let var = pooled * (1.0 - pooled) * (1.0 / n1 as f64 + 1.0 / n0 as f64);
        return ratio(diff, var);
    }
    let diff = x1 as f64 / n1 as f64 - x0 as f64 / n0 as f64 - margin;
    let (p1, p0) = restricted_rates(x1, n1, x0, n0, margin);
    let var = p1 * (1.0 - p1) / n1 as f64 + p0 * (1.0 - p0) / n0 as f64;
    ratio(diff, var)
}

fn ratio(diff: f64, var: f64) -> f64 {
    if var > 0.0 {
        diff / var.sqrt()
    } else if diff.abs() < 1e-15 {
        0.0
    } else {
        diff.signum() * f64::INFINITY
    }
}

/// Tables whose z is within this of the observed one count as equally extreme (floating-point ties).
const TIE: f64 = 1e-9;
/// Points of the nuisance grid, uniform in arcsin √p₀ so their spacing follows the binomial standard deviation
/// (about four points per standard deviation of p̂₀ at n₀ = 1,000, p₀ = 1 %).
const GRID: u32 = 400;

/// The exact unconditional (Chan) test: the supremum over a fixed grid of nuisance rates on the null boundary.
///
/// The grid does not depend on the data, so a table with more canary errors (a smaller rejection region) never
/// gets a larger p-value. Cost: about GRID × 20 √n terms plus a binary search per stable count reached.
pub fn exact_unconditional(x1: u64, n1: u64, x0: u64, n0: u64, margin: f64) -> Outcome {
    let margin = margin.clamp(0.0, 1.0 - 1e-9);
    let z_obs = score_z(x1, n1, x0, n0, margin);
    let mut region = Rejection::new(n1, n0, margin, z_obs - TIE);
    let top = (1.0 - margin).sqrt().asin();
    let p_value = (0..=GRID)
        .map(|i| (top * f64::from(i) / f64::from(GRID)).sin().powi(2).min(1.0 - margin))
        .map(|p0| region.probability(p0))
        .fold(0.0, f64::max);
    Outcome {
        z: z_obs,
        p_value: p_value.clamp(0.0, 1.0),
        method: Method::ExactUnconditional,
    }
}

/// The rejection region {(a, b): z(a, b) ≥ z*} as, per stable count b, the least canary count that reaches z*
/// (z is increasing in the canary count), found lazily and remembered.
struct Rejection {
    n1: u64,
    n0: u64,
    margin: f64,
    threshold_z: f64,
    least: Vec<Option<u64>>,
    ln_choose1: Vec<f64>,
    ln_choose0: Vec<f64>,
}

impl Rejection {
    fn new(n1: u64, n0: u64, margin: f64, threshold_z: f64) -> Rejection {
        Rejection {
            n1,
            n0,
            margin,
            threshold_z,
            least: vec![None; n0 as usize + 1],
            ln_choose1: (0..=n1).map(|k| ln_choose(n1, k)).collect(),
            ln_choose0: (0..=n0).map(|k| ln_choose(n0, k)).collect(),
        }
    }

    /// The least canary count a with z(a, b) ≥ z*, or n₁ + 1 when none.
    fn least_canary(&mut self, b: u64) -> u64 {
        if let Some(a) = self.least[b as usize] {
            return a;
        }
        let (mut lo, mut hi) = (0u64, self.n1 + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if score_z(mid, self.n1, b, self.n0, self.margin) >= self.threshold_z {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        self.least[b as usize] = Some(lo);
        lo
    }

    /// P(z ≥ z*) when the stable rate is `p0` and the canary's is `p0 + margin`.
    fn probability(&mut self, p0: f64) -> f64 {
        let p1 = (p0 + self.margin).min(1.0);
        let (lo0, hi0) = support(self.n0, p0);
        let (lo1, hi1) = support(self.n1, p1);
        // Canary upper tails over its support: tail[a − lo1] = P(A ≥ a).
        let pmf1: Vec<f64> = (lo1..=hi1).map(|a| pmf(&self.ln_choose1, a, self.n1, p1)).collect();
        let mut tail = vec![0.0; pmf1.len() + 1];
        for i in (0..pmf1.len()).rev() {
            tail[i] = tail[i + 1] + pmf1[i];
        }
        let mut total = 0.0;
        for b in lo0..=hi0 {
            let weight = pmf(&self.ln_choose0, b, self.n0, p0);
            if weight == 0.0 {
                continue;
            }
            let a = self.least_canary(b);
            let upper = if a <= lo1 {
                tail[0]
            } else if a > hi1 {
                0.0
            } else {
                tail[(a - lo1) as usize]
            };
            total += weight * upper;
        }
        total
    }
}

/// The counts of Bin(n, p) outside which the probability is negligible (< 1e-20 each side).
fn support(n: u64, p: f64) -> (u64, u64) {
    let mean = n as f64 * p;
    let spread = 10.0 * (n as f64 * p * (1.0 - p)).sqrt() + 12.0;
    let lo = (mean - spread).floor().max(0.0) as u64;
    let hi = ((mean + spread).ceil() as u64).min(n);
    (lo, hi)
}

fn pmf(ln_choose: &[f64], k: u64, n: u64, p: f64) -> f64 {
    let success = if k == 0 {
        0.0
    } else if p <= 0.0 {
        return 0.0;
    } else {
        k as f64 * p.ln()
    };
    let failure = if k == n {
        0.0
    } else if p >= 1.0 {
        return 0.0;
    } else {
        (n - k) as f64 * (-p).ln_1p()
    };
    (ln_choose[k as usize] + success + failure).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_zero_exact_matches_scipy_barnard() {
        // scipy.stats.barnard_exact([[7, 12], [8, 3]], alternative='less') from scipy's documentation:
        // statistic -1.894, pvalue 0.03407. Columns are the groups: 12 of 15 vs 7 of 15.
        let out = exact_unconditional(12, 15, 7, 15, 0.0);
        assert!((out.z - 1.894).abs() < 1e-3, "{out:?}");
        assert!((out.p_value - 0.03407).abs() < 5e-5, "{out:?}");
    }

    #[test]
    fn restricted_rates_solve_the_score_equation() {
        for (x1, n1, x0, n0, m) in [
            (30, 1000, 10, 1000, 0.01),
            (0, 200, 0, 300, 0.02),
            (5, 50, 40, 50, 0.1),
            (36, 40, 12, 25, 0.05),
        ] {
            let (p1, p0) = restricted_rates(x1, n1, x0, n0, m);
            assert!((p1 - p0 - m).abs() < 1e-12);
            // Against a fine scan of the restricted log-likelihood.
            let ll = |p: f64| {
                let q = p + m;
                let t = |x: u64, n: u64, r: f64| {
                    let mut s = 0.0;
                    if x > 0 {
                        s += x as f64 * r.ln();
                    }
                    if n > x {
                        s += (n - x) as f64 * (1.0 - r).ln();
                    }
                    s
                };
                t(x1, n1, q) + t(x0, n0, p)
            };
            let best = (0..100_000)
                .map(|i| f64::from(i) / 100_000.0 * (1.0 - m))
                .fold(0.0, |b: f64, p| if ll(p) > ll(b) { p } else { b });
            assert!((best - p0).abs() < 2e-5, "{x1}/{n1} {x0}/{n0}: {p0} vs {best}");
        }
    }

    #[test]
    fn margin_zero_is_the_pooled_z() {
        // 60/1000 vs 10/1000: pooled 0.035, se √(0.035·0.965·0.002) = 0.0082189, z = 0.05/0.0082189.
        let out = farrington_manning(60, 1000, 10, 1000, 0.0);
        assert!((out.z - 6.083_51).abs() < 1e-3, "{out:?}");
        let near = score_z(60, 1000, 10, 1000, 1e-12);
        assert!((near - out.z).abs() < 1e-6);
    }

    #[test]
    fn z_increases_with_canary_errors() {
        for (n1, n0, m) in [(20, 30, 0.0), (40, 25, 0.05), (100, 100, 0.01)] {
            for b in 0..=n0 {
                let mut last = f64::NEG_INFINITY;
                for a in 0..=n1 {
                    let z = score_z(a, n1, b, n0, m);
                    assert!(z >= last, "n1 {n1} n0 {n0} m {m}: z({a}, {b}) = {z} < {last}");
                    last = z;
                }
            }
        }
    }

    #[test]
    fn exact_and_normal_agree_roughly_at_moderate_counts() {
        let exact = exact_unconditional(45, 900, 20, 900, 0.01);
        let normal = farrington_manning(45, 900, 20, 900, 0.01);
        assert!(
            (exact.p_value - normal.p_value).abs() < 0.25 * normal.p_value + 0.002,
            "{exact:?} {normal:?}"
        );
    }

    #[test]
    fn chooses_the_method_by_size() {
        let small = test_difference_greater(3, 200, 1, 200, 0.01).unwrap();
        assert_eq!(small.method, Method::ExactUnconditional);
        let large = test_difference_greater(100, 5000, 60, 5000, 0.01).unwrap();
        assert_eq!(large.method, Method::FarringtonManning);
        let rare = test_difference_greater(3, 5000, 1, 5000, 0.0).unwrap();
        assert_eq!(rare.method, Method::ExactUnconditional);
        let huge = test_difference_greater(3, 50_000, 1, 50_000, 0.0).unwrap();
        assert_eq!(huge.method, Method::FarringtonManning);
        assert!(test_difference_greater(1, 0, 0, 10, 0.01).is_none());
    }

    #[test]
    fn one_error_against_none_is_not_significant() {
        let out = test_difference_greater(1, 3, 0, 3, 0.01).unwrap();
        assert!(out.p_value > 0.2, "{out:?}");
        let out = test_difference_greater(1, 300, 0, 300, 0.0).unwrap();
        assert!(out.p_value > 0.2, "{out:?}");
    }
}
