//! The CPU path's second thread: one persistent worker that spins for a while after
//! each job before it parks, so that the next hand-off, a step later, costs a store and
//! a cache-line transfer instead of two futex wake-ups.
//!
//! A step's two halves take 20 µs–1 ms and a forward joins once per step. rayon's
//! `in_place_scope` (the pool before this one) blocks its caller on a condition variable
//! until the worker is done, and its worker sleeps after a few dozen yields: a join
//! could pay two wake-ups, and on this shared VM a wake-up costs tens of microseconds
//! (S1 on two threads 2.1–2.5 → 1.2 ms; BENCHMARKS.md §20). OpenMP runtimes spin for
//! the same reason (`GOMP_SPINCOUNT`).

use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::*};
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Jobs the caller took back unstarted (for the tests).
#[cfg(test)]
static TAKEN_BACK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How long the worker spins for the next job before it parks.
const SPIN_IDLE: Duration = Duration::from_micros(300);

const IDLE: u8 = 0;
const POSTED: u8 = 1;
const RUNNING: u8 = 2;
const DONE: u8 = 3;

/// A type-erased `&mut` to the caller's job closure.
type JobPtr = *mut (dyn FnMut() + Send);

struct Worker {
    /// IDLE → POSTED (by the caller, job set) → RUNNING (the worker took it) → DONE (by
    /// the worker) → IDLE (caller); or POSTED → IDLE: the caller took the job back.
    state: AtomicU8,
    /// Whether the worker is parked or about to park (the caller must unpark it).
    sleeping: AtomicBool,
    /// Held by the caller whose job the worker runs: a second caller runs both halves.
    claimed: AtomicBool,
    job: UnsafeCell<Option<JobPtr>>,
    panic: UnsafeCell<Option<Box<dyn Any + Send>>>,
    thread: OnceLock<Thread>,
}

// SAFETY: `job` and `panic` are written by one side and read by the other only across
// the Release/Acquire hand-offs of `state` (POSTED, DONE); `claimed` admits one caller.
unsafe impl Sync for Worker {}

fn worker() -> Option<&'static Worker> {
    static WORKER: OnceLock<Option<&'static Worker>> = OnceLock::new();
    *WORKER.get_or_init(|| {
        let w: &'static Worker = Box::leak(Box::new(Worker {
            state: AtomicU8::new(IDLE),
            sleeping: AtomicBool::new(false),
            claimed: AtomicBool::new(false),
            job: UnsafeCell::new(None),
            panic: UnsafeCell::new(None),
            thread: OnceLock::new(),
        }));
        let spawned = std::thread::Builder::new()
            .name("lstm-cpu-1".into())
            .spawn(move || w.serve());
        let handle = spawned.ok()?;
        w.thread.set(handle.thread().clone()).ok()?;
        Some(w)
    })
}

impl Worker {
    fn serve(&self) -> ! {
        loop {
            self.wait_for_job();
            if self
                .state
                .compare_exchange(POSTED, RUNNING, Acquire, Relaxed)
                .is_err()
            {
                continue; // the caller took it back
            }
            // SAFETY: POSTED (acquired above) publishes `job`, whose closure outlives
            // the call: the caller does not return before it sees DONE.
            let job = unsafe { (*self.job.get()).take() }.expect("a posted job");
            let result = catch_unwind(AssertUnwindSafe(|| unsafe { (*job)() }));
            // SAFETY: the caller reads `panic` only after DONE.
            unsafe { *self.panic.get() = result.err() };
            self.state.store(DONE, Release);
        }
    }

    /// Spins for [`SPIN_IDLE`], then parks, until a job is posted.
    fn wait_for_job(&self) {
        let start = Instant::now();
        let mut spins = 0u32;
        while self.state.load(Acquire) != POSTED {
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(256) || start.elapsed() < SPIN_IDLE {
                std::hint::spin_loop();
                continue;
            }
            self.sleeping.store(true, SeqCst);
            // Re-checked after announcing the sleep: a job posted before it is seen
            // here, one posted after it unparks us (park keeps an early unpark).
            if self.state.load(SeqCst) != POSTED {
                std::thread::park();
            }
            self.sleeping.store(false, SeqCst);
        }
    }

    fn claim(&self) -> bool {
        self.claimed
            .compare_exchange(false, true, Acquire, Relaxed)
            .is_ok()
    }

    /// Spins until the posted job is done, yielding the core now and then in case the
    /// worker is waiting for it.
    fn wait_done(&self) {
        let mut spins = 0u32;
        while self.state.load(Acquire) != DONE {
            spins = spins.wrapping_add(1);
            match spins % 1024 {
                0 => std::thread::yield_now(),
                _ => std::hint::spin_loop(),
            }
        }
    }
}

