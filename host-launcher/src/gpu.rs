//! NVIDIA GPUs on the host: which models can run confidential computing
//! ([`ids`]), their BARs ([`bars`]), and moving them between drivers ([`bind`]).

pub mod bars;
pub mod bind;
pub mod ids;
