//! The single forward pass: one reader (the calling thread), workers that own lanes.
#![deny(clippy::arithmetic_side_effects)]

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::mpsc;
use std::sync::Arc;

use super::{HashPlanError, Hasher, Lane, Outputs, Plan, Segment};

/// Read size of the pass. 1 MiB keeps a chunk in the L2/L3 cache while every lane of a
/// worker hashes it, and is large enough that per-chunk overhead does not show.
pub const DEFAULT_CHUNK: usize = 1 << 20;
/// Buffers in flight: bounds memory (`POOL * chunk`) and lets the reader run ahead.
const POOL: usize = 16;

/// How to run a plan.
#[derive(Clone, Copy, Default)]
pub struct RunOptions<'a> {
    /// Worker threads; `None` uses the available parallelism.
    pub threads: Option<usize>,
    /// Read size; `None` uses [`DEFAULT_CHUNK`].
    pub chunk: Option<usize>,
    /// Called after each chunk with (bytes read, file length).
    pub progress: Option<&'a (dyn Fn(u64, u64) + Sync)>,
}

impl std::fmt::Debug for RunOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("threads", &self.threads)
            .field("chunk", &self.chunk)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// A chunk of the file; its buffer goes back to the pool when the last worker drops it.
struct Chunk {
    offset: u64,
    data: Vec<u8>,
    pool: mpsc::Sender<Vec<u8>>,
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // The reader may have finished already; a closed pool just frees the buffer.
        let _ = self.pool.send(std::mem::take(&mut self.data));
    }
}

/// One lane being fed: its hasher and where it stands.
struct LaneState<'p> {
    lane: &'p Lane,
    hasher: Hasher,
    /// Index of the current segment.
    seg: usize,
    /// Bytes of the current `File` segment already fed.
    done: u64,
    outputs: Vec<(super::OutputId, super::DigestOut)>,
}

static ZEROS: [u8; 64 * 1024] = [0u8; 64 * 1024];

impl<'p> LaneState<'p> {
    fn new(lane: &'p Lane) -> Self {
        let mut s = Self {
            lane,
            hasher: Hasher::new(lane.algo),
            seg: 0,
            done: 0,
            outputs: Vec::new(),
        };
        s.run_literals();
        s
    }

    /// Feed every non-file segment from the current one on, up to the next file range.
    fn run_literals(&mut self) {
        while let Some(seg) = self.lane.segments.get(self.seg) {
            match seg {
                Segment::File { .. } => return,
                Segment::Bytes(b) => self.hasher.update(b),
                Segment::Zeros(n) => {
                    let mut left = *n;
                    while left > 0 {
                        let k = left.min(ZEROS.len() as u64) as usize;
                        self.hasher.update(ZEROS.get(..k).unwrap_or(&[]));
                        left = left.saturating_sub(k as u64);
                    }
                }
                Segment::Emit(id) => self.outputs.push((*id, self.hasher.snapshot())),
            }
            self.seg = self.seg.saturating_add(1);
        }
    }

    fn is_complete(&self) -> bool {
        self.seg >= self.lane.segments.len()
    }

    /// Feed the part of `data` (file bytes from `chunk_off`) this lane needs.
    fn feed(&mut self, chunk_off: u64, data: &[u8]) {
        let chunk_end = chunk_off.saturating_add(data.len() as u64);
        while let Some(Segment::File { offset, len }) = self.lane.segments.get(self.seg) {
            let want = offset.saturating_add(self.done);
            let seg_end = offset.saturating_add(*len);
            if want >= chunk_end || want < chunk_off {
                // Not in this chunk (a later one), or already passed: the final
                // completeness check reports the latter.
                return;
            }
            let take_end = seg_end.min(chunk_end);
            let a = want.saturating_sub(chunk_off) as usize;
            let b = take_end.saturating_sub(chunk_off) as usize;
            self.hasher.update(data.get(a..b).unwrap_or(&[]));
            self.done = self.done.saturating_add(take_end.saturating_sub(want));
            if self.done < *len {
                return;
            }
            self.seg = self.seg.saturating_add(1);
            self.done = 0;
            self.run_literals();
        }
    }
}

