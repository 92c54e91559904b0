//! Fisher's exact test on a 2×2 table, by the hypergeometric distribution in log space.
//!
//! The judge does not use it for the error-rate margin: conditioning on the total number of errors removes the
//! nuisance rate only when the null is "no difference" (odds ratio 1); a null of "at most `margin` more" contains
//! every odds ratio up to infinity, so no conditional test can reject it. It is kept for margin-free comparisons
//! and as a reference for the unconditional test.

use super::gamma::ln_choose;

/// P(X = x) in log space for X ~ Hypergeometric(population, successes, draws).
fn ln_hypergeometric_pmf(x: u64, population: u64, successes: u64, draws: u64) -> f64 {
    if x > successes || x > draws || draws - x > population - successes {
        return f64::NEG_INFINITY;
    }
    ln_choose(successes, x) + ln_choose(population - successes, draws - x) - ln_choose(population, draws)
}

/// The one-sided p-value of Fisher's exact test for `[[a, b], [c, d]]` with the alternative that the odds ratio
/// is above 1 (scipy's `fisher_exact([[a, b], [c, d]], alternative='greater').pvalue`): P(X ≥ a) with the table's
/// margins fixed.
pub fn exact_greater(a: u64, b: u64, c: u64, d: u64) -> f64 {
    let population = a + b + c + d;
    let successes = a + c;
    let draws = a + b;
    let top = successes.min(draws);
    let terms: Vec<f64> = (a..=top)
        .map(|x| ln_hypergeometric_pmf(x, population, successes, draws))
        .collect();
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return 0.0;
    }
    let sum: f64 = terms.iter().map(|t| (t - max).exp()).sum();
    (max + sum.ln()).exp().min(1.0)
}

/// The two-sided p-value of Fisher's exact test (scipy's default): the probability of every table with the same
/// margins that is no more likely than the observed one (with scipy's relative tolerance of 1e-7).
pub fn exact_two_sided(a: u64, b: u64, c: u64, d: u64) -> f64 {
    let population = a + b + c + d;
    let successes = a + c;
    let draws = a + b;
    let low = draws.saturating_sub(population - successes);
    let top = successes.min(draws);
    let observed = ln_hypergeometric_pmf(a, population, successes, draws);
    let terms: Vec<f64> = (low..=top)
        .map(|x| ln_hypergeometric_pmf(x, population, successes, draws))
        .filter(|&t| t <= observed + 1e-7_f64.ln_1p())
        .collect();
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return 0.0;
    }
    let sum: f64 = terms.iter().map(|t| (t - max).exp()).sum();
    (max + sum.ln()).exp().min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_scipy_fisher_exact() {
        // scipy.stats.fisher_exact([[8, 2], [1, 5]], alternative='greater').pvalue = 280/11440 (x = 8, 9 of the
        // hypergeometric with N = 16, K = 9, n = 10: (270 + 10)/C(16, 7)) = 0.024475524475524476.
        let got = exact_greater(8, 2, 1, 5);
        assert!((got - 0.024475524475524476).abs() < 1e-12, "{got}");
        // scipy.stats.fisher_exact([[8, 2], [1, 5]]).pvalue (two-sided, the default) = 400/11440
        // = 0.03496503496503495: the value the brief quoted for 'greater'.
        let two = exact_two_sided(8, 2, 1, 5);
        assert!((two - 0.03496503496503495).abs() < 1e-12, "{two}");
    }

    #[test]
    fn tails_are_probabilities() {
        assert!((exact_greater(0, 5, 0, 5) - 1.0).abs() < 1e-12);
        assert!((exact_greater(0, 10, 3, 7) - 1.0).abs() < 1e-12);
        // Lady tasting tea: 4 of 4 right = 1 / C(8, 4).
        assert!((exact_greater(4, 0, 0, 4) - 1.0 / 70.0).abs() < 1e-14);
        assert!((exact_two_sided(4, 0, 0, 4) - 2.0 / 70.0).abs() < 1e-14);
        assert!((exact_two_sided(3, 3, 3, 3) - 1.0).abs() < 1e-12);
        // Large tables stay finite.
        let p = exact_greater(600, 49_400, 500, 49_500);
        assert!(p > 0.0 && p < 0.01, "{p}");
    }
}
