//! Ed25519 keys, their PASERK forms and key ids, and the key set a verifier trusts.
//!
//! - [`SigningKey`]: the issuer's secret. Zeroized on drop, redacted in `Debug`, never compared
//!   with `==`, serialised only as PASERK `k4.secret` into a [`Zeroizing`] string.
//! - [`PublicKey`]: a verifying key. Small-order (weak) keys are refused at import.
//! - [`KeyId`]: the PASERK `k4.pid` of a public key, carried in every token's footer.
//! - [`KeySet`]: the public keys a verifier accepts, each with an optional validity window, so
//!   signing keys rotate with overlap and no outage.

use crate::codec::b64;
use crate::key::paserk::{self, PID_PREFIX};
use blake2::Blake2bVar;
use blake2::digest::{Update, VariableOutput};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// What was wrong with a key.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyErrorKind {
    /// A PASERK of another version or type (`k3.public.`, `k4.local.`, `k4.secret.` where a
    /// public key was expected, …).
    WrongType,
    /// Not valid canonical base64url, or not a PASERK at all.
    Malformed,
    /// Key bytes of the wrong length.
    WrongLength,
    /// Bytes that are not a valid Ed25519 point.
    InvalidPoint,
    /// A small-order (weak) public key, which would let forged signatures verify.
    WeakKey,
    /// A 64-byte secret key whose public half does not match its seed.
    Mismatch,
    /// The operating system's random number generator failed.
    Randomness,
}

/// A key that could not be imported or generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct KeyError {
    kind: KeyErrorKind,
    message: &'static str,
}

impl KeyError {
    pub(crate) const fn new(kind: KeyErrorKind, message: &'static str) -> Self {
        Self { kind, message }
    }

    /// What was wrong, for matching.
    pub fn kind(&self) -> KeyErrorKind {
        self.kind
    }
}

// ---------------------------------------------------------------------------------------------
// KeyId
// ---------------------------------------------------------------------------------------------

/// A key id: the PASERK `k4.pid` of a public key (`k4.pid.` and 44 base64url characters).
///
/// Key ids are public. A verifier uses the id from a token's footer only as a lookup key in
/// its in-memory [`KeySet`]; an unknown id is refused without any I/O.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(std::sync::Arc<str>);

impl KeyId {
    /// Computes the `k4.pid` of raw Ed25519 public key bytes.
    ///
    /// This only hashes the PASERK serialisation; it does not check that the key is usable
    /// (use [`PublicKey::key_id`] for keys you will verify with).
    ///
    /// # Errors
    /// [`KeyErrorKind::WrongLength`] unless `bytes` is 32 bytes long.
    pub fn of_public_key_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let bytes: &[u8; 32] = bytes.try_into().map_err(|_| {
            KeyError::new(
                KeyErrorKind::WrongLength,
                "an Ed25519 public key is 32 bytes",
            )
        })?;
        Ok(Self::of_key_bytes(bytes))
    }

    pub(crate) fn of_key_bytes(bytes: &[u8; 32]) -> Self {
        Self::of_paserk(&paserk::encode_public(bytes))
    }

    fn of_paserk(paserk: &str) -> Self {
        let mut digest = [0u8; 33];
        // BLAKE2b accepts any output length from 1 to 64 bytes, so these cannot fail.
        if let Ok(mut h) = Blake2bVar::new(digest.len()) {
            h.update(PID_PREFIX.as_bytes());
            h.update(paserk.as_bytes());
            let _ = h.finalize_variable(&mut digest);
        }
        Self(format!("{PID_PREFIX}{}", b64::encode(&digest)).into())
    }

    /// The id as written: `k4.pid.…`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for KeyId {
    type Err = KeyError;

    /// Parses a `k4.pid` string.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        paserk::check_pid(s)?;
        Ok(Self(s.into()))
    }
}

impl Borrow<str> for KeyId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------
// PublicKey
// ---------------------------------------------------------------------------------------------

/// An Ed25519 public key that tokens are verified with.
///
/// Built only from 32 bytes that decode to a point of the curve that is not of small order
/// (docs/threats.md C2), or from a PASERK `k4.public`. Signatures are checked with
/// `verify_strict`: non-canonical `R` and `S ≥ L` are refused.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: ed25519_dalek::VerifyingKey,
    id: KeyId,
}

