//! A hire batch generated on every core, as binary COPY bytes, delivered in index order.
//!
//! Rows depend only on (date, seed, index), so the batch is cut into fixed index ranges
//! ("chunks") and chunk `k` always goes to thread `k mod threads`. Each thread has its own
//! channel of [`CHANNEL_CHUNKS`], and the reader takes chunk 0 from thread 0, chunk 1 from
//! thread 1, and so on: the bytes that reach PostgreSQL are the same whatever the number of
//! threads, and memory is bounded by `threads × (CHANNEL_CHUNKS + 1)` chunks (a thread that
//! runs ahead blocks on its full channel instead of piling chunks up).

use std::num::NonZeroUsize;

use bytes::Bytes;
use chrono::NaiveDate;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::binary_copy::{RowEncoder, TYPICAL_ROW_BYTES};
use super::clean::{clean_and_validate, Reject};
use super::generate::HireBatch;

/// Rows per chunk: large enough that a channel hop and a COPY message per chunk cost nothing
/// next to the rows, small enough that a chunk is ≈ 1.5 MB.
pub const CHUNK_ROWS: u32 = 8_192;
/// Finished chunks a thread may hold beyond the one it is making.
const CHANNEL_CHUNKS: usize = 1;

#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("employee generator thread {thread} failed: {message}")]
    Worker { thread: usize, message: String },
    #[error("employee generator thread {thread} stopped before chunk {chunk}")]
    Stopped { thread: usize, chunk: u32 },
}

/// Everything a thread needs to make any chunk of the batch.
#[derive(Debug, Clone)]
pub struct ChunkPlan {
    pub batch: HireBatch,
    /// The data interval `[start, end)`: hire dates outside it are rejected.
    pub interval: (NaiveDate, NaiveDate),
    pub count: u32,
    pub encoder: RowEncoder,
}

impl ChunkPlan {
    pub fn chunks(&self) -> u32 {
        self.count.div_ceil(CHUNK_ROWS)
    }

    /// Generates, cleans and encodes chunk `k`; rejects go to `rejects`.
    pub fn make(&self, k: u32, rejects: &mut Vec<Reject>) -> Chunk {
        let start = k * CHUNK_ROWS;
        let end = start.saturating_add(CHUNK_ROWS).min(self.count);
        let mut bytes = Vec::with_capacity((end - start) as usize * TYPICAL_ROW_BYTES);
        let mut rows = 0u64;
        for index in start..end {
            match clean_and_validate(self.batch.employee(index), self.interval) {
                Ok(employee) => {
                    self.encoder.put(&mut bytes, &employee);
                    rows += 1;
                }
                Err(reject) => rejects.push(*reject),
            }
        }
        Chunk {
            bytes: Bytes::from(bytes),
            rows,
        }
    }
}

/// COPY tuples for one index range, without header or trailer.
#[derive(Debug)]
pub struct Chunk {
    pub bytes: Bytes,
    /// Rows in `bytes` (the range minus its rejects).
    pub rows: u64,
}

