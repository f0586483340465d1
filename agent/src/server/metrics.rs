//! Prometheus metrics (`GET /metrics`, text exposition format).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: &'static str,
    pub status: u16,
}

/// Every metric the agent exports.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub prompt_tokens: Counter,
    pub completion_tokens: Counter,
    pub engine_restarts: Counter,
    pub engine_state: Gauge,
    pub quote_seconds: Histogram,
    pub receipts: Counter,
    pub in_flight: Gauge,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cocoon_agent");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        let prompt_tokens = Counter::default();
        registry.register(
            "prompt_tokens",
            "Prompt tokens of completed, accounted requests",
            prompt_tokens.clone(),
        );
        let completion_tokens = Counter::default();
        registry.register(
            "completion_tokens",
            "Completion tokens of completed, accounted requests",
            completion_tokens.clone(),
        );
        let engine_restarts = Counter::default();
        registry.register(
            "engine_restarts",
            "Engine restarts after a crash or failed check",
            engine_restarts.clone(),
        );
        let engine_state = Gauge::default();
        registry.register(
            "engine_state",
            "Engine state: 0 disabled, 1 starting, 2 ready, 3 restarting, 4 stopped",
            engine_state.clone(),
        );
        // Sim quotes take ~1 ms, real TDX quotes tens to hundreds of ms.
        let quote_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "quote_latency_seconds",
            "Time to obtain a quote for /attestation",
            quote_seconds.clone(),
        );
        let receipts = Counter::default();
        registry.register(
            "receipts",
            "Receipts appended to the ledger",
            receipts.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "in_flight_requests",
            "Engine requests being served",
            in_flight.clone(),
        );
        Metrics {
            registry,
            requests,
            prompt_tokens,
            completion_tokens,
            engine_restarts,
            engine_state,
            quote_seconds,
            receipts,
            in_flight,
        }
    }

    pub fn count(&self, route: &'static str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels { route, status })
            .inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
