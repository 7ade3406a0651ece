//! `scopekey_client_credentials` and `scopekey_operators`: how a consumer authenticates to the
//! token service — an argon2id hash of its client secret, and a public key for
//! `private_key_jwt` — with the types that carry a secret out exactly once; and which
//! consumers are operators, with the admin scopes they may hold.
//!
//! May import: the crate root, `db` and `store`; no other table.

use super::Cells;
use crate::db::{now_seconds, on};
use crate::{Store, StoreError, StoreErrorKind};
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use scopekey::PublicKey;
type Blake2bMac256 = blake2::Blake2bMac<blake2::digest::consts::U32>;
use blake2::digest::{KeyInit, Mac as _};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// The prefix of every client secret, so that a secret scanner (and `scopekey scan`) can tell
/// one from any other string.
pub const CLIENT_SECRET_PREFIX: &str = "sks_";

/// The longest client secret presented that is hashed at all; longer ones are refused unread
/// (a generated secret is 47 characters).
pub const MAX_CLIENT_SECRET_LEN: usize = 256;

/// Argon2id with the parameters OWASP recommends for password storage (19 MiB, 2 passes, one
/// lane). The hash records them, so a later change of parameters still verifies old hashes.
fn argon2() -> Result<Argon2<'static>, StoreError> {
    let params = Params::new(19 * 1024, 2, 1, Some(32))
        .map_err(|e| StoreError::new(StoreErrorKind::InvalidInput, format!("argon2: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A consumer's client secret, as generated: shown once, then only its hash is kept.
///
/// Its `Debug` shows the client id and `***`; the secret is cleared from memory on drop.
pub struct ClientSecret {
    client_id: String,
    secret: Zeroizing<String>,
}

impl ClientSecret {
    /// The OAuth `client_id`: the consumer's name.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The secret itself, to show the operator once.
    pub fn expose_secret(&self) -> &str {
        &self.secret
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecret")
            .field("client_id", &self.client_id)
            .field("secret", &"***")
            .finish()
    }
}

/// The outcome of checking a presented client secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretCheck {
    /// The secret is the consumer's current one.
    Matches,
    /// It is not: a wrong secret, an unknown consumer, a consumer without a secret, or a
    /// malformed or oversized secret. Deliberately one answer, so that a caller cannot tell
    /// which (and the unknown-consumer case costs as much time as a wrong secret).
    Refused,
}

impl Store {
    /// Creates or replaces the client secret of `consumer` (the old one stops working at
    /// once) and returns the new one. Only an argon2id hash of it is stored.
    ///
    /// # Errors
    /// [`StoreErrorKind::UnknownConsumer`] when no such consumer is registered;
    /// [`StoreErrorKind::Runtime`] if the system's random source fails; otherwise a query
    /// error.
    pub fn rotate_client_secret(&self, consumer: &str) -> Result<ClientSecret, StoreError> {
        let mut raw = Zeroizing::new([0u8; 32]);
        getrandom::fill(raw.as_mut()).map_err(|e| {
            StoreError::new(
                StoreErrorKind::Runtime,
                format!("random source failed: {e}"),
            )
        })?;
        let secret = Zeroizing::new(format!(
            "{CLIENT_SECRET_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_ref())
        ));
        let hash = hash_secret(&secret)?;
        self.write_for_consumer(
            consumer,
            ForConsumer {
                sql: "INSERT INTO scopekey_client_credentials (consumer, secret_hash, public_key, updated_at) \
                      VALUES ($1, $2, NULL, $3) \
                      ON CONFLICT (consumer) DO UPDATE SET secret_hash = excluded.secret_hash, updated_at = excluded.updated_at",
                text: Some(hash),
                now: Some(now_seconds()),
            },
        )?;
        Ok(ClientSecret {
            client_id: consumer.to_owned(),
            secret,
        })
    }

    /// Checks a presented client secret of `consumer` against its stored hash, in constant
    /// time. The consumer being disabled is not checked here: the caller decides what a
    /// disabled consumer may do.
    ///
    /// This costs an argon2id hash (tens of milliseconds, 19 MiB): call it off the async
    /// threads, and bound how many run at once.
    ///
    /// # Errors
    /// A query error, or [`StoreErrorKind::Corrupt`] for a stored hash that does not parse.
    pub fn verify_client_secret(
        &self,
        consumer: &str,
        presented: &str,
    ) -> Result<SecretCheck, StoreError> {
        // Before the lookup: the length says nothing about which consumers exist.
        if presented.len() > MAX_CLIENT_SECRET_LEN {
            return Ok(SecretCheck::Refused);
        }
        let stored = self
            .client_credential_row(consumer)?
            .and_then(|(hash, _)| hash);
        let argon = argon2()?;
        let Some(stored) = stored else {
            // As much work as a real check, so that timing does not say which consumers exist.
            let _ = argon.verify_password(presented.as_bytes(), &dummy_hash()?.password_hash());
            return Ok(SecretCheck::Refused);
        };
        let cache = self.secret_cache();
        if cache.confirms(consumer, &stored, presented) {
            return Ok(SecretCheck::Matches);
        }
        let hash = PasswordHash::new(&stored).map_err(|e| {
            StoreError::corrupt("scopekey_client_credentials", consumer_shown(consumer), e)
        })?;
        Ok(match argon.verify_password(presented.as_bytes(), &hash) {
            Ok(()) => {
                cache.remember(consumer, &stored, presented);
                SecretCheck::Matches
            }
            Err(_) => SecretCheck::Refused,
        })
    }

    /// Whether `presented` is `consumer`'s current secret *as already verified by this store
    /// handle* ([`Store::verify_client_secret`] remembers a keyed digest of each secret that
    /// matched, with the hash it matched; a rotation changes the hash and so forgets it). One
    /// indexed read and a keyed hash: no argon2. `false` means "not known here", not "wrong":
    /// the caller then does the full check (or, for a throttled client, refuses).
    ///
    /// # Errors
    /// A query error.
    pub fn confirm_client_secret(
        &self,
        consumer: &str,
        presented: &str,
    ) -> Result<bool, StoreError> {
        if presented.len() > MAX_CLIENT_SECRET_LEN {
            return Ok(false);
        }
        let Some(stored) = self
            .client_credential_row(consumer)?
            .and_then(|(hash, _)| hash)
        else {
            return Ok(false);
        };
        Ok(self.secret_cache().confirms(consumer, &stored, presented))
    }

    /// Registers `key` as the public key `consumer` signs its `private_key_jwt` client
    /// assertions with, replacing any earlier one. A client secret it has stays valid.
    ///
    /// # Errors
    /// [`StoreErrorKind::UnknownConsumer`] when no such consumer is registered; otherwise a
    /// query error.
    pub fn register_client_key(&self, consumer: &str, key: &PublicKey) -> Result<(), StoreError> {
        self.write_for_consumer(
            consumer,
            ForConsumer {
                sql: "INSERT INTO scopekey_client_credentials (consumer, secret_hash, public_key, updated_at) \
                      VALUES ($1, NULL, $2, $3) \
                      ON CONFLICT (consumer) DO UPDATE SET public_key = excluded.public_key, updated_at = excluded.updated_at",
                text: Some(key.to_paserk()),
                now: Some(now_seconds()),
            },
        )
    }

    /// The public key `consumer` registered for `private_key_jwt`, if any.
    ///
    /// # Errors
    /// A query error, or [`StoreErrorKind::Corrupt`] for a stored key that does not import.
    pub fn client_key(&self, consumer: &str) -> Result<Option<PublicKey>, StoreError> {
        let Some((_, Some(paserk))) = self.client_credential_row(consumer)? else {
            return Ok(None);
        };
        PublicKey::from_paserk(&paserk).map(Some).map_err(|e| {
            StoreError::corrupt("scopekey_client_credentials", consumer_shown(consumer), e)
        })
    }

    /// Makes `consumer` an operator that may be granted `scopes` for the token service's admin
    /// audience (replacing earlier ones), or, with `None`, no operator any more. Admin tokens
    /// already issued stay valid until they expire or are revoked.
    ///
    /// # Errors
    /// [`StoreErrorKind::UnknownConsumer`] when no such consumer is registered; otherwise a
    /// query error.
    pub fn set_operator_scopes(
        &self,
        consumer: &str,
        scopes: Option<&scopekey::ScopeSet>,
    ) -> Result<(), StoreError> {
        let w = match scopes {
            Some(scopes) => ForConsumer {
                sql: "INSERT INTO scopekey_operators (consumer, scopes, updated_at) VALUES ($1, $2, $3) \
                      ON CONFLICT (consumer) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at",
                text: Some(scopes.to_string()),
                now: Some(now_seconds()),
            },
            None => ForConsumer {
                sql: "DELETE FROM scopekey_operators WHERE consumer = $1",
                text: None,
                now: None,
            },
        };
        self.write_for_consumer(consumer, w)
    }

    /// The admin scopes `consumer` may be granted as an operator, or `None` when it is none.
    ///
    /// # Errors
    /// A query error, or [`StoreErrorKind::Corrupt`] for scopes that do not parse.
    pub fn operator_scopes(
        &self,
        consumer: &str,
    ) -> Result<Option<scopekey::ScopeSet>, StoreError> {
        const T: &str = "scopekey_operators";
        let name = consumer.to_owned();
        let shown = consumer_shown(consumer);
        let text = self.block(move |b| Box::pin(async move {
            on!(&b, pool => {
                let row = sqlx::query("SELECT scopes FROM scopekey_operators WHERE consumer = $1")
                    .bind(name).fetch_optional(pool).await.map_err(StoreError::query)?;
                row.map(|r| r.text(T, &shown, "scopes")).transpose()
            })
        }))?;
        text.map(|t| {
            t.parse().map_err(|e: scopekey::ScopeError| {
                StoreError::corrupt(T, consumer_shown(consumer), e)
            })
        })
        .transpose()
    }

    /// `(secret_hash, public_key)` of `consumer`'s row, if it has one.
    fn client_credential_row(&self, consumer: &str) -> Result<Option<CredentialRow>, StoreError> {
        const T: &str = "scopekey_client_credentials";
        let name = consumer.to_owned();
        let shown = consumer_shown(consumer);
        self.block(move |b| Box::pin(async move {
            let sql = "SELECT secret_hash, public_key FROM scopekey_client_credentials WHERE consumer = $1";
            on!(&b, pool => {
                let row = sqlx::query(sql).bind(name).fetch_optional(pool).await.map_err(StoreError::query)?;
                row.map(|r| Ok((r.text_or_null(T, &shown, "secret_hash")?, r.text_or_null(T, &shown, "public_key")?)))
                    .transpose()
            })
        }))
    }
}

/// A statement run for a registered consumer: in one transaction, the consumer's row is looked
/// up and, only if it exists, `sql` runs with `name` as `$1` and, when given, `text` as `$2` and
/// `now` as `$3`. `Err(UnknownConsumer)` when there is no such consumer.
struct ForConsumer {
    sql: &'static str,
    text: Option<String>,
    now: Option<i64>,
}

impl Store {
    fn write_for_consumer(&self, consumer: &str, w: ForConsumer) -> Result<(), StoreError> {
        let name = consumer.to_owned();
        let found = self.block(move |b| Box::pin(async move {
            on!(&b, pool => {
                let mut tx = pool.begin().await.map_err(StoreError::query)?;
                let known = sqlx::query("SELECT name FROM scopekey_consumers WHERE name = $1")
                    .bind(name.clone()).fetch_optional(&mut *tx).await.map_err(StoreError::query)?;
                if known.is_none() {
                    return Ok(false);
                }
                let mut q = sqlx::query(w.sql).bind(name);
                if let Some(text) = w.text {
                    q = q.bind(text);
                }
                if let Some(now) = w.now {
                    q = q.bind(now);
                }
                q.execute(&mut *tx).await.map_err(StoreError::query)?;
                tx.commit().await.map_err(StoreError::query)?;
            });
            Ok(true)
        }))?;
        if found {
            Ok(())
        } else {
            Err(unknown_consumer(consumer))
        }
    }
}

/// A credentials row: `(secret_hash, public_key)`, either possibly absent.
type CredentialRow = (Option<String>, Option<String>);

fn unknown_consumer(name: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::UnknownConsumer,
        format!(
            "unknown consumer {:?}: register it with `scopekey consumers add`",
            consumer_shown(name)
        ),
    )
}

/// A consumer name as it may appear in a message: at most 60 characters.
fn consumer_shown(name: &str) -> String {
    name.chars().take(60).collect()
}

fn hash_secret(secret: &str) -> Result<String, StoreError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| {
        StoreError::new(
            StoreErrorKind::Runtime,
            format!("random source failed: {e}"),
        )
    })?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| StoreError::new(StoreErrorKind::Runtime, format!("argon2 salt: {e}")))?;
    argon2()?
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::new(StoreErrorKind::Runtime, format!("argon2: {e}")))
}

