//! Checking one DPoP proof (RFC 9449 §4.3) against the request it came with.

use crate::codec::b64;
use crate::codec::json::{Limits, parse_object};
use crate::dpop::jkt::Jkt;
use crate::dpop::nonce::NonceSource;
use crate::dpop::replay::ReplayCache;
use crate::key::PublicKey;
use crate::token::error::{VerifyError, VerifyErrorKind};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// The longest proof accepted, in bytes: 8 KiB. Longer ones are refused before any decoding.
pub const MAX_PROOF_LEN: usize = 8 * 1024;
/// The longest `jti` accepted, in bytes.
pub const MAX_JTI_LEN: usize = 256;
/// How old a proof's `iat` may be by default: 60 s.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60);
/// How far in the future a proof's `iat` may be by default (clock skew): 5 s.
pub const DEFAULT_FUTURE_LEEWAY: Duration = Duration::from_secs(5);
/// The largest `max_age` a policy accepts: 10 minutes (the replay cache holds each `jti`
/// that long).
pub const MAX_MAX_AGE: Duration = Duration::from_secs(600);

/// The algorithms a proof may be signed with, as `WWW-Authenticate`'s `algs` lists them:
/// `EdDSA` (RFC 8037) and its fully specified name `Ed25519` (RFC 9864, what current clients
/// such as panva's `dpop` write) for Ed25519 keys, and `ES256` for P-256 keys.
pub const ALGORITHMS: &str = "EdDSA Ed25519 ES256";

const HEADER_LIMITS: Limits = Limits {
    max_depth: 2,
    max_members: 16,
    max_elements: 16,
    max_string: 1024,
};

const CLAIMS_LIMITS: Limits = Limits {
    max_depth: 4,
    max_members: 32,
    max_elements: 32,
    max_string: 4096,
};

/// JWK members that only a private or symmetric key has: a proof's `jwk` with one is refused.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// How a verifier checks DPoP proofs: the `iat` window, the replay cache, and optional server
/// nonces. [`Verifier::with_dpop`](crate::Verifier::with_dpop) takes one.
///
/// Defaults: `iat` at most [`DEFAULT_MAX_AGE`] old and [`DEFAULT_FUTURE_LEEWAY`] ahead, no
/// nonces.
#[derive(Debug, Clone)]
pub struct DpopPolicy {
    max_age: Duration,
    future_leeway: Duration,
    pub(crate) replay: Arc<dyn ReplayCache>,
    nonces: Option<Arc<NonceSource>>,
}

impl DpopPolicy {
    /// Proofs whose `jti`s are remembered in `replay` (a
    /// [`MemoryReplayCache`](crate::dpop::MemoryReplayCache) for one instance, a store's for
    /// several).
    pub fn new(replay: Arc<dyn ReplayCache>) -> Self {
        Self {
            max_age: DEFAULT_MAX_AGE,
            future_leeway: DEFAULT_FUTURE_LEEWAY,
            replay,
            nonces: None,
        }
    }

    /// How old a proof's `iat` may be (default [`DEFAULT_MAX_AGE`]), capped at
    /// [`MAX_MAX_AGE`]; at least 1 s.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age.clamp(Duration::from_secs(1), MAX_MAX_AGE);
        self
    }

    /// How far ahead of this clock a proof's `iat` may be (default
    /// [`DEFAULT_FUTURE_LEEWAY`]), capped at 60 s.
    pub fn future_leeway(mut self, leeway: Duration) -> Self {
        self.future_leeway = leeway.min(Duration::from_secs(60));
        self
    }

    /// Requires every proof to carry a current server nonce from `nonces` (RFC 9449 §8); a
    /// proof without one is refused as [`VerifyErrorKind::DpopNonceRequired`] and the HTTP
    /// layer answers with a fresh `DPoP-Nonce`.
    pub fn require_nonces(mut self, nonces: NonceSource) -> Self {
        self.nonces = Some(Arc::new(nonces));
        self
    }

    /// The nonce a client should put in its next proof at `unix_now`, when nonces are required.
    pub fn nonce(&self, unix_now: i64) -> Option<String> {
        self.nonces.as_ref().map(|n| n.current(unix_now))
    }

    /// Checks the proof of a token request (RFC 9449 §5: a proof without `ath`, at the token
    /// endpoint) and remembers its `jti`; returns the thumbprint of its key, to bind the token
    /// to ([`TokenRequest::bind_dpop`](crate::TokenRequest::bind_dpop)).
    ///
    /// # Errors
    /// The `Dpop…` [`VerifyErrorKind`]s of a refused proof, as for a resource request
    /// (`DpopProofMissing` without one), and `DpopUnavailable` when the replay cache is full or
    /// failed.
    pub fn check_token_request(
        &self,
        request: &DpopRequest<'_>,
        unix_now: i64,
    ) -> Result<Jkt, VerifyError> {
        let proof = check_proof(request, None, unix_now, self)?;
        crate::token::presentation::remember(self, &proof, unix_now)?;
        Ok(proof.jkt)
    }

    fn secs(d: Duration) -> i64 {
        i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
    }
}

