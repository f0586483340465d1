//! The RTMR3 runtime event log (CONTRACT section 3).
//!
//! Each event is extended into RTMR3 *before* it is appended to the log, and both
//! happen under one lock: a crash between the two can then leave an event measured
//! but unlogged (the quote stops matching the log, which a verifier notices), never
//! logged but unmeasured (which a verifier could not notice on a platform where
//! RTMR3 is the only binding). The log is sealed once the TLS key exists: the
//! certificate's claims commit to the log's digest, so a later event would make every
//! certificate already handed out describe a different TD state.

use std::sync::{Arc, Mutex};

use cocoon_measurements::ratls::{replay, RuntimeEvent};
use cocoon_measurements::Digest48;

use crate::tee::{TeeBackend, TeeError};

/// Why an event could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeLogError {
    #[error("runtime event {name:?}: RTMR3 extension failed: {source}")]
    Extend { name: String, source: TeeError },
    /// The log is sealed: the certificate already commits to its digest.
    #[error("runtime event {0:?} after the log was sealed")]
    Sealed(String),
}

/// A consistent copy of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSnapshot {
    pub events: Vec<RuntimeEvent>,
    /// True only when every event was really extended into RTMR3.
    pub rtmr3_extended: bool,
    /// Replay of `events`: what RTMR3 holds when `rtmr3_extended`.
    pub digest: Digest48,
}

#[derive(Default)]
struct Inner {
    events: Vec<RuntimeEvent>,
    /// `None` until the first event; then whether all were extended.
    extended: Option<bool>,
    sealed: bool,
}

/// The log, bound to the TEE whose RTMR3 it extends.
pub struct RuntimeLog {
    tee: Arc<dyn TeeBackend>,
    inner: Mutex<Inner>,
}

impl RuntimeLog {
    pub fn new(tee: Arc<dyn TeeBackend>) -> Self {
        RuntimeLog {
            tee,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave Inner half-updated (push is the
        // last step), so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Extend RTMR3 with the event's digest, then append it.
    pub fn record(&self, name: &str, payload: impl Into<Vec<u8>>) -> Result<(), RuntimeLogError> {
        let event = RuntimeEvent::new(name, payload);
        let mut inner = self.lock();
        if inner.sealed {
            return Err(RuntimeLogError::Sealed(name.to_string()));
        }
        let extended =
            self.tee
                .extend_rtmr3(&event.digest)
                .map_err(|source| RuntimeLogError::Extend {
                    name: name.to_string(),
                    source,
                })?;
        if !extended {
            tracing::warn!(
                event = name,
                "RTMR3 not extended (kernel has no RTMR interface); the event is bound through the REPORTDATA claims only"
            );
        }
        inner.extended = Some(inner.extended.unwrap_or(true) && extended);
        inner.events.push(event);
        Ok(())
    }

    /// Refuse further events.
    pub fn seal(&self) {
        self.lock().sealed = true;
    }

    pub fn snapshot(&self) -> LogSnapshot {
        let inner = self.lock();
        LogSnapshot {
            events: inner.events.clone(),
            rtmr3_extended: inner.extended.unwrap_or(false),
            digest: replay(&inner.events),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tee::{BootEventLog, QuoteCollateralV3, TeeKind};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// RTMR3 in memory; `can_extend` false plays a pre-6.16 kernel, `fail` a broken one.
    struct FakeTee {
        rtmr3: Mutex<Digest48>,
        can_extend: bool,
        fail: AtomicBool,
    }

    impl TeeBackend for FakeTee {
        fn kind(&self) -> TeeKind {
            TeeKind::Sim
        }
        fn quote(&self, _: &[u8; 64]) -> Result<Vec<u8>, TeeError> {
            Ok(vec![])
        }
        fn extend_rtmr3(&self, d: &Digest48) -> Result<bool, TeeError> {
            if self.fail.load(Ordering::SeqCst) {
                return Err(TeeError::io("/rtmr3", std::io::Error::other("EIO")));
            }
            if self.can_extend {
                self.rtmr3.lock().unwrap().extend(d);
            }
            Ok(self.can_extend)
        }
        fn boot_event_log(&self) -> Option<BootEventLog> {
            None
        }
        fn collateral(&self) -> Option<QuoteCollateralV3> {
            None
        }
    }

    fn tee(can_extend: bool) -> Arc<FakeTee> {
        Arc::new(FakeTee {
            rtmr3: Mutex::new(Digest48::ZERO),
            can_extend,
            fail: AtomicBool::new(false),
        })
    }

    #[test]
    fn replay_equals_the_extended_register() {
        let t = tee(true);
        let log = RuntimeLog::new(t.clone());
        log.record("config", [1u8; 32]).unwrap();
        log.record("model", b"none".to_vec()).unwrap();
        log.record("engine-cmdline", Vec::new()).unwrap();
        let s = log.snapshot();
        assert_eq!(s.events.len(), 3);
        assert!(s.rtmr3_extended);
        assert_eq!(s.digest, *t.rtmr3.lock().unwrap());
        assert_ne!(s.digest, Digest48::ZERO);
    }

    #[test]
    fn not_extended_is_reported() {
        let log = RuntimeLog::new(tee(false));
        log.record("config", [1u8; 32]).unwrap();
        let s = log.snapshot();
        assert!(!s.rtmr3_extended);
        assert_eq!(s.digest, replay(&s.events));
    }

    #[test]
    fn failed_extension_logs_nothing() {
        let t = tee(true);
        let log = RuntimeLog::new(t.clone());
        t.fail.store(true, Ordering::SeqCst);
        assert!(log.record("config", [1u8; 32]).is_err());
        assert!(log.snapshot().events.is_empty());
    }

    #[test]
    fn sealed_log_refuses_events() {
        let t = tee(true);
        let log = RuntimeLog::new(t.clone());
        log.record("config", [1u8; 32]).unwrap();
        log.seal();
        let before = *t.rtmr3.lock().unwrap();
        assert!(matches!(
            log.record("late", b"x".to_vec()),
            Err(RuntimeLogError::Sealed(_))
        ));
        // Not extended either.
        assert_eq!(*t.rtmr3.lock().unwrap(), before);
        assert_eq!(log.snapshot().events.len(), 1);
    }
}