/// The hash checked for a consumer without one (made once per process); its outcome is
/// ignored, so only its cost matters.
struct DummyHash(String);

impl DummyHash {
    fn password_hash(&self) -> PasswordHash<'_> {
        // Made by `hash_secret` below, so it parses; a failure would only make the dummy
        // check cheaper, never accept anything.
        PasswordHash::new(&self.0).unwrap_or_else(|_| PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: None,
            params: argon2::password_hash::ParamsString::new(),
            salt: None,
            hash: None,
        })
    }
}

fn dummy_hash() -> Result<&'static DummyHash, StoreError> {
    static DUMMY: OnceLock<DummyHash> = OnceLock::new();
    if let Some(d) = DUMMY.get() {
        return Ok(d);
    }
    let made = DummyHash(hash_secret("scopekey dummy secret, never issued")?);
    Ok(DUMMY.get_or_init(|| made))
}

/// The secrets a store handle has verified: per consumer, the stored hash a secret matched
/// and a digest of that secret keyed with a per-process random key (so the table holds no
/// secret, and nothing that can be checked offline without the key). Bounded; when full, it
/// is emptied and refills from the next checks (each costing one argon2 hash again).
pub(crate) struct SecretCache {
    key: Zeroizing<[u8; 32]>,
    entries: Mutex<HashMap<String, (String, [u8; 32])>>,
}

