//! NVIDIA GPU confidential-computing evidence (issue 4).
//! TODO (gpu owner): implementation. `GpuPolicy` is the `[gpu]` table of the shared
//! TOML policy (see `policy`); keep its name.

pub mod certs;
pub mod rim;
pub mod spdm;
mod xml;

use serde::{Deserialize, Serialize};

/// Policy for NVIDIA GPU evidence: the `[gpu]` table of a policy file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuPolicy {}