impl PublicKey {
    /// Imports raw public key bytes.
    ///
    /// # Errors
    /// [`KeyErrorKind::WrongLength`] unless 32 bytes, [`KeyErrorKind::InvalidPoint`] if they do
    /// not decode to a curve point, [`KeyErrorKind::WeakKey`] for a small-order key.
    ///
    /// # Security
    /// A small-order key verifies signatures that were never made with a secret key; refusing it
    /// here means no verifier can be configured with one.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: &[u8; 32] = bytes.try_into().map_err(|_| {
            KeyError::new(
                KeyErrorKind::WrongLength,
                "an Ed25519 public key is 32 bytes",
            )
        })?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(arr).map_err(|_| {
            KeyError::new(
                KeyErrorKind::InvalidPoint,
                "the public key bytes are not a valid Ed25519 point",
            )
        })?;
        if key.is_weak() {
            return Err(KeyError::new(
                KeyErrorKind::WeakKey,
                "the public key is of small order (weak) and is refused",
            ));
        }
        Ok(Self {
            id: KeyId::of_paserk(&paserk::encode_public(arr)),
            key,
        })
    }

    /// Imports a PASERK `k4.public.…`.
    ///
    /// # Errors
    /// [`KeyErrorKind::WrongType`] for any other PASERK type or version, then as
    /// [`PublicKey::from_bytes`].
    pub fn from_paserk(text: &str) -> Result<Self, KeyError> {
        Self::from_bytes(&paserk::decode_public(text.trim_end())?)
    }

    /// The PASERK `k4.public.…` form.
    pub fn to_paserk(&self) -> String {
        paserk::encode_public(self.key.as_bytes())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    /// The key id (`k4.pid`).
    pub fn key_id(&self) -> &KeyId {
        &self.id
    }

    /// Checks an Ed25519 signature with `verify_strict`.
    ///
    /// This is the primitive the token verifier uses; applications verify tokens with
    /// [`Verifier`](crate::Verifier), not with this.
    ///
    /// # Errors
    /// [`SignatureError`] when the signature is not 64 bytes or does not verify.
    pub fn verify_signature(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        let sig: &[u8; 64] = signature.try_into().map_err(|_| SignatureError(()))?;
        self.key
            .verify_strict(message, &ed25519_dalek::Signature::from_bytes(sig))
            .map_err(|_| SignatureError(()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("id", &self.id.as_str())
            .finish_non_exhaustive()
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_paserk(s)
    }
}

/// An Ed25519 signature that does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature does not verify")]
pub struct SignatureError(());

// ---------------------------------------------------------------------------------------------
// SigningKey
// ---------------------------------------------------------------------------------------------

/// An Ed25519 secret key that tokens are signed with.
///
/// The secret is zeroized when dropped, `Debug` shows only the key id, and there is no `==`.
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
    /// `SHA-512(seed)` clamped and split, as RFC 8032 §5.1.6 signs with, derived once here from
    /// `key` rather than on every signature (what `ed25519_dalek::SigningKey::sign` does).
    /// Only ever derived from `key`'s own seed and used with `key`'s own public half: a
    /// mismatched pair would leak the secret, so neither is settable on its own.
    expanded: ed25519_dalek::hazmat::ExpandedSecretKey,
    public: PublicKey,
}

impl SigningKey {
    /// Generates a new key from the operating system's random number generator.
    ///
    /// # Errors
    /// [`KeyErrorKind::Randomness`] if the system generator fails.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut seed[..]).map_err(|_| {
            KeyError::new(
                KeyErrorKind::Randomness,
                "the operating system's random number generator failed",
            )
        })?;
        Self::from_seed(&seed)
    }

    /// A key from its 32-byte seed.
    ///
    /// # Errors
    /// [`KeyErrorKind::WeakKey`] in the (cryptographically negligible) case that the derived public
    /// key is refused.
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self, KeyError> {
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        let public = PublicKey::from_bytes(key.verifying_key().as_bytes())?;
        let expanded = ed25519_dalek::hazmat::ExpandedSecretKey::from(key.as_bytes());
        Ok(Self {
            key,
            expanded,
            public,
        })
    }

    /// A key from the 64-byte `seed ‖ public key` form used by PASERK `k4.secret` and libsodium.
    ///
    /// # Errors
    /// [`KeyErrorKind::WrongLength`] unless 64 bytes; [`KeyErrorKind::Mismatch`] if the public half
    /// is not the one derived from the seed (docs/threats.md C5: such a key would sign with one key
    /// and claim another).
    pub fn from_keypair_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: &[u8; 64] = bytes.try_into().map_err(|_| {
            KeyError::new(
                KeyErrorKind::WrongLength,
                "an Ed25519 secret key is 64 bytes (seed and public key)",
            )
        })?;
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&arr[..32]);
        let key = Self::from_seed(&seed)?;
        if key.public.as_bytes()[..] != arr[32..] {
            return Err(KeyError::new(
                KeyErrorKind::Mismatch,
                "the secret key's public half does not match its seed",
            ));
        }
        Ok(key)
    }

    /// Imports a PASERK `k4.secret.…`.
    ///
    /// # Errors
    /// [`KeyErrorKind::WrongType`] for any other PASERK type or version, then as
    /// [`SigningKey::from_keypair_bytes`].
    pub fn from_paserk(text: &str) -> Result<Self, KeyError> {
        Self::from_keypair_bytes(&paserk::decode_secret(text.trim_end())?[..])
    }

    /// The PASERK `k4.secret.…` form, in a string that is zeroized when dropped.
    ///
    /// # Security
    /// This is the secret. Write it only to storage with restrictive permissions.
    pub fn to_paserk(&self) -> Zeroizing<String> {
        let bytes = Zeroizing::new(self.key.to_keypair_bytes());
        paserk::encode_secret(&bytes)
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The key id (`k4.pid` of the public key).
    pub fn key_id(&self) -> &KeyId {
        &self.public.id
    }

    /// The Ed25519 signature of `message`: byte for byte what `ed25519_dalek`'s `sign` makes
    /// (the scheme is deterministic), without expanding the seed again.
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        ed25519_dalek::hazmat::raw_sign::<sha2::Sha512>(&self.expanded, message, self.key.as_ref())
            .to_bytes()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.public.id.as_str())
            .field("secret", &"<redacted>")
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// KeySet
// ---------------------------------------------------------------------------------------------