/// The most consumers a store handle remembers verified secrets of.
const SECRET_CACHE_CAPACITY: usize = 10_000;

impl SecretCache {
    pub(crate) fn new() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        // Should the random source fail, a zero key still keeps secrets out of the table, and
        // `confirms` still only matches a secret that argon2 verified in this process.
        let _ = getrandom::fill(key.as_mut());
        Self {
            key,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn digest(&self, consumer: &str, secret: &str) -> [u8; 32] {
        let Ok(mut mac) = <Blake2bMac256 as KeyInit>::new_from_slice(self.key.as_ref()) else {
            return [0; 32];
        };
        mac.update(&(consumer.len() as u64).to_le_bytes());
        mac.update(consumer.as_bytes());
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn confirms(&self, consumer: &str, stored_hash: &str, secret: &str) -> bool {
        let digest = self.digest(consumer, secret);
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(consumer)
            .is_some_and(|(hash, known)| hash == stored_hash && bool::from(known.ct_eq(&digest)))
    }

    fn remember(&self, consumer: &str, stored_hash: &str, secret: &str) {
        let digest = self.digest(consumer, secret);
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= SECRET_CACHE_CAPACITY && !entries.contains_key(consumer) {
            entries.clear();
        }
        entries.insert(consumer.to_owned(), (stored_hash.to_owned(), digest));
    }
}

impl std::fmt::Debug for SecretCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretCache").finish_non_exhaustive()
    }
}
