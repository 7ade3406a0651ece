//! Client assertions used once: the `(client, jti)` of every accepted assertion until it
//! expires, in a bounded table. Only an assertion whose signature verified with a client's
//! registered key gets in, so only clients themselves can fill it; when it is full of live
//! entries, new assertions are answered "busy" rather than accepted unchecked.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug)]
pub(crate) struct ReplayCache {
    capacity: usize,
    seen: Mutex<HashMap<(String, String), i64>>,
}

impl ReplayCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok(true)` the first time `(client, jti)` is seen (it is then remembered until `exp`
    /// plus the leeway), `Ok(false)` after; `Err(())` when the table is full.
    pub(crate) fn first_use(
        &self,
        client: &str,
        jti: &str,
        exp: i64,
        now: i64,
    ) -> Result<bool, ()> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (client.to_owned(), jti.to_owned());
        if seen.contains_key(&key) {
            return Ok(false);
        }
        if seen.len() >= self.capacity {
            // An entry is kept a minute past its `exp`: longer than the leeway that lets an
            // assertion still be accepted.
            seen.retain(|_, until| *until > now);
            if seen.len() >= self.capacity {
                return Err(());
            }
        }
        seen.insert(key, exp + 60);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_accepted_once_and_the_table_is_bounded() {
        let c = ReplayCache::new(2);
        assert_eq!(c.first_use("ci", "a", 100, 0), Ok(true));
        assert_eq!(c.first_use("ci", "a", 100, 0), Ok(false));
        assert_eq!(c.first_use("ops", "a", 100, 0), Ok(true));
        assert_eq!(c.first_use("ci", "b", 100, 0), Err(()));
        // Once the first ones have expired there is room again; a replay of them is no
        // longer possible anyway (they are refused as expired).
        assert_eq!(c.first_use("ci", "b", 300, 200), Ok(true));
    }
}