/// A public key in a [`KeySet`], with the window in which it verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    key: PublicKey,
    not_before: Option<OffsetDateTime>,
    retire_at: Option<OffsetDateTime>,
}

impl KeyEntry {
    /// The key.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// From when the key verifies (`None`: always has).
    pub fn not_before(&self) -> Option<OffsetDateTime> {
        self.not_before
    }

    /// From when the key no longer verifies (`None`: until removed).
    pub fn retire_at(&self) -> Option<OffsetDateTime> {
        self.retire_at
    }

    /// Whether the key verifies at `t`: `not_before ≤ t < retire_at`.
    pub fn is_active_at(&self, t: OffsetDateTime) -> bool {
        self.not_before.is_none_or(|nb| nb <= t) && self.retire_at.is_none_or(|ra| t < ra)
    }

    /// Whether the key verifies throughout the second that starts `unix` seconds after 1970
    /// (what a verifier's clock reads in whole seconds): [`is_active_at`](Self::is_active_at)
    /// at every instant of it, so a window edge inside the second errs towards refusing.
    pub(crate) fn is_active_during_second(&self, unix: i64) -> bool {
        let Ok(start) = OffsetDateTime::from_unix_timestamp(unix) else {
            return false;
        };
        let end = start + time::Duration::SECOND;
        self.not_before.is_none_or(|nb| nb <= start) && self.retire_at.is_none_or(|ra| end <= ra)
    }
}

/// The public keys a verifier trusts, by key id.
///
/// Rotation without an outage: add the new key, switch the issuer to it, and retire the old key
/// once every token it signed has expired (`retire_at` ≥ the switch plus the maximum token
/// lifetime). Tokens of a key that is absent, not yet valid or retired are refused as
/// [`VerifyErrorKind::UnknownKey`](crate::VerifyErrorKind::UnknownKey). A verifier reads its clock in whole
/// seconds and uses a key only in a second its window covers entirely, so a window edge inside a
/// second refuses the key for that whole second. See `docs/tokens.md`.
///
/// ```
/// use scopekey::{KeySet, SigningKey};
///
/// let old = SigningKey::generate()?;
/// let new = SigningKey::generate()?;
/// let mut keys = KeySet::new();
/// keys.insert(old.public_key().clone());
/// keys.insert(new.public_key().clone());
/// // Later, once every token signed by `old` has expired:
/// assert!(keys.remove(old.key_id()).is_some());
/// assert_eq!(keys.len(), 1);
/// # Ok::<(), scopekey::KeyError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    keys: HashMap<KeyId, KeyEntry>,
}