/// How many generator threads: one per core the process may use (a Lambda function gets
/// 1–6 vCPUs with its memory size), never more than there are chunks.
pub fn default_threads() -> NonZeroUsize {
    std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

/// The running generator threads and the reading end of their channels.
pub struct Chunks {
    receivers: Vec<mpsc::Receiver<Chunk>>,
    /// `None` once awaited (a JoinHandle must not be polled after it completed).
    workers: Vec<Option<JoinHandle<Vec<Reject>>>>,
    next: u32,
    total: u32,
}

impl Chunks {
    /// Starts `threads` threads (fewer if the batch has fewer chunks) on the blocking pool.
    pub fn start(plan: ChunkPlan, threads: NonZeroUsize) -> Self {
        let total = plan.chunks();
        let threads = threads.get().min(total.max(1) as usize);
        let (mut receivers, mut workers) = (Vec::new(), Vec::new());
        for thread in 0..threads {
            let (sender, receiver) = mpsc::channel(CHANNEL_CHUNKS);
            receivers.push(receiver);
            let plan = plan.clone();
            workers.push(Some(tokio::task::spawn_blocking(move || {
                let mut rejects = Vec::new();
                for k in (thread as u32..total).step_by(threads) {
                    let chunk = plan.make(k, &mut rejects);
                    if sender.blocking_send(chunk).is_err() {
                        break; // the reader stopped; its error is what the caller reports
                    }
                }
                rejects
            })));
        }
        Self {
            receivers,
            workers,
            next: 0,
            total,
        }
    }

    /// The next chunk in index order, or `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Chunk>, ChunkError> {
        if self.next == self.total {
            return Ok(None);
        }
        let thread = self.next as usize % self.receivers.len();
        match self.receivers[thread].recv().await {
            Some(chunk) => {
                self.next += 1;
                Ok(Some(chunk))
            }
            // A thread ends its channel early only by panicking: say why.
            None => Err(self
                .worker_failure(thread)
                .await
                .unwrap_or(ChunkError::Stopped {
                    thread,
                    chunk: self.next,
                })),
        }
    }

    async fn worker_failure(&mut self, thread: usize) -> Option<ChunkError> {
        let worker = self.workers.get_mut(thread)?.take()?;
        match worker.await {
            Err(err) => Some(ChunkError::Worker {
                thread,
                message: err.to_string(),
            }),
            Ok(_) => None,
        }
    }

    /// Waits for the threads and returns every reject, in index order. Call after the last
    /// chunk; called early, it stops the threads (their channels close) and waits for them.
    pub async fn finish(self) -> Result<Vec<Reject>, ChunkError> {
        drop(self.receivers);
        let mut rejects = Vec::new();
        for (thread, worker) in self.workers.into_iter().enumerate() {
            // Already awaited: it failed, and `next` reported why.
            let Some(worker) = worker else { continue };
            let mut some = worker.await.map_err(|err| ChunkError::Worker {
                thread,
                message: err.to_string(),
            })?;
            rejects.append(&mut some);
        }
        rejects.sort_by_key(|r| r.raw.index);
        Ok(rejects)
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;
    use crate::hr::load::IdBlocks;
    use crate::hr::locale::Locale;

    /// Blocks smaller than a chunk, so that chunks straddle them.
    fn ids(count: u32) -> IdBlocks {
        let per_block = NonZeroU32::new(5_000).unwrap();
        let blocks = IdBlocks::needed(count, per_block);
        let bases = (0..i64::from(blocks))
            .map(|k| (1 << 40) + (k << 21))
            .collect();
        IdBlocks::new(bases, per_block, count).unwrap()
    }

    fn plan(count: u32) -> ChunkPlan {
        let day = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        ChunkPlan {
            batch: HireBatch {
                hire_date: day,
                seed: 9,
                locale: Locale::EsEs,
            },
            interval: (day, day.succ_opt().unwrap()),
            count,
            encoder: RowEncoder::new(day, 9, ids(count)),
        }
    }

    async fn everything(plan: ChunkPlan, threads: usize) -> (Vec<u8>, u64, Vec<Reject>) {
        let mut chunks = Chunks::start(plan, NonZeroUsize::new(threads).unwrap());
        let (mut bytes, mut rows) = (Vec::new(), 0);
        while let Some(chunk) = chunks.next().await.unwrap() {
            bytes.extend_from_slice(&chunk.bytes);
            rows += chunk.rows;
        }
        (bytes, rows, chunks.finish().await.unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_bytes_do_not_depend_on_the_number_of_threads() {
        // Not a multiple of the chunk size, so the last chunk is short.
        let count = CHUNK_ROWS * 5 + 123;
        let (one, rows, rejects) = everything(plan(count), 1).await;
        assert_eq!(rows + rejects.len() as u64, u64::from(count));
        assert!(!rejects.is_empty());
        assert!(rejects.windows(2).all(|w| w[0].raw.index < w[1].raw.index));
        for threads in [2, 3, 8] {
            let (many, many_rows, many_rejects) = everything(plan(count), threads).await;
            assert!(many == one, "{threads} threads gave other bytes");
            assert_eq!((many_rows, many_rejects), (rows, rejects.clone()));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_that_stops_early_stops_the_threads() {
        let mut chunks = Chunks::start(plan(CHUNK_ROWS * 40), NonZeroUsize::new(3).unwrap());
        assert!(chunks.next().await.unwrap().is_some());
        // Each thread ends at its next send: it made at most the chunk in its channel, the one
        // it was sending and (thread 0) the one read, so nothing past the ninth chunk.
        let rejects = chunks.finish().await.unwrap();
        let made = 3 * (CHANNEL_CHUNKS as u32 + 2) * CHUNK_ROWS;
        assert!(
            rejects.iter().all(|r| (r.raw.index as u32) < made),
            "a thread went on generating"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn small_batches_use_one_thread_per_chunk_at_most() {
        let (_, rows, rejects) = everything(plan(10), 6).await;
        assert_eq!(rows + rejects.len() as u64, 10);
    }
}
