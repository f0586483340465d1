//! Hash each file in one streaming pass.
//!
//! A boot prediction needs many digests of one large file: the UKI's Authenticode
//! digest, each section's SHA-384, the kernel's Authenticode digest, the combined initrd
//! digest and the file's SHA-256. Reading the file once per digest would cost a
//! multiple of the I/O; instead the caller describes every digest as a *lane*: a
//! sequence of file ranges, literal bytes and zero runs to feed one hasher, with
//! `Emit` points where the lane's current state is finalised (a clone of it, so a lane
//! can go on: the combined initrd digest continues the `.initrd` section's SHA-384
//! state instead of hashing the section twice).
//!
//! [`Plan::run`] then reads the file once, sequentially, in large chunks, and hands
//! every chunk to worker threads (`std::thread::scope`), each of which owns some lanes
//! and feeds each lane the part of the chunk it covers. Lanes are spread over the
//! workers by cost (longest first onto the least loaded worker), so the wall time
//! approaches that of the most expensive single lane (one SHA-384 pass over the file).
//!
//! Lanes whose file ranges do not ascend (a file laid out in an unusual order) cannot
//! be fed from one forward pass: they are hashed afterwards with positioned reads.
//!
//! Bytes the caller already read to plan (headers, small sections) are registered with
//! [`Plan::expect`]; the pass checks them again, so a file that changes between planning
//! and hashing is an error, never a silently inconsistent result.
#![deny(clippy::arithmetic_side_effects)]

mod stream;

use std::fs::File;
use std::sync::Arc;

use sha2::{Digest as _, Sha256, Sha384};

use crate::digest::Digest48;

pub use stream::RunOptions;

/// Which hash a lane computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    Sha384,
    Sha256,
}

impl Algo {
    /// Relative cost per byte, for spreading lanes over workers. SHA-256 runs on the
    /// SHA extensions of current x86 CPUs and is then well over twice as fast as
    /// SHA-384 (about 3.3x, measured with `cargo bench --bench compute`).
    fn cost_per_byte(self) -> u64 {
        match self {
            Algo::Sha384 => 10,
            Algo::Sha256 => 3,
        }
    }
}

/// Names one digest a plan produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutputId(usize);

/// Names one lane of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneId(usize);

/// One step of a lane.
#[derive(Debug, Clone)]
pub enum Segment {
    /// File bytes `offset..offset+len`.
    File { offset: u64, len: u64 },
    /// Literal bytes (generated data, or small file parts read ahead).
    Bytes(Arc<[u8]>),
    /// `n` zero bytes (zero-filled section tails, padding).
    Zeros(u64),
    /// Finalise a clone of the lane's state as this output.
    Emit(OutputId),
}

/// One hasher and what to feed it.
#[derive(Debug, Clone)]
pub struct Lane {
    pub name: String,
    pub algo: Algo,
    pub segments: Vec<Segment>,
}

impl Lane {
    /// Bytes the lane hashes (for scheduling).
    fn bytes(&self) -> u64 {
        self.segments.iter().fold(0u64, |acc, s| match s {
            Segment::File { len, .. } | Segment::Zeros(len) => acc.saturating_add(*len),
            Segment::Bytes(b) => acc.saturating_add(b.len() as u64),
            Segment::Emit(_) => acc,
        })
    }

    fn cost(&self) -> u64 {
        self.bytes().saturating_mul(self.algo.cost_per_byte())
    }

    /// True when the file ranges ascend without overlap, so one forward pass can feed it.
    fn is_streamable(&self) -> bool {
        let mut next = 0u64;
        for s in &self.segments {
            if let Segment::File { offset, len } = s {
                if *offset < next {
                    return false;
                }
                next = offset.saturating_add(*len);
            }
        }
        true
    }
}

/// Bytes read while planning that the pass must find unchanged.
#[derive(Debug, Clone)]
pub struct Expect {
    pub offset: u64,
    pub bytes: Arc<[u8]>,
}

/// A finished digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestOut {
    Sha384(Digest48),
    Sha256([u8; 32]),
}

/// Why a plan could not be run.
#[derive(Debug, thiserror::Error)]
pub enum HashPlanError {
    #[error("reading {path} at byte offset {offset}: {error}")]
    Io {
        path: String,
        offset: u64,
        error: std::io::Error,
    },
    /// The file is not as long as when the plan was made.
    #[error("{path} changed while it was being hashed: expected {expected} bytes, found {found}")]
    LengthChanged {
        path: String,
        expected: u64,
        found: u64,
    },
    /// Bytes read while planning differ from the same bytes read by the pass.
    #[error("{path} changed while it was being hashed: bytes at offset {offset} differ from those read first")]
    ContentChanged { path: String, offset: u64 },
    /// A lane names file bytes beyond the file's end (a planning bug, reported, not a panic).
    #[error(
        "hash plan lane {lane}: file range {offset}..{end} lies beyond the file end {file_len}"
    )]
    RangeBeyondFile {
        lane: String,
        offset: u64,
        end: u64,
        file_len: u64,
    },
    /// A lane did not receive all its bytes (a planning bug or a shrinking file).
    #[error("hash plan lane {lane} did not receive all its bytes")]
    LaneIncomplete { lane: String },
    #[error("a hashing thread panicked")]
    WorkerPanicked,
}

