//! DPoP (RFC 9449): access tokens bound to a client key, usable only with a fresh proof of
//! possession of that key on every request.
//!
//! A token minted with [`TokenRequest::bind_dpop`](crate::TokenRequest::bind_dpop) carries
//! `cnf: {"jkt": …}`, the [`Jkt`] thumbprint of the client's public key. A verifier with a
//! [`DpopPolicy`] ([`Verifier::with_dpop`](crate::Verifier::with_dpop)) accepts it only through
//! [`Verifier::verify_presented`](crate::Verifier::verify_presented) with a
//! [`DpopRequest`] whose `DPoP` proof is a compact JWS with `typ` `dpop+jwt`, `alg` EdDSA or
//! ES256, a public `jwk` whose thumbprint is the token's `jkt`, `htm` and `htu` of this
//! request, an `iat` within the window, `ath` of this token, a `jti` never seen before within
//! the window (the [`ReplayCache`]), and the server's nonce when it requires one
//! ([`NonceSource`]). Every refusal has its own
//! [`VerifyErrorKind`](crate::VerifyErrorKind)`::Dpop…` kind, checked before a use of a
//! use-limited token is counted.
//!
//! [`ProofBuilder`] makes proofs for Rust clients. See `docs/binding.md`.

mod builder;
mod jkt;
mod nonce;
mod proof;
mod replay;

pub use builder::ProofBuilder;
pub use jkt::{InvalidJkt, Jkt};
pub use nonce::NonceSource;
pub use proof::{
    ALGORITHMS, DEFAULT_FUTURE_LEEWAY, DEFAULT_MAX_AGE, DpopPolicy, DpopRequest, MAX_JTI_LEN,
    MAX_MAX_AGE, MAX_PROOF_LEN, access_token_hash, normalize_origin,
};
pub use replay::{DEFAULT_REPLAY_CAPACITY, MemoryReplayCache, ReplayCache, ReplayCheck};

pub(crate) use proof::{CheckedProof, check_proof};

/// The claim that carries a token's confirmation key (RFC 7800).
pub(crate) const CNF_CLAIM: &str = "cnf";

/// The `jkt` of a verified token's `cnf` claim: `None` without one; an error for a `cnf` that
/// is not an object holding only a valid `jkt` (a token that says it is bound but not to what
/// must not be taken as unbound).
pub(crate) fn jkt_of(
    other: &serde_json::Map<String, serde_json::Value>,
) -> Result<Option<Jkt>, String> {
    let Some(value) = other.get(CNF_CLAIM) else {
        return Ok(None);
    };
    let serde_json::Value::Object(cnf) = value else {
        return Err("`cnf` must be an object".into());
    };
    if cnf.len() != 1 {
        return Err("`cnf` must hold exactly one member, `jkt`".into());
    }
    cnf.get("jkt")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| "`cnf` must hold a `jkt` string".to_owned())?
        .parse::<Jkt>()
        .map(Some)
        .map_err(|e| format!("`cnf.jkt`: {e}"))
}

#[cfg(test)]
mod tests;
