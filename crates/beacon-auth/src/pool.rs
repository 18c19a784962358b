//! The bounded pool that password and API-secret checks run on.
//!
//! Each argon2 check takes about 19 MiB and a core for tens of milliseconds, and anyone
//! who can reach a login form can ask for one. Unbounded, a flood of wrong logins holds
//! one check per request in memory at once; here at most a few run, off the async
//! workers, and a request that finds no free slot within a short wait is turned away at
//! once with [`Busy`], for the caller to answer 429 with `Retry-After`.
//!
//! The checks run on the pool's own threads, each with argon2's working memory allocated
//! once and reused: freed, those 19 MiB blocks stay with the allocator (glibc raises its
//! mmap threshold after the first), so per-check allocation on ever-new threads grew the
//! node by 100+ MiB under a flood even with few checks at a time.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use argon2::Block;
use tokio::sync::{Semaphore, oneshot};

use crate::password::verify_password_in;

std::thread_local! {
    /// argon2's working memory, reused by every check on this pool thread.
    static BLOCKS: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// More parallel checks than this buy no throughput on a small machine and cost 19 MiB
/// each: the pool never grows beyond it, whatever the core count.
pub const MAX_CHECKS: usize = 4;
/// How long a check may wait for a free slot before the request is turned away.
pub const DEFAULT_WAIT: Duration = Duration::from_millis(250);
/// What a turned-away client is told to wait before trying again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// No slot was free in time: the caller answers 429 (or 503) with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many credential checks at once; retry in {} s", retry_after.as_secs())]
pub struct Busy {
    pub retry_after: Duration,
}

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads for expensive credential checks, and the slots that admit
/// work to them.
#[derive(Debug, Clone)]
pub struct CheckPool {
    slots: Arc<Semaphore>,
    wait: Duration,
    jobs: Sender<Job>,
}

impl CheckPool {
    /// One thread per available core, at most [`MAX_CHECKS`]; a check waits at most
    /// [`DEFAULT_WAIT`] for a free one.
    pub fn start() -> io::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::with_threads(cores.min(MAX_CHECKS), DEFAULT_WAIT)
    }

    /// A pool of `threads` parallel checks (at least one); a check waits at most `wait`.
    /// The threads end when the last clone of the pool is dropped.
    pub fn with_threads(threads: usize, wait: Duration) -> io::Result<Self> {
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..threads {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name("credential-check".into())
                .spawn(move || work(&queue))?;
        }
        Ok(Self {
            slots: Arc::new(Semaphore::new(threads)),
            wait,
            jobs,
        })
    }

    /// Whether `password` matches the PHC string `phc` (see [`crate::verify_password`]),
    /// checked on the pool; [`Busy`] when no thread frees up in time.
    pub async fn verify(&self, phc: String, password: String) -> Result<bool, Busy> {
        self.run(move || {
            BLOCKS.with_borrow_mut(|blocks| verify_password_in(blocks, &phc, &password))
        })
        .await
    }

    /// Runs `check` on one of the pool's threads once one is free, or gives [`Busy`]
    /// when none frees up in time. The slot is held until `check` returns, even if the
    /// caller stops waiting (a client that hangs up cannot free it early).
    async fn run<T, F>(&self, check: F) -> Result<T, Busy>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let busy = Busy {
            retry_after: RETRY_AFTER,
        };
        let slot = tokio::time::timeout(self.wait, Arc::clone(&self.slots).acquire_owned())
            .await
            .map_err(|_| busy)?
            .map_err(|_| busy)?;
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let outcome = catch_unwind(AssertUnwindSafe(check));
            drop(slot);
            if let Ok(value) = outcome {
                let _ = done.send(value);
            }
        });
        self.jobs.send(job).map_err(|_| busy)?;
        // A check that panicked proved nothing: refuse like a busy pool would.
        result.await.map_err(|_| busy)
    }
}

/// A pool thread: runs jobs until the pool is dropped.
fn work(queue: &Mutex<Receiver<Job>>) {
    loop {
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_the_pool_size_runs_and_the_rest_is_turned_away() {
        let pool = CheckPool::with_threads(2, Duration::from_millis(50)).expect("threads");
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let checks = (0..16).map(|_| {
            let (pool, running, peak) = (pool.clone(), Arc::clone(&running), Arc::clone(&peak));
            tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(200));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            })
        });
        let mut busy = 0;
        for check in checks.collect::<Vec<_>>() {
            if let Err(refused) = check.await.expect("join") {
                assert_eq!(refused.retry_after, RETRY_AFTER);
                busy += 1;
            }
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        assert_eq!(busy, 14, "two ran, the others found no free slot in 50 ms");
        assert_eq!(pool.run(|| 7).await, Ok(7), "slots are given back");
        let panicked = pool.run(|| -> u8 { panic!("a broken check") }).await;
        assert_eq!(
            panicked,
            Err(Busy {
                retry_after: RETRY_AFTER
            })
        );
        assert_eq!(pool.run(|| 8).await, Ok(8), "a panic does not end a thread");
    }
}