/// The request a DPoP-bound token was presented with (`Authorization: DPoP`): its `DPoP`
/// proof, method and URI, for [`Presentation::dpop`](crate::Presentation::dpop).
#[derive(Debug, Clone, Copy)]
pub struct DpopRequest<'a> {
    pub(crate) proof: Option<&'a str>,
    pub(crate) method: &'a str,
    pub(crate) htu: &'a str,
}

impl<'a> DpopRequest<'a> {
    /// A request with `method` (`GET`, …) at `uri` (the absolute URI the client addressed,
    /// built from the service's configured public origin and the request path; a query is
    /// ignored) that carried the `DPoP` header `proof` (`None` without one).
    pub fn new(proof: Option<&'a str>, method: &'a str, uri: &'a str) -> Self {
        Self {
            proof,
            method,
            htu: uri,
        }
    }
}

/// What a proof that passed every check but the replay cache said.
#[derive(Debug)]
pub(crate) struct CheckedProof {
    pub(crate) jkt: Jkt,
    /// The replay cache's key: SHA-256 of the thumbprint and the `jti`.
    pub(crate) replay_key: [u8; 32],
    /// When the `jti` may be forgotten: no proof with that `iat` is accepted afterwards.
    pub(crate) keep_until: i64,
}

fn invalid(why: impl Into<std::borrow::Cow<'static, str>>) -> VerifyError {
    VerifyError::new(VerifyErrorKind::DpopProofInvalid, why)
}

/// `uri` normalised as RFC 9449 §4.3 asks: an absolute `http` or `https` URI with its scheme
/// and host in lower case, no default port, dot segments removed, no query and no fragment.
pub(crate) fn normalize_htu(uri: &str) -> Option<String> {
    let mut url = url::Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "https" | "http")
        || url.host().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    Some(url.into())
}

/// `origin` (`https://api.example`, `http://localhost:8080`) normalised as a proof's `htu`
/// is, without a trailing `/`, with its authority (`host[:port]`): `None` when it is not an
/// `http` or `https` origin (a path, query, fragment or user).
pub fn normalize_origin(origin: &str) -> Option<(String, String)> {
    let url = url::Url::parse(origin).ok()?;
    if !matches!(url.scheme(), "https" | "http")
        || !url.username().is_empty()
        || url.password().is_some()
        || url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || origin.ends_with('/')
    {
        return None;
    }
    let host = url.host_str()?;
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    Some((format!("{}://{authority}", url.scheme()), authority))
}

/// `b64url(SHA-256(access token))`, the `ath` of a proof for it.
pub fn access_token_hash(access_token: &str) -> String {
    b64::encode(&Sha256::digest(access_token.as_bytes()))
}

/// Checks `request`'s proof for `access_token` at `unix_now`: everything RFC 9449 §4.3 asks
/// except the replay check and the key binding, which the verifier does with what this
/// returns.
pub(crate) fn check_proof(
    request: &DpopRequest<'_>,
    access_token: Option<&str>,
    unix_now: i64,
    policy: &DpopPolicy,
) -> Result<CheckedProof, VerifyError> {
    let Some(proof) = request.proof else {
        return Err(VerifyError::new(
            VerifyErrorKind::DpopProofMissing,
            "the token is bound to a DPoP key and the request carries no `DPoP` proof",
        ));
    };
    if proof.len() > MAX_PROOF_LEN {
        return Err(invalid(format!(
            "the DPoP proof is longer than {MAX_PROOF_LEN} bytes"
        )));
    }
    let mut parts = proof.split('.');
    let (Some(h64), Some(p64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(
            "the DPoP proof is not a compact JWS of three parts",
        ));
    };
    let decode = |part: &str| {
        b64::decode(part).ok_or_else(|| invalid("the DPoP proof has a part that is not base64url"))
    };
    let header = parse_object(&decode(h64)?, HEADER_LIMITS)
        .map_err(|e| invalid(format!("the DPoP proof's header is not valid: {e}")))?;
    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err(invalid("the DPoP proof's `typ` is not `dpop+jwt`"));
    }
    if header.contains_key("crit") {
        return Err(invalid(
            "the DPoP proof's header has `crit`, which is not supported",
        ));
    }
    let Some(Value::Object(jwk)) = header.get("jwk") else {
        return Err(invalid("the DPoP proof's header has no `jwk` object"));
    };
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(invalid("the DPoP proof's `jwk` holds private key material"));
    }
    let signature = decode(s64)?;
    let signing_input = &proof.as_bytes()[..h64.len() + 1 + p64.len()];
    match header.get("alg").and_then(Value::as_str) {
        Some("EdDSA" | "Ed25519") => verify_eddsa(jwk, signing_input, &signature)?,
        Some("ES256") => verify_es256(jwk, signing_input, &signature)?,
        _ => {
            return Err(invalid(
                "the DPoP proof's `alg` is not EdDSA, Ed25519 or ES256 (`none`, HMAC and others are refused)",
            ));
        }
    }
    let jkt = Jkt::of_jwk(jwk).map_err(|e| invalid(format!("the DPoP proof's `jwk`: {e}")))?;
    let claims = parse_object(&decode(p64)?, CLAIMS_LIMITS)
        .map_err(|e| invalid(format!("the DPoP proof's claims are not valid: {e}")))?;
    check_claims(&claims, request, access_token, unix_now, policy, jkt)
}