/// The digests of a finished plan, by [`OutputId`].
#[derive(Debug, Clone, Default)]
pub struct Outputs(Vec<Option<DigestOut>>);

impl Outputs {
    pub fn get(&self, id: OutputId) -> Option<DigestOut> {
        self.0.get(id.0).copied().flatten()
    }

    /// The SHA-384 output `id`, if it is one.
    pub fn sha384(&self, id: OutputId) -> Option<Digest48> {
        match self.get(id) {
            Some(DigestOut::Sha384(d)) => Some(d),
            _ => None,
        }
    }

    /// The SHA-256 output `id`, if it is one.
    pub fn sha256(&self, id: OutputId) -> Option<[u8; 32]> {
        match self.get(id) {
            Some(DigestOut::Sha256(d)) => Some(d),
            _ => None,
        }
    }

    fn set(&mut self, id: OutputId, d: DigestOut) {
        if let Some(slot) = self.0.get_mut(id.0) {
            *slot = Some(d);
        }
    }
}

/// Every digest wanted from one file.
#[derive(Debug, Clone)]
pub struct Plan {
    file_len: u64,
    lanes: Vec<Lane>,
    expects: Vec<Expect>,
    n_outputs: usize,
}

impl Plan {
    /// A plan over a file of `file_len` bytes.
    pub fn new(file_len: u64) -> Self {
        Self {
            file_len,
            lanes: Vec::new(),
            expects: Vec::new(),
            n_outputs: 0,
        }
    }

    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    pub fn lanes(&self) -> &[Lane] {
        &self.lanes
    }

    /// Start a new lane.
    pub fn lane(&mut self, name: impl Into<String>, algo: Algo) -> LaneId {
        self.lanes.push(Lane {
            name: name.into(),
            algo,
            segments: Vec::new(),
        });
        LaneId(self.lanes.len().saturating_sub(1))
    }

    /// Append a file range (empty ranges are dropped).
    pub fn file(&mut self, lane: LaneId, offset: u64, len: u64) {
        if len > 0 {
            self.push(lane, Segment::File { offset, len });
        }
    }

    /// Append literal bytes.
    pub fn bytes(&mut self, lane: LaneId, bytes: impl Into<Arc<[u8]>>) {
        let b: Arc<[u8]> = bytes.into();
        if !b.is_empty() {
            self.push(lane, Segment::Bytes(b));
        }
    }

    /// Append `n` zero bytes.
    pub fn zeros(&mut self, lane: LaneId, n: u64) {
        if n > 0 {
            self.push(lane, Segment::Zeros(n));
        }
    }

    /// Finalise a clone of the lane's state here, as a new output.
    pub fn emit(&mut self, lane: LaneId) -> OutputId {
        let id = OutputId(self.n_outputs);
        self.n_outputs = self.n_outputs.saturating_add(1);
        self.push(lane, Segment::Emit(id));
        id
    }

    /// Require `bytes` at `offset` when the file is read.
    pub fn expect(&mut self, offset: u64, bytes: impl Into<Arc<[u8]>>) {
        self.expects.push(Expect {
            offset,
            bytes: bytes.into(),
        });
    }

    fn push(&mut self, lane: LaneId, seg: Segment) {
        if let Some(l) = self.lanes.get_mut(lane.0) {
            l.segments.push(seg);
        }
    }

    /// Read `file` (whose name `path` is used in errors) and compute every output.
    pub fn run(
        &self,
        file: &File,
        path: &str,
        opts: &RunOptions,
    ) -> Result<Outputs, HashPlanError> {
        stream::run(self, file, path, opts)
    }
}

/// The running state of one hasher.
#[derive(Clone)]
enum Hasher {
    S384(Box<Sha384>),
    S256(Box<Sha256>),
}

impl Hasher {
    fn new(algo: Algo) -> Self {
        match algo {
            Algo::Sha384 => Hasher::S384(Box::default()),
            Algo::Sha256 => Hasher::S256(Box::default()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::S384(h) => h.update(data),
            Hasher::S256(h) => h.update(data),
        }
    }

    /// Finalise a clone, leaving `self` able to continue.
    fn snapshot(&self) -> DigestOut {
        match self {
            Hasher::S384(h) => DigestOut::Sha384(Digest48((**h).clone().finalize().into())),
            Hasher::S256(h) => DigestOut::Sha256((**h).clone().finalize().into()),
        }
    }
}