impl KeySet {
    /// An empty set, which verifies nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set holding one key.
    pub fn single(key: PublicKey) -> Self {
        let mut set = Self::new();
        set.insert(key);
        set
    }

    /// Adds a key that verifies from now until removed or retired. Replaces any window the
    /// key had.
    pub fn insert(&mut self, key: PublicKey) -> &mut Self {
        self.insert_with_window(key, None, None)
    }

    /// Adds a key that verifies from `not_before` (inclusive) until `retire_at` (exclusive).
    pub fn insert_with_window(
        &mut self,
        key: PublicKey,
        not_before: Option<OffsetDateTime>,
        retire_at: Option<OffsetDateTime>,
    ) -> &mut Self {
        self.keys.insert(
            key.key_id().clone(),
            KeyEntry {
                key,
                not_before,
                retire_at,
            },
        );
        self
    }

    /// Sets the instant from which the key no longer verifies. Returns whether the key was in
    /// the set.
    pub fn retire(&mut self, id: &KeyId, at: OffsetDateTime) -> bool {
        match self.keys.get_mut(id) {
            Some(entry) => {
                entry.retire_at = Some(at);
                true
            }
            None => false,
        }
    }

    /// Removes a key; its tokens stop verifying at once.
    pub fn remove(&mut self, id: &KeyId) -> Option<PublicKey> {
        self.keys.remove(id).map(|e| e.key)
    }

    /// The entry for a key id, given as written in a token.
    pub fn get(&self, id: &str) -> Option<&KeyEntry> {
        // A service trusts a handful of keys (current, next, retiring): comparing the ids is
        // cheaper than hashing one. Ids are public, so the comparison need not be constant-time.
        if self.keys.len() <= 4 {
            return self.keys.values().find(|e| e.key().key_id().as_str() == id);
        }
        self.keys.get(id)
    }

    /// All entries, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &KeyEntry> {
        self.keys.values()
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A [`KeySet`] that can be replaced while verifiers use it: what a store replica keeps current,
/// so a rotation done once reaches every verifier without a restart.
///
/// Readers take a snapshot (an `Arc` clone under a briefly held read lock); a writer swaps in a
/// whole new set.
///
/// A ring kept current from elsewhere (a remote JWKS, see the `scopekey-jwks` crate) can say
/// until when it vouches for its keys ([`set_fresh_until`](Self::set_fresh_until)): from that
/// second on, a verifier using the ring refuses every token with
/// [`VerifyErrorKind::KeysStale`](crate::VerifyErrorKind::KeysStale) (fail closed) until the
/// bound is moved again. A new ring has no bound.
#[derive(Debug)]
pub struct KeyRing {
    current: RwLock<Arc<KeySet>>,
    /// Bumped on every change, after the new set is in place: cached grants made under an
    /// older version are not served.
    version: AtomicU64,
    /// The Unix second from which the set is stale; `i64::MAX`: never.
    stale_from: AtomicI64,
}

impl Default for KeyRing {
    fn default() -> Self {
        Self::new(KeySet::new())
    }
}

impl KeyRing {
    /// A ring holding `keys`.
    pub fn new(keys: KeySet) -> Self {
        Self {
            current: RwLock::new(Arc::new(keys)),
            version: AtomicU64::new(0),
            stale_from: AtomicI64::new(i64::MAX),
        }
    }

    /// Vouches for the set until `until` (exclusive, in whole seconds of the verifier's
    /// clock), or without a bound (`None`, the default). From `until` on, verification with
    /// this ring fails with [`VerifyErrorKind::KeysStale`](crate::VerifyErrorKind::KeysStale)
    /// until the bound is moved again.
    ///
    /// # Security
    /// A process that keeps the ring current from a remote source moves the bound forward
    /// after each successful fetch, so that a set nobody could confirm for too long stops
    /// verifying instead of trusting keys that may have been withdrawn.
    pub fn set_fresh_until(&self, until: Option<OffsetDateTime>) {
        let at = until.map_or(i64::MAX, |t| t.unix_timestamp());
        self.stale_from.store(at, Ordering::Release);
    }

