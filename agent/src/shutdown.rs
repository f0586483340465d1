//! The process-wide shutdown signal: a `watch` channel that turns true once.

use tokio::sync::watch;

/// Resolves once shutdown was requested; never, if the sender is gone without it.
///
/// Written as its own function so the `watch::Ref` guard is dropped before any
/// await: holding it would make the calling future `!Send`.
pub async fn requested(rx: &mut watch::Receiver<bool>) {
    let requested = rx.wait_for(|s| *s).await.is_ok();
    if !requested {
        std::future::pending::<()>().await;
    }
}
