//! The retry budget: retries may add at most a configured share of a route's requests as extra load, so a
//! failing upstream is not hit with a retry storm.

use std::sync::atomic::{AtomicI64, Ordering};

use sluice_config::RetryPolicy;

/// Fixed-point unit: one retry costs this many tokens; every request earns `budget_percent` of them.
const RETRY_COST: i64 = 100;
/// Retries allowed before any traffic has earned them, so a quiet route can still retry a few.
const INITIAL_RETRIES: i64 = 10;
/// The most retries that can be saved up.
const MAX_SAVED_RETRIES: i64 = 100;

/// A route's retry policy and its token bucket.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    attempts: u32,
    earn: i64,
    tokens: AtomicI64,
}

impl RetryBudget {
    pub(crate) fn new(policy: &RetryPolicy) -> Self {
        RetryBudget {
            attempts: policy.attempts,
            earn: i64::from(policy.budget_percent),
            tokens: AtomicI64::new(INITIAL_RETRIES * RETRY_COST),
        }
    }

    /// Extra attempts allowed per request.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Every request earns its share of a retry.
    pub(crate) fn deposit(&self) {
        if self.attempts == 0 || self.earn == 0 {
            return;
        }
        // Bounded: a cheap load first, so a full bucket costs no write.
        if self.tokens.load(Ordering::Relaxed) < MAX_SAVED_RETRIES * RETRY_COST {
            self.tokens.fetch_add(self.earn, Ordering::Relaxed);
        }
    }

    /// Takes one retry from the budget; false when it is spent.
    pub(crate) fn withdraw(&self) -> bool {
        self.tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                (t >= RETRY_COST).then_some(t - RETRY_COST)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_percent_budget_allows_one_retry_per_five_requests() {
        let budget = RetryBudget::new(&RetryPolicy {
            attempts: 1,
            budget_percent: 20,
        });
        // Spend the initial allowance.
        while budget.withdraw() {}
        for _ in 0..400 {
            budget.deposit();
        }
        let mut retries = 0;
        while budget.withdraw() {
            retries += 1;
        }
        assert_eq!(retries, 80);
    }

    #[test]
    fn savings_are_capped() {
        let budget = RetryBudget::new(&RetryPolicy {
            attempts: 1,
            budget_percent: 100,
        });
        for _ in 0..10_000 {
            budget.deposit();
        }
        let mut retries = 0;
        while budget.withdraw() {
            retries += 1;
        }
        assert_eq!(retries, MAX_SAVED_RETRIES);
    }

    #[test]
    fn no_budget_no_retries_after_the_allowance() {
        let budget = RetryBudget::new(&RetryPolicy {
            attempts: 1,
            budget_percent: 0,
        });
        for _ in 0..INITIAL_RETRIES {
            assert!(budget.withdraw());
        }
        budget.deposit();
        assert!(!budget.withdraw());
    }
}
