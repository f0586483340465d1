//! Supervision of a fake vLLM (tests/fixtures/fakevllm, started with the real argv):
//! readiness with the known-answer check, restart after a crash, a wrong answer
//! refused, the whole process group stopped.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cocoon_agent::config::EngineConfig;
use cocoon_agent::engine::supervisor_timing_from_config as timing;
use cocoon_agent::engine::{
    known_answer_digest, spawn_supervisor, EngineCommand, EngineState, EngineStatus, Probe,
    SupervisorHandle,
};
use prometheus_client::metrics::counter::Counter;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fakevllm")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Run {
    handle: Option<SupervisorHandle>,
    status: Arc<EngineStatus>,
    restarts: Counter,
    _dir: tempfile::TempDir,
}

fn start(answer_expected: &str, knobs: &[(&str, String)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut env = format!("PYTHONPATH = {:?}\n", fixtures().display().to_string());
    for (k, v) in knobs {
        env.push_str(&format!("{k} = {v:?}\n"));
    }
    let text = format!(
        r#"
kind = "vllm"
python = "python3"
model_dir = "/models/none"
served_model_name = "fake"
port = {port}
startup_timeout_secs = 20
probe_interval_secs = 1
stop_grace_secs = 2
[restart]
initial_backoff_ms = 100
max_backoff_ms = 400
[known_answer]
prompt = "hello"
max_tokens = 4
expected_sha256 = "{}"
[env]
{env}"#,
        known_answer_digest(answer_expected)
    );
    let engine: EngineConfig = toml::from_str(&text).unwrap();
    let command = EngineCommand::from_config(&engine, dir.path());
    let client = cocoon_agent::upstream::UpstreamClient::new(port, 4);
    let probe = Probe::new(
        client,
        engine.served_model_name.clone(),
        engine.known_answer.clone(),
    );
    let status = Arc::new(EngineStatus::new(EngineState::Starting));
    let restarts = Counter::default();
    let handle = spawn_supervisor(
        command,
        timing(&engine),
        vec![
            dir.path().join("engine/cache"),
            dir.path().join("engine/tmp"),
        ],
        probe,
        status.clone(),
        restarts.clone(),
    );
    Run {
        handle: Some(handle),
        status,
        restarts,
        _dir: dir,
    }
}

async fn wait_state(status: &EngineStatus, want: impl Fn(&EngineState) -> bool, secs: u64) {
    let mut rx = status.subscribe();
    tokio::time::timeout(Duration::from_secs(secs), rx.wait_for(|s| want(s)))
        .await
        .unwrap_or_else(|_| panic!("state not reached; now {:?}", status.state()))
        .unwrap();
}

fn pids(file: &Path) -> Vec<i32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

/// Gone, or a zombie waiting for a reaper that is not us.
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s.rsplit(')').next().unwrap().trim_start().starts_with('Z'),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_then_stop_kills_the_whole_group() {
    let tmp = tempfile::tempdir().unwrap();
    let workers = tmp.path().join("workers");
    let mut run = start(
        "fake answer",
        &[("FAKE_ENGINE_CHILD_PIDS", workers.display().to_string())],
    );
    wait_state(&run.status, |s| *s == EngineState::Ready, 30).await;
    assert!(run.status.is_ready());
    let worker = pids(&workers);
    assert_eq!(worker.len(), 1);
    assert!(!dead(worker[0]));
    run.handle.take().unwrap().stop().await;
    assert_eq!(run.status.state(), EngineState::Stopped);
    // The forked worker went with the group, not just the server.
    for _ in 0..50 {
        if dead(worker[0]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(dead(worker[0]), "worker {} survived the stop", worker[0]);
    assert_eq!(run.restarts.get(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_is_restarted_and_becomes_ready_again() {
    let tmp = tempfile::tempdir().unwrap();
    let starts = tmp.path().join("starts");
    let mut run = start(
        "fake answer",
        &[
            ("FAKE_ENGINE_STARTS", starts.display().to_string()),
            ("FAKE_ENGINE_CRASH_FIRST", "1.5".to_string()),
        ],
    );
    wait_state(&run.status, |s| *s == EngineState::Ready, 30).await;
    wait_state(
        &run.status,
        |s| matches!(s, EngineState::Restarting(why) if why.contains("exited")),
        10,
    )
    .await;
    assert!(!run.status.is_ready());
    assert!(run.status.unavailable_reason().contains("restarting"));
    wait_state(&run.status, |s| *s == EngineState::Ready, 30).await;
    assert_eq!(pids(&starts).len(), 2);
    assert_eq!(run.restarts.get(), 1);
    run.handle.take().unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_known_answer_is_never_ready() {
    let tmp = tempfile::tempdir().unwrap();
    let starts = tmp.path().join("starts");
    let mut run = start(
        "the right answer",
        &[("FAKE_ENGINE_STARTS", starts.display().to_string())],
    );
    wait_state(
        &run.status,
        |s| matches!(s, EngineState::Restarting(why) if why.contains("known-answer")),
        30,
    )
    .await;
    assert!(!run.status.is_ready());
    // It keeps trying with backoff: a second start happens.
    for _ in 0..100 {
        if pids(&starts).len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(pids(&starts).len() >= 2);
    run.handle.take().unwrap().stop().await;
    assert!(run.restarts.get() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ignoring_engine_is_killed_after_the_grace_period() {
    let tmp = tempfile::tempdir().unwrap();
    let starts = tmp.path().join("starts");
    let mut run = start(
        "fake answer",
        &[
            ("FAKE_ENGINE_STARTS", starts.display().to_string()),
            ("FAKE_ENGINE_IGNORE_TERM", "1".to_string()),
        ],
    );
    wait_state(&run.status, |s| *s == EngineState::Ready, 30).await;
    let server = pids(&starts)[0];
    let t0 = std::time::Instant::now();
    run.handle.take().unwrap().stop().await;
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    // Generous: the bound only tells "killed after the grace" from "never killed" on a
    // loaded CI machine.
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert!(dead(server));
}
