//! The engine's state as the proxy sees it.
//!
//! Read on every request, so the hot path is one atomic load; the reason text for
//! 503 answers sits behind a mutex that is only touched when the engine is not ready.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

use tokio::sync::watch;

/// Engine lifecycle states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineState {
    /// `engine.kind = "none"`.
    Disabled,
    /// Spawned, waiting for health, model list and known answer.
    Starting,
    Ready,
    /// Died or failed a check; waiting out the backoff before the next start.
    Restarting(String),
    /// Shut down with the agent.
    Stopped,
}

const DISABLED: u8 = 0;
const STARTING: u8 = 1;
const READY: u8 = 2;
const RESTARTING: u8 = 3;
const STOPPED: u8 = 4;

/// Shared state: set by the supervisor, read by the proxy.
pub struct EngineStatus {
    code: AtomicU8,
    detail: Mutex<EngineState>,
    changes: watch::Sender<EngineState>,
}

impl EngineStatus {
    pub fn new(initial: EngineState) -> Self {
        let (changes, _) = watch::channel(initial.clone());
        EngineStatus {
            code: AtomicU8::new(code_of(&initial)),
            detail: Mutex::new(initial),
            changes,
        }
    }

    pub fn set(&self, state: EngineState) {
        match &state {
            EngineState::Ready => tracing::info!("engine ready"),
            EngineState::Restarting(why) => tracing::warn!(reason = %why, "engine restarting"),
            other => tracing::info!(state = ?other, "engine state"),
        }
        *self.detail.lock().unwrap_or_else(|p| p.into_inner()) = state.clone();
        self.code.store(code_of(&state), Ordering::Release);
        self.changes.send_replace(state);
    }

    /// The hot-path check.
    pub fn is_ready(&self) -> bool {
        self.code.load(Ordering::Acquire) == READY
    }

    pub fn state(&self) -> EngineState {
        self.detail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A receiver for waiting on state changes (tests, boot).
    pub fn subscribe(&self) -> watch::Receiver<EngineState> {
        self.changes.subscribe()
    }

    /// Human-readable reason for a 503.
    pub fn unavailable_reason(&self) -> String {
        match self.state() {
            EngineState::Disabled => "no inference engine is configured on this worker".into(),
            EngineState::Starting => "the inference engine is starting".into(),
            EngineState::Ready => "the inference engine is ready".into(),
            EngineState::Restarting(why) => format!("the inference engine is restarting ({why})"),
            EngineState::Stopped => "the inference engine is stopped".into(),
        }
    }

    /// Numeric state for `/metrics` (0 disabled, 1 starting, 2 ready, 3 restarting, 4 stopped).
    pub fn code(&self) -> u8 {
        self.code.load(Ordering::Acquire)
    }
}

fn code_of(s: &EngineState) -> u8 {
    match s {
        EngineState::Disabled => DISABLED,
        EngineState::Starting => STARTING,
        EngineState::Ready => READY,
        EngineState::Restarting(_) => RESTARTING,
        EngineState::Stopped => STOPPED,
    }
}
