//! Recompute, replay, verify and pin the measurements of a COCOON worker.
//!
//! Data flows one way: image artefacts -> expected measurements -> policy -> verdict.
//! Every parser of untrusted bytes reads through [`codec::Reader`] and returns a
//! typed error naming the field and byte offset; none panics.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod codec;
pub mod digest;
pub mod event;
pub mod expected;

pub mod mrtd;
pub mod tdvf;

pub mod boot;
pub mod hashplan;
pub mod pe;
pub mod uki;

pub mod eventlog;

pub mod claims;
pub mod policy;
pub mod quote;
pub mod verify;

pub mod sim;

pub mod ratls;

pub mod gpu;

pub use digest::{Digest48, Register};
pub use event::MeasuredEvent;
pub use expected::ExpectedMeasurements;
