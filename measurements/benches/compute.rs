//! TODO (uki owner): criterion benchmark of `compute` beside raw SHA-384 throughput.
fn main() {}
