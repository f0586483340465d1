//! COCOON worker host launcher (library side; the binary is `cocoon-host`).
//!
//! Data flows one way: a worker config ([`config`]) is validated, checked against the
//! host ([`preflight`]), turned into a QEMU command line ([`qemu`]) and launched and
//! supervised ([`run`]). Every lookup of `/sys`, `/proc` and `/dev` goes through a
//! [`sysroot::SysRoot`], so fixture trees can stand in for a real host in tests.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod bdf;
pub mod config;
pub mod gpu;
pub mod preflight;
pub mod qemu;
pub mod qmp;
pub mod run;
pub mod sysroot;
pub mod units;