    /// Until when the set is vouched for ([`set_fresh_until`](Self::set_fresh_until)); `None`:
    /// without a bound.
    pub fn fresh_until(&self) -> Option<OffsetDateTime> {
        match self.stale_from.load(Ordering::Acquire) {
            i64::MAX => None,
            at => OffsetDateTime::from_unix_timestamp(at).ok(),
        }
    }

    /// Whether the set is stale in the second `unix`: one atomic load, on every verification.
    pub(crate) fn is_stale_at(&self, unix: i64) -> bool {
        unix >= self.stale_from.load(Ordering::Acquire)
    }

    /// How many times the set has changed. Read it *before* taking a snapshot: a grant cached
    /// with that version is then never newer than the keys it was checked against.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The current set.
    pub fn snapshot(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the set.
    pub fn replace(&self, keys: KeySet) {
        let mut guard = self.current.write().unwrap_or_else(|p| p.into_inner());
        *guard = Arc::new(keys);
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// Changes the set with `f` (applied to a copy, then swapped in).
    pub fn update(&self, f: impl FnOnce(&mut KeySet)) {
        let mut guard = self.current.write().unwrap_or_else(|p| p.into_inner());
        let mut next = KeySet::clone(&guard);
        f(&mut next);
        *guard = Arc::new(next);
        self.version.fetch_add(1, Ordering::AcqRel);
    }
}

impl From<KeySet> for Arc<KeyRing> {
    fn from(keys: KeySet) -> Self {
        Arc::new(KeyRing::new(keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The once-expanded seed signs exactly as `ed25519_dalek::SigningKey::sign` (which expands
    /// it per call): same bytes, for every message length across SHA-512 block edges.
    #[test]
    fn signs_as_the_dalek_signer() {
        use ed25519_dalek::Signer as _;
        for round in 0..8u8 {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).unwrap();
            seed[0] = round;
            let ours = SigningKey::from_seed(&seed).unwrap();
            let theirs = ed25519_dalek::SigningKey::from_bytes(&seed);
            for len in [
                0usize, 1, 31, 32, 63, 64, 111, 112, 127, 128, 239, 240, 487, 1000,
            ] {
                let message: Vec<u8> = (0..len).map(|i| (i as u8) ^ round).collect();
                let signature = ours.sign(&message);
                assert_eq!(signature, theirs.sign(&message).to_bytes(), "length {len}");
                ours.public_key()
                    .verify_signature(&message, &signature)
                    .unwrap();
            }
        }
    }

    #[test]
    fn paserk_round_trips() {
        let sk = SigningKey::generate().unwrap();
        let again = SigningKey::from_paserk(&sk.to_paserk()).unwrap();
        assert_eq!(again.public_key(), sk.public_key());
        let pk = PublicKey::from_paserk(&sk.public_key().to_paserk()).unwrap();
        assert_eq!(&pk, sk.public_key());
        assert_eq!(pk.key_id().as_str().len(), 51);
        assert_eq!(pk.key_id().as_str().parse::<KeyId>().unwrap(), *pk.key_id());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let sk = SigningKey::from_seed(&[7u8; 32]).unwrap();
        let paserk = sk.to_paserk();
        let body = paserk.strip_prefix(paserk::SECRET_PREFIX).unwrap();
        let dbg = format!("{sk:?}");
        assert!(dbg.contains("<redacted>"), "{dbg}");
        assert!(!dbg.contains(&body[..20]), "{dbg}");
        assert!(!dbg.contains(&b64::encode(&[7u8; 32])[..20]), "{dbg}");
    }

    #[test]
    fn wrong_types_are_refused() {
        let sk = SigningKey::generate().unwrap();
        let pk = sk.public_key().to_paserk();
        assert_eq!(
            PublicKey::from_paserk(&sk.to_paserk()).unwrap_err().kind(),
            KeyErrorKind::WrongType
        );
        assert_eq!(
            SigningKey::from_paserk(&pk).unwrap_err().kind(),
            KeyErrorKind::WrongType
        );
        let local = format!("k4.local.{}", b64::encode(&[1u8; 32]));
        assert_eq!(
            SigningKey::from_paserk(&local).unwrap_err().kind(),
            KeyErrorKind::WrongType
        );
        assert_eq!(
            PublicKey::from_paserk(&pk.replace("k4.", "k3."))
                .unwrap_err()
                .kind(),
            KeyErrorKind::WrongType
        );
        assert_eq!(
            PublicKey::from_paserk(&format!("{pk}="))
                .unwrap_err()
                .kind(),
            KeyErrorKind::Malformed
        );
        assert_eq!(
            "k4.pid.short".parse::<KeyId>().unwrap_err().kind(),
            KeyErrorKind::Malformed
        );
    }

    #[test]
    fn key_set_windows() {
        let k = SigningKey::generate().unwrap();
        let t0 = OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        let t1 = OffsetDateTime::from_unix_timestamp(2_000).unwrap();
        let mut set = KeySet::new();
        set.insert_with_window(k.public_key().clone(), Some(t0), Some(t1));
        let e = set.get(k.key_id().as_str()).unwrap();
        assert!(!e.is_active_at(OffsetDateTime::from_unix_timestamp(999).unwrap()));
        assert!(e.is_active_at(t0));
        assert!(!e.is_active_at(t1));
        assert!(set.retire(k.key_id(), t0));
        assert!(!set.get(k.key_id().as_str()).unwrap().is_active_at(t0));
        assert!(set.get("k4.pid.unknown").is_none());
    }

    /// A whole second is active only if every instant of it is: window edges on the second
    /// answer as `is_active_at`, edges inside it refuse the whole second.
    #[test]
    fn active_during_a_second() {
        let k = SigningKey::generate().unwrap();
        let at = |s: i64, ms: i64| {
            OffsetDateTime::from_unix_timestamp(s).unwrap() + time::Duration::milliseconds(ms)
        };
        let mut set = KeySet::new();
        set.insert_with_window(
            k.public_key().clone(),
            Some(at(1_000, 0)),
            Some(at(2_000, 0)),
        );
        let e = set.get(k.key_id().as_str()).unwrap();
        for s in [999, 1_000, 1_500, 1_999, 2_000] {
            assert_eq!(
                e.is_active_during_second(s),
                e.is_active_at(at(s, 0)),
                "{s}"
            );
            assert_eq!(
                e.is_active_during_second(s),
                e.is_active_at(at(s, 999)),
                "{s}"
            );
        }
        let mut set = KeySet::new();
        set.insert_with_window(
            k.public_key().clone(),
            Some(at(1_000, 300)),
            Some(at(2_000, 300)),
        );
        let e = set.get(k.key_id().as_str()).unwrap();
        assert!(!e.is_active_during_second(1_000), "not yet at 1000.000");
        assert!(e.is_active_during_second(1_001));
        assert!(e.is_active_during_second(1_999));
        assert!(!e.is_active_during_second(2_000), "retired at 2000.300");
        assert!(!e.is_active_during_second(i64::MAX), "out of range");
        let open = KeyEntry {
            key: k.public_key().clone(),
            not_before: None,
            retire_at: None,
        };
        assert!(open.is_active_during_second(0));
    }

    /// Small sets are searched by comparing ids, larger ones hashed: both find every key and
    /// only those.
    #[test]
    fn key_set_lookup_at_every_size() {
        let keys: Vec<SigningKey> = (0..8).map(|_| SigningKey::generate().unwrap()).collect();
        let stranger = SigningKey::generate().unwrap();
        let mut set = KeySet::new();
        for (n, k) in keys.iter().enumerate() {
            set.insert(k.public_key().clone());
            assert_eq!(set.len(), n + 1);
            for (i, k) in keys.iter().enumerate() {
                let found = set.get(k.key_id().as_str()).map(|e| e.key().key_id());
                assert_eq!(found, (i <= n).then(|| k.key_id()), "{i} of {}", n + 1);
            }
            assert!(set.get(stranger.key_id().as_str()).is_none());
            let id = keys[0].key_id().as_str();
            assert!(set.get(&id[..id.len() - 1]).is_none());
            assert!(set.get(&format!("{id}A")).is_none());
        }
    }
}