pub(super) fn run(
    plan: &Plan,
    file: &File,
    path: &str,
    opts: &RunOptions,
) -> Result<Outputs, HashPlanError> {
    for lane in &plan.lanes {
        for s in &lane.segments {
            if let Segment::File { offset, len } = s {
                let end = offset.saturating_add(*len);
                if end > plan.file_len {
                    return Err(HashPlanError::RangeBeyondFile {
                        lane: lane.name.clone(),
                        offset: *offset,
                        end,
                        file_len: plan.file_len,
                    });
                }
            }
        }
    }
    let (streamed, positioned): (Vec<&Lane>, Vec<&Lane>) =
        plan.lanes.iter().partition(|l| l.is_streamable());

    let threads = opts
        .threads
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .clamp(1, streamed.len().max(1));
    let groups = assign(&streamed, threads);
    let chunk = opts.chunk.unwrap_or(DEFAULT_CHUNK).max(4096);

    let mut outputs = Outputs(vec![None; plan.n_outputs]);
    let results = std::thread::scope(|scope| {
        let mut senders = Vec::with_capacity(groups.len());
        let mut handles = Vec::with_capacity(groups.len());
        for group in &groups {
            let (tx, rx) = mpsc::channel::<Arc<Chunk>>();
            senders.push(tx);
            let lanes: Vec<&Lane> = group.clone();
            handles.push(scope.spawn(move || worker(lanes, rx)));
        }
        let read = read_pass(plan, file, path, chunk, &senders, opts);
        drop(senders);
        let mut worker_results = Vec::with_capacity(handles.len());
        for h in handles {
            worker_results.push(h.join().map_err(|_| HashPlanError::WorkerPanicked));
        }
        (read, worker_results)
    });
    let (read, worker_results) = results;
    // A read error explains incomplete lanes: report it first.
    read?;
    for r in worker_results {
        for (id, d) in r?? {
            outputs.set(id, d);
        }
    }

    for lane in positioned {
        for (id, d) in positioned_lane(lane, file, path, chunk)? {
            outputs.set(id, d);
        }
    }
    Ok(outputs)
}

type WorkerResult = Result<Vec<(super::OutputId, super::DigestOut)>, HashPlanError>;

fn worker(lanes: Vec<&Lane>, rx: mpsc::Receiver<Arc<Chunk>>) -> WorkerResult {
    let mut states: Vec<LaneState> = lanes.into_iter().map(LaneState::new).collect();
    for chunk in rx {
        for s in states.iter_mut().filter(|s| !s.is_complete()) {
            s.feed(chunk.offset, &chunk.data);
        }
    }
    let mut out = Vec::new();
    for s in states {
        if !s.is_complete() {
            return Err(HashPlanError::LaneIncomplete {
                lane: s.lane.name.clone(),
            });
        }
        out.extend(s.outputs);
    }
    Ok(out)
}

/// Longest-processing-time-first: each lane, most expensive first, goes to the worker
/// with the least work so far.
fn assign<'p>(lanes: &[&'p Lane], workers: usize) -> Vec<Vec<&'p Lane>> {
    let mut sorted: Vec<&Lane> = lanes.to_vec();
    sorted.sort_by_key(|l| std::cmp::Reverse(l.cost()));
    let mut groups: Vec<(u64, Vec<&Lane>)> = (0..workers).map(|_| (0, Vec::new())).collect();
    for lane in sorted {
        if let Some(g) = groups.iter_mut().min_by_key(|g| g.0) {
            g.0 = g.0.saturating_add(lane.cost());
            g.1.push(lane);
        }
    }
    groups
        .into_iter()
        .map(|g| g.1)
        .filter(|g| !g.is_empty())
        .collect()
}

fn io_err(path: &str, offset: u64, error: std::io::Error) -> HashPlanError {
    HashPlanError::Io {
        path: path.to_string(),
        offset,
        error,
    }
}

