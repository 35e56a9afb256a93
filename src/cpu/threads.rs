//! How many threads the CPU forward uses (1 or 2), settable per process.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Threads of the CPU forward: 0 until first asked, then `LSTM_CPU_THREADS` or 1.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// How many threads the CPU forward uses for one step (1 or 2: the batch is split in
/// two halves when a step is large enough). Default 1, or `LSTM_CPU_THREADS`; see
/// BENCHMARKS.md for why one is the default.
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => {
            let n = std::env::var("LSTM_CPU_THREADS")
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(1)
                .clamp(1, 2);
            THREADS.store(n, Ordering::Relaxed);
            n
        }
        n => n,
    }
}

/// Sets [`threads`] for every later CPU forward in this process (clamped to 1..=2).
pub fn set_threads(n: usize) {
    THREADS.store(n.clamp(1, 2), Ordering::Relaxed);
}
