//! Random bytes for token and family ids, drawn from the operating system's generator in blocks.
//!
//! An id must be unique, not secret: it is written in the token in the clear. One
//! `getrandom` call per id costs several times what the rest of an id costs, so each thread
//! draws [`IDS_PER_DRAW`] ids' worth at once and hands them out one by one, each id's bytes
//! cleared from the pool as it leaves.
//!
//! A pool must never be handed out twice, and a forked child starts with a copy of its
//! parent's. So a pool records the process that drew it and is redrawn in any other process
//! (one `getpid` per id, a third of a `getrandom`); and it is redrawn once it is older than
//! [`MAX_AGE`], which leaves only a child that inherits, unused, a pool drawn by an ancestor
//! that has since exited *and* receives that ancestor's process id within that second: the
//! kernel hands out every other id first.

use std::cell::RefCell;
use std::time::{Duration, Instant};

/// Ids drawn per call to the operating system.
pub(crate) const IDS_PER_DRAW: usize = 32;

/// How long a drawn pool is used at most.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(1);

/// Bytes per id: 128 bits.
pub(crate) const ID_LEN: usize = 16;

struct Pool {
    /// The process that drew `ids` (0: never drawn).
    process: u32,
    /// When `ids` were drawn.
    drawn_at: Option<Instant>,
    /// How many ids of `ids` have been handed out.
    used: usize,
    ids: [[u8; ID_LEN]; IDS_PER_DRAW],
}

impl Pool {
    const EMPTY: Self = Self {
        process: 0,
        drawn_at: None,
        used: IDS_PER_DRAW,
        ids: [[0; ID_LEN]; IDS_PER_DRAW],
    };

    fn take(&mut self, process: u32, now: Instant) -> Result<[u8; ID_LEN], getrandom::Error> {
        let fresh = self
            .drawn_at
            .is_some_and(|at| now.saturating_duration_since(at) < MAX_AGE);
        if self.process != process || !fresh || self.used >= IDS_PER_DRAW {
            getrandom::fill(self.ids.as_flattened_mut())?;
            self.process = process;
            self.drawn_at = Some(now);
            self.used = 0;
        }
        // Just drawn or checked above: `used` is in range. Taking leaves zeros behind.
        let id = self.ids.get_mut(self.used).map(std::mem::take);
        self.used += 1;
        match id {
            Some(id) => Ok(id),
            None => draw_one(),
        }
    }
}

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool::EMPTY) };
}

/// 128 fresh random bits for an id.
///
/// # Errors
/// When the operating system's generator fails.
pub(crate) fn random_id_bytes() -> Result<[u8; ID_LEN], getrandom::Error> {
    let process = std::process::id();
    let now = Instant::now();
    match POOL.try_with(|pool| {
        pool.try_borrow_mut()
            .map(|mut pool| pool.take(process, now))
    }) {
        Ok(Ok(id)) => id,
        // The thread is exiting (its pool is gone) or, impossibly, the pool is in use: draw
        // this one id on its own.
        _ => draw_one(),
    }
}

/// One id straight from the operating system.
fn draw_one() -> Result<[u8; ID_LEN], getrandom::Error> {
    let mut id = [0; ID_LEN];
    getrandom::fill(&mut id)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool_after(draws: usize) -> Pool {
        let mut pool = Pool::EMPTY;
        let now = Instant::now();
        for _ in 0..draws {
            pool.take(std::process::id(), now).unwrap();
        }
        pool
    }

    #[test]
    fn ids_are_distinct_across_draws_and_threads() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..IDS_PER_DRAW * 5 {
            assert!(seen.insert(random_id_bytes().unwrap()));
        }
        let others: Vec<[u8; ID_LEN]> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..IDS_PER_DRAW * 2)
                            .map(|_| random_id_bytes().unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        for id in others {
            assert!(seen.insert(id), "an id was handed out twice");
        }
    }

    #[test]
    fn an_id_leaves_no_copy_in_the_pool() {
        let mut pool = Pool::EMPTY;
        let now = Instant::now();
        let id = pool.take(7, now).unwrap();
        assert_eq!(pool.used, 1);
        assert_eq!(pool.ids[0], [0; ID_LEN]);
        assert!(!pool.ids.as_flattened().windows(ID_LEN).any(|w| w == id));
    }

    /// A pool drawn in another process (what a forked child holds) is never handed out.
    #[test]
    fn another_process_redraws() {
        let mut pool = pool_after(1);
        let parent = pool.ids;
        let now = Instant::now();
        let id = pool.take(pool.process.wrapping_add(1), now).unwrap();
        assert_eq!(pool.used, 1, "redrawn, then one id handed out");
        assert!(
            !parent.as_flattened().windows(ID_LEN).any(|w| w == id),
            "the child's id came from the parent's pool"
        );
        assert_ne!(pool.ids[1..], parent[1..]);
    }

    #[test]
    fn an_old_pool_is_redrawn() {
        let mut pool = pool_after(1);
        let before = pool.ids;
        let later = pool.drawn_at.unwrap() + MAX_AGE;
        pool.take(pool.process, later).unwrap();
        assert_eq!(pool.used, 1);
        assert_ne!(pool.ids[1..], before[1..]);
        // Within the age, the same pool goes on.
        let again = pool.ids;
        let id = pool.take(pool.process, later + MAX_AGE / 2).unwrap();
        assert_eq!(pool.used, 2);
        assert_eq!(id, again[1]);
        assert_eq!(pool.ids[2..], again[2..]);
    }

    #[test]
    fn an_exhausted_pool_is_redrawn() {
        let mut pool = pool_after(IDS_PER_DRAW);
        assert_eq!(pool.used, IDS_PER_DRAW);
        assert!(
            pool.ids.iter().all(|id| *id == [0; ID_LEN]),
            "every id cleared"
        );
        pool.take(pool.process, pool.drawn_at.unwrap()).unwrap();
        assert_eq!(pool.used, 1);
        assert!(pool.ids[1..].iter().any(|id| *id != [0; ID_LEN]));
    }
}
