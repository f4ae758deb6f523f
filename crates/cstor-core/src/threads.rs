//! Work spread over the cores: a list of jobs taken in turn by scoped threads.
//!
//! Copying files and digesting them are syscall- and I/O-bound per file, so the jobs of a batch
//! are handed out one at a time (an atomic counter) rather than split in fixed chunks: a thread
//! that met a large file does not hold up the others.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// How many threads a batch of file work uses: the cores, at most 8.
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// Runs `work` on every job, on [`workers`] threads, each with its own state made by `init`;
/// returns every thread's state. The first error stops that thread and is returned; a panic
/// is an error naming `what`.
pub fn each<J: Sync, S: Send>(
    jobs: &[J],
    what: &str,
    init: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, &J) -> Result<()> + Sync,
) -> Result<Vec<S>> {
    let next = AtomicUsize::new(0);
    let outcomes: Vec<Result<S>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers().min(jobs.len().max(1)))
            .map(|_| {
                scope.spawn(|| {
                    let mut state = init();
                    while let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                        work(&mut state, job)?;
                    }
                    Ok(state)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::io(
                        "",
                        std::io::Error::other(format!("a thread {what} panicked")),
                    ))
                })
            })
            .collect()
    });
    outcomes.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_is_done_once_and_an_error_comes_back() {
        let jobs: Vec<u64> = (1..=100).collect();
        let sums = each(
            &jobs,
            "summing",
            || 0u64,
            |sum, job| {
                *sum += job;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(sums.iter().sum::<u64>(), 5050);
        let failed = each(
            &jobs,
            "failing",
            || (),
            |_, job| match job {
                50 => Err(Error::InvalidArgument("50".into())),
                _ => Ok(()),
            },
        );
        assert_eq!(failed.unwrap_err().code(), "EINVAL");
    }
}