/// Read the file front to back once, check the expected bytes, hand chunks out.
fn read_pass(
    plan: &Plan,
    file: &File,
    path: &str,
    chunk: usize,
    senders: &[mpsc::Sender<Arc<Chunk>>],
    opts: &RunOptions,
) -> Result<(), HashPlanError> {
    let (pool_tx, pool_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..POOL {
        let _ = pool_tx.send(Vec::with_capacity(chunk));
    }
    let mut offset = 0u64;
    loop {
        // Blocks until a worker has returned a buffer: the pool is the back-pressure.
        let mut buf = pool_rx.recv().unwrap_or_default();
        buf.resize(chunk, 0);
        let mut filled = 0usize;
        while filled < chunk {
            // Positioned reads: the pass does not depend on (or move) the file cursor.
            let at = offset.saturating_add(filled as u64);
            let n = match file.read_at(buf.get_mut(filled..).unwrap_or(&mut []), at) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(path, offset.saturating_add(filled as u64), e)),
            };
            if n == 0 {
                break;
            }
            filled = filled.saturating_add(n);
        }
        buf.truncate(filled);
        if filled == 0 {
            break;
        }
        let end = offset.saturating_add(filled as u64);
        if end > plan.file_len {
            return Err(HashPlanError::LengthChanged {
                path: path.to_string(),
                expected: plan.file_len,
                found: end,
            });
        }
        check_expects(plan, path, offset, &buf)?;
        let c = Arc::new(Chunk {
            offset,
            data: buf,
            pool: pool_tx.clone(),
        });
        for tx in senders {
            // A worker only stops early by panicking; that is reported at join.
            let _ = tx.send(Arc::clone(&c));
        }
        drop(c);
        offset = end;
        if let Some(p) = opts.progress {
            p(offset, plan.file_len);
        }
    }
    if offset != plan.file_len {
        return Err(HashPlanError::LengthChanged {
            path: path.to_string(),
            expected: plan.file_len,
            found: offset,
        });
    }
    Ok(())
}

fn check_expects(
    plan: &Plan,
    path: &str,
    chunk_off: u64,
    data: &[u8],
) -> Result<(), HashPlanError> {
    let chunk_end = chunk_off.saturating_add(data.len() as u64);
    for e in &plan.expects {
        let e_end = e.offset.saturating_add(e.bytes.len() as u64);
        let lo = e.offset.max(chunk_off);
        let hi = e_end.min(chunk_end);
        if lo >= hi {
            continue;
        }
        let in_chunk =
            data.get(lo.saturating_sub(chunk_off) as usize..hi.saturating_sub(chunk_off) as usize);
        let in_expect = e
            .bytes
            .get(lo.saturating_sub(e.offset) as usize..hi.saturating_sub(e.offset) as usize);
        if in_chunk.is_none() || in_chunk != in_expect {
            return Err(HashPlanError::ContentChanged {
                path: path.to_string(),
                offset: lo,
            });
        }
    }
    Ok(())
}

/// Hash a lane whose ranges do not ascend, with positioned reads.
fn positioned_lane(lane: &Lane, file: &File, path: &str, chunk: usize) -> WorkerResult {
    let mut st = LaneState::new(lane);
    let mut buf = vec![0u8; chunk];
    while let Some(Segment::File { offset, len }) = lane.segments.get(st.seg) {
        let (offset, len) = (*offset, *len);
        let mut pos = offset;
        let end = offset.saturating_add(len);
        while pos < end {
            let n = (end.saturating_sub(pos)).min(chunk as u64) as usize;
            let b = buf.get_mut(..n).unwrap_or(&mut []);
            file.read_exact_at(b, pos)
                .map_err(|e| io_err(path, pos, e))?;
            st.feed(pos, b);
            pos = pos.saturating_add(n as u64);
        }
    }
    if !st.is_complete() {
        return Err(HashPlanError::LaneIncomplete {
            lane: lane.name.clone(),
        });
    }
    Ok(st.outputs)
}