/// Runs `a` here and `b` on the worker, both to completion (a panic in either is
/// resumed here after both finish); both here, one after the other (the same way), if
/// the worker is busy with another caller's job, could not start, or has not begun `b`
/// by the time `a` is done.
pub(crate) fn join<RA, RB: Send>(
    a: impl FnOnce() -> RA,
    b: impl FnOnce() -> RB + Send,
) -> (RA, RB) {
    let Some(w) = worker().filter(|w| w.claim()) else {
        let ra = catch_unwind(AssertUnwindSafe(a));
        let rb = b();
        return (ra.unwrap_or_else(|p| resume_unwind(p)), rb);
    };
    let (mut b, mut rb) = (Some(b), None);
    let mut task = || rb = Some(b.take().expect("run once")());
    let task: &mut (dyn FnMut() + Send + '_) = &mut task;
    // SAFETY: only the lifetime is erased; this function does not return (nor unwind)
    // before the worker has finished with the closure (DONE) or the caller has taken
    // it back unstarted (POSTED → IDLE).
    let task: JobPtr = unsafe { std::mem::transmute(task) };
    unsafe { *w.job.get() = Some(task) };
    w.state.store(POSTED, SeqCst);
    if w.sleeping.load(SeqCst) {
        w.thread.get().expect("set at spawn").unpark();
    }
    let ra = catch_unwind(AssertUnwindSafe(a));
    // Not started yet (its core busy with something else, or parked): `b` runs here
    // rather than waiting for the worker to be scheduled.
    let b_panic = match w.state.compare_exchange(POSTED, IDLE, Acquire, Relaxed) {
        Ok(_) => {
            #[cfg(test)]
            TAKEN_BACK.fetch_add(1, Relaxed);
            // SAFETY: the worker never took the job (it takes it only by POSTED →
            // RUNNING), so nothing else touches the closure.
            unsafe { *w.job.get() = None };
            catch_unwind(AssertUnwindSafe(|| unsafe { (*task)() })).err()
        }
        Err(_) => {
            w.wait_done();
            // SAFETY: DONE (acquired in wait_done) publishes `panic`.
            unsafe { (*w.panic.get()).take() }
        }
    };
    w.state.store(IDLE, Relaxed);
    w.claimed.store(false, Release);
    let ra = ra.unwrap_or_else(|p| resume_unwind(p));
    if let Some(p) = b_panic {
        resume_unwind(p);
    }
    (ra, rb.expect("the job ran"))
}

#[cfg(test)]
mod tests {
    use super::join;

    #[test]
    fn both_halves_run_and_return() {
        // (Other tests may hold the worker for a while: then b runs here. `a` takes
        // 50 µs, time for the worker to begin b before the caller would take it back.)
        let here = std::thread::current().id();
        let busy = || {
            let start = std::time::Instant::now();
            while start.elapsed() < std::time::Duration::from_micros(50) {
                std::hint::spin_loop();
            }
        };
        let elsewhere = (0..20_000).any(|_| join(busy, || std::thread::current().id()).1 != here);
        assert!(elsewhere, "b always ran on the caller");
        for n in 0..2000u64 {
            let mut left = vec![0u64; 64];
            let (ra, rb) = join(
                || {
                    left.iter_mut().for_each(|v| *v = n);
                    n + 1
                },
                || (0..=n).sum::<u64>(),
            );
            assert_eq!((ra, rb), (n + 1, n * (n + 1) / 2));
            assert!(left.iter().all(|&v| v == n));
        }
    }

    /// Several callers at once: one gets the worker, the others run both halves
    /// themselves; every result is right.
    #[test]
    fn concurrent_callers_each_get_their_results() {
        std::thread::scope(|s| {
            for t in 0..4u64 {
                s.spawn(move || {
                    for n in 0..500 {
                        let (a, b) = join(|| t * 1000 + n, || t * 2000 + n);
                        assert_eq!((a, b), (t * 1000 + n, t * 2000 + n));
                    }
                });
            }
        });
    }

    /// A job the worker has not begun when `a` is done is taken back and run here (a
    /// parked worker takes a while to wake): every result is right whichever side ran
    /// it, also for the jobs posted right after one was taken back.
    #[test]
    fn an_unstarted_job_runs_here() {
        use super::{SPIN_IDLE, TAKEN_BACK};
        use std::sync::atomic::Ordering::Relaxed;
        let before = TAKEN_BACK.load(Relaxed);
        for n in 0..400u64 {
            if n % 4 == 0 {
                std::thread::sleep(SPIN_IDLE * 2);
            }
            let mut out = [0u64; 8];
            let (ra, rb) = join(
                || n,
                || {
                    out.iter_mut().for_each(|v| *v = n);
                    2 * n
                },
            );
            assert_eq!((ra, rb), (n, 2 * n));
            assert!(out.iter().all(|&v| v == n));
        }
        assert!(TAKEN_BACK.load(Relaxed) > before, "no job was taken back");
    }

    /// A panic on either side reaches the caller after both sides have finished.
    #[test]
    fn panics_reach_the_caller() {
        for side in 0..2 {
            let done = std::sync::atomic::AtomicBool::new(false);
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                join(
                    || {
                        if side == 0 {
                            panic!("left");
                        }
                    },
                    || {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        done.store(true, std::sync::atomic::Ordering::SeqCst);
                        if side == 1 {
                            panic!("right");
                        }
                    },
                )
            }));
            assert!(r.is_err(), "side {side}'s panic was lost");
            assert!(done.load(std::sync::atomic::Ordering::SeqCst));
            // The worker is free again.
            assert_eq!(join(|| 1, || 2), (1, 2));
        }
    }
}
