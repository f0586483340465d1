//! Restart decisions: exponential backoff, give up after N consecutive fast failures.

use std::time::Duration;

use crate::config::RestartPolicy;

/// What to do after QEMU exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then start again.
    Restart(Duration),
    /// Too many fast failures in a row.
    GiveUp { failures: u32 },
}

/// Backoff state across runs.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RestartPolicy,
    consecutive_fast: u32,
}

impl Backoff {
    pub fn new(policy: RestartPolicy) -> Self {
        Self {
            policy,
            consecutive_fast: 0,
        }
    }

    /// Consecutive fast failures so far.
    pub fn fast_failures(&self) -> u32 {
        self.consecutive_fast
    }

    /// Decide after a run that lasted `ran_for`. A long run resets the count (the
    /// worker was healthy; a later crash is a new incident), a short one doubles the delay.
    pub fn after_exit(&mut self, ran_for: Duration) -> Decision {
        if ran_for >= Duration::from_secs(self.policy.fast_failure_secs) {
            self.consecutive_fast = 0;
            return Decision::Restart(Duration::from_millis(self.policy.initial_backoff_ms));
        }
        self.consecutive_fast = self.consecutive_fast.saturating_add(1);
        if self.consecutive_fast >= self.policy.max_fast_failures {
            return Decision::GiveUp {
                failures: self.consecutive_fast,
            };
        }
        let shift = self.consecutive_fast.saturating_sub(1).min(32);
        let ms = self
            .policy
            .initial_backoff_ms
            .saturating_mul(1u64 << shift)
            .min(self.policy.max_backoff_ms);
        Decision::Restart(Duration::from_millis(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RestartPolicy {
        RestartPolicy {
            initial_backoff_ms: 1000,
            max_backoff_ms: 5000,
            fast_failure_secs: 60,
            max_fast_failures: 5,
            ..RestartPolicy::default()
        }
    }

    #[test]
    fn doubles_caps_and_gives_up() {
        let mut b = Backoff::new(policy());
        let fast = Duration::from_secs(1);
        let ms = |d: Decision| match d {
            Decision::Restart(d) => d.as_millis(),
            Decision::GiveUp { .. } => 0,
        };
        assert_eq!(ms(b.after_exit(fast)), 1000);
        assert_eq!(ms(b.after_exit(fast)), 2000);
        assert_eq!(ms(b.after_exit(fast)), 4000);
        assert_eq!(ms(b.after_exit(fast)), 5000);
        assert_eq!(b.after_exit(fast), Decision::GiveUp { failures: 5 });
    }

    #[test]
    fn a_long_run_resets_the_count() {
        let mut b = Backoff::new(policy());
        b.after_exit(Duration::from_secs(1));
        b.after_exit(Duration::from_secs(1));
        assert_eq!(b.fast_failures(), 2);
        assert_eq!(
            b.after_exit(Duration::from_secs(3600)),
            Decision::Restart(Duration::from_millis(1000))
        );
        assert_eq!(b.fast_failures(), 0);
    }
}