fn check_claims(
    claims: &Map<String, Value>,
    request: &DpopRequest<'_>,
    access_token: Option<&str>,
    unix_now: i64,
    policy: &DpopPolicy,
    jkt: Jkt,
) -> Result<CheckedProof, VerifyError> {
    let text = |name: &'static str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("the DPoP proof has no `{name}` string")))
    };
    let jti = text("jti")?;
    if jti.is_empty() || jti.len() > MAX_JTI_LEN {
        return Err(invalid(format!(
            "the DPoP proof's `jti` must be 1 to {MAX_JTI_LEN} bytes"
        )));
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid("the DPoP proof has no integer `iat`"))?;
    let htm = text("htm")?;
    let htu = text("htu")?;
    if htm != request.method {
        return Err(VerifyError::new(
            VerifyErrorKind::DpopRequestMismatch,
            format!(
                "the DPoP proof is for another method than {} (`htm`)",
                request.method
            ),
        ));
    }
    let expected = normalize_htu(request.htu);
    if expected.is_none() || normalize_htu(htu) != expected {
        return Err(VerifyError::new(
            VerifyErrorKind::DpopRequestMismatch,
            "the DPoP proof is for another URI than this request's (`htu`)",
        ));
    }
    let max_age = DpopPolicy::secs(policy.max_age);
    let ahead = DpopPolicy::secs(policy.future_leeway);
    if iat < unix_now.saturating_sub(max_age) || iat > unix_now.saturating_add(ahead) {
        return Err(VerifyError::new(
            VerifyErrorKind::DpopProofStale,
            format!(
                "the DPoP proof's `iat` is {} s from now, outside the accepted window ({max_age} s \
                 past, {ahead} s ahead); make a new proof for each request and check the clocks",
                iat.saturating_sub(unix_now)
            ),
        ));
    }
    if let Some(token) = access_token {
        let ath = text("ath")?;
        let expected = access_token_hash(token);
        if !bool::from(ath.as_bytes().ct_eq(expected.as_bytes())) {
            return Err(VerifyError::new(
                VerifyErrorKind::DpopTokenMismatch,
                "the DPoP proof was made for another access token (`ath`)",
            ));
        }
    }
    if let Some(nonces) = &policy.nonces {
        let fresh = claims
            .get("nonce")
            .and_then(Value::as_str)
            .is_some_and(|n| nonces.accepts(n, unix_now));
        if !fresh {
            return Err(VerifyError::new(
                VerifyErrorKind::DpopNonceRequired,
                "this service requires a current server nonce in DPoP proofs: retry with the \
                 `DPoP-Nonce` it returned",
            ));
        }
    }
    let mut hasher = Sha256::new();
    hasher.update(jkt.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(jti.as_bytes());
    Ok(CheckedProof {
        jkt,
        replay_key: hasher.finalize().into(),
        keep_until: iat.saturating_add(max_age).saturating_add(1),
    })
}

fn coordinate(jwk: &Map<String, Value>, name: &str) -> Result<[u8; 32], VerifyError> {
    jwk.get(name)
        .and_then(Value::as_str)
        .and_then(b64::decode)
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| invalid("the DPoP proof's `jwk` coordinates are not 32 bytes of base64url"))
}

fn bad_signature() -> VerifyError {
    invalid("the DPoP proof's signature does not verify with its `jwk`")
}

fn verify_eddsa(
    jwk: &Map<String, Value>,
    signing_input: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    if jwk.get("kty").and_then(Value::as_str) != Some("OKP")
        || jwk.get("crv").and_then(Value::as_str) != Some("Ed25519")
    {
        return Err(invalid("an EdDSA DPoP proof needs an OKP Ed25519 `jwk`"));
    }
    let key = PublicKey::from_bytes(&coordinate(jwk, "x")?)
        .map_err(|_| invalid("the DPoP proof's `jwk` is not a valid Ed25519 key"))?;
    key.verify_signature(signing_input, signature)
        .map_err(|_| bad_signature())
}

fn verify_es256(
    jwk: &Map<String, Value>,
    signing_input: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    use p256::ecdsa::signature::Verifier as _;
    if jwk.get("kty").and_then(Value::as_str) != Some("EC")
        || jwk.get("crv").and_then(Value::as_str) != Some("P-256")
    {
        return Err(invalid("an ES256 DPoP proof needs an EC P-256 `jwk`"));
    }
    let (x, y) = (coordinate(jwk, "x")?, coordinate(jwk, "y")?);
    let point = p256::EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
    let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point)
        .map_err(|_| invalid("the DPoP proof's `jwk` is not a point on P-256"))?;
    let signature = p256::ecdsa::Signature::from_slice(signature).map_err(|_| bad_signature())?;
    key.verify(signing_input, &signature)
        .map_err(|_| bad_signature())
}
