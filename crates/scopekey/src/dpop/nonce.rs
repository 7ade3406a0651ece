//! Server nonces (RFC 9449 §8) without storage: a keyed hash of a time slot.

use crate::codec::b64;
use blake2::Blake2bMac;
use blake2::digest::consts::U32;
use blake2::digest::{KeyInit, Mac};
use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Makes and checks `DPoP-Nonce` values: `b64url(BLAKE2b-MAC(secret, slot))` for the current
/// time slot (default 5 minutes), so nothing is stored; a nonce of the current or the previous
/// slot is accepted. Instances that share the secret accept each other's nonces.
pub struct NonceSource {
    secret: Zeroizing<[u8; 32]>,
    slot_secs: i64,
}

impl NonceSource {
    /// A source keyed with `secret` (32 random bytes, the same on every instance), with
    /// slots of `slot_secs` seconds (at least 10; default 300 through
    /// [`from_secret`](Self::from_secret)).
    pub fn new(secret: [u8; 32], slot_secs: u32) -> Self {
        Self {
            secret: Zeroizing::new(secret),
            slot_secs: i64::from(slot_secs.max(10)),
        }
    }

    /// A source keyed with `secret`, with 5-minute slots.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        Self::new(secret, 300)
    }

    /// A source with a random secret (one instance, or instances that each hand out and
    /// check their own nonces behind sticky routing).
    ///
    /// # Errors
    /// [`KeyErrorKind::Randomness`](crate::KeyErrorKind::Randomness) when the operating
    /// system's random number generator fails.
    pub fn generate() -> Result<Self, crate::KeyError> {
        let mut secret = [0; 32];
        getrandom::fill(&mut secret).map_err(|_| {
            crate::KeyError::new(
                crate::KeyErrorKind::Randomness,
                "the operating system's random number generator failed",
            )
        })?;
        Ok(Self::from_secret(secret))
    }

    fn of_slot(&self, slot: i64) -> String {
        // A key of 32 bytes is always accepted (BLAKE2b takes up to 64).
        let Ok(mut mac) = <Blake2bMac<U32> as KeyInit>::new_from_slice(self.secret.as_slice())
        else {
            return String::new();
        };
        mac.update(&slot.to_be_bytes());
        b64::encode(&mac.finalize().into_bytes())
    }

    /// The nonce to hand out at `unix_now`.
    pub fn current(&self, unix_now: i64) -> String {
        self.of_slot(unix_now.div_euclid(self.slot_secs))
    }

    /// Whether `nonce` is this source's for the slot of `unix_now` or the one before.
    pub fn accepts(&self, nonce: &str, unix_now: i64) -> bool {
        let slot = unix_now.div_euclid(self.slot_secs);
        [slot, slot.saturating_sub(1)]
            .iter()
            .any(|s| bool::from(self.of_slot(*s).as_bytes().ct_eq(nonce.as_bytes())))
    }
}

impl fmt::Debug for NonceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceSource")
            .field("slot_secs", &self.slot_secs)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_live_two_slots_and_belong_to_their_secret() {
        let a = NonceSource::new([7; 32], 60);
        let nonce = a.current(6_000);
        assert_eq!(nonce.len(), 43);
        assert!(a.accepts(&nonce, 6_059));
        assert!(a.accepts(&nonce, 6_119));
        assert!(!a.accepts(&nonce, 6_120));
        assert!(!a.accepts(&nonce, 5_999));
        assert!(!NonceSource::new([8; 32], 60).accepts(&nonce, 6_000));
        assert!(!a.accepts("", 6_000));
        assert!(!format!("{a:?}").contains("secret"));
    }
}
