//! Log-gamma and log-binomial coefficients, so exact tests work in log space without overflow (n = 10⁶ is fine).

use std::f64::consts::PI;

/// Lanczos approximation, g = 7, nine coefficients (Numerical Recipes / Godfrey); relative error ~1e-15.
const LANCZOS_G: f64 = 7.0;
const LANCZOS: [f64; 9] = [
    0.999_999_999_999_809_9,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_1,
    -176.615_029_162_140_6,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_572e-6,
    1.505_632_735_149_311_6e-7,
];

/// ln Γ(x) for x > 0.
pub fn ln_gamma(x: f64) -> f64 {
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 − x) = π / sin(πx).
        return (PI / (PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = LANCZOS[0];
    for (i, c) in LANCZOS.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    let t = x + LANCZOS_G + 0.5;
    0.5 * (2.0 * PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// ln C(n, k); −∞ when k > n.
pub fn ln_choose(n: u64, k: u64) -> f64 {
    if k > n {
        return f64::NEG_INFINITY;
    }
    if k == 0 || k == n {
        return 0.0;
    }
    ln_gamma(n as f64 + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0)
}

/// ln of the binomial probability P(X = k) for X ~ Bin(n, p).
pub fn ln_binomial_pmf(k: u64, n: u64, p: f64) -> f64 {
    if k > n {
        return f64::NEG_INFINITY;
    }
    let (kf, rest) = (k as f64, (n - k) as f64);
    let success = if k == 0 { 0.0 } else { kf * p.ln() };
    let failure = if k == n { 0.0 } else { rest * (-p).ln_1p() };
    ln_choose(n, k) + success + failure
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factorials_match_direct_sums() {
        let mut ln_factorial = 0.0f64;
        for n in 1..=300u32 {
            ln_factorial += f64::from(n).ln();
            let got = ln_gamma(f64::from(n) + 1.0);
            assert!(
                (got - ln_factorial).abs() <= 1e-13 * ln_factorial.max(1.0),
                "ln {n}!: {got} vs {ln_factorial}"
            );
        }
    }

    #[test]
    fn known_values() {
        // Γ(1/2) = √π; Γ(1) = Γ(2) = 1; Γ(0.1) = 9.513507698668731836 (A&S table 6.1 via Γ(1.1)/0.1).
        assert!((ln_gamma(0.5) - PI.sqrt().ln()).abs() < 1e-14);
        assert!(ln_gamma(1.0).abs() < 1e-14 && ln_gamma(2.0).abs() < 1e-14);
        assert!((ln_gamma(0.1) - 9.513_507_698_668_732f64.ln()).abs() < 1e-13);
    }

    #[test]
    fn large_binomial_coefficients_stay_finite() {
        // C(100000, 50000) by Stirling: ln ≈ 100000 ln 2 − ½ ln(π · 50000).
        let got = ln_choose(100_000, 50_000);
        let stirling = 100_000.0 * 2f64.ln() - 0.5 * (PI * 50_000.0).ln();
        assert!(got.is_finite());
        assert!((got - stirling).abs() < 1e-5, "{got} vs {stirling}");
        assert_eq!(ln_choose(5, 6), f64::NEG_INFINITY);
        assert!((ln_choose(10, 3) - 120f64.ln()).abs() < 1e-12);
    }
}
