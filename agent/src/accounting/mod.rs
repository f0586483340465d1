//! Token accounting (issue 6, item 7): what a request is charged and how the charge is
//! split, read from the engine's own `usage` report.
//!
//! - [`pricing`]: price per token and the worker/proxy split, in whole nanoTON.
//! - [`usage`]: the `usage` object of an OpenAI-compatible response.
//! - [`stream`]: streamed responses: ask the engine for a usage chunk, take it out of
//!   the SSE stream again when the client did not ask for it, forward everything else
//!   the moment it is complete.

pub mod pricing;
pub mod stream;
pub mod usage;

pub use pricing::{Amounts, Pricing, PricingError};
pub use stream::{prepare_stream_request, SseUsageTap, StreamError, StreamPrep};
pub use usage::{UsageError, UsageTokens};
