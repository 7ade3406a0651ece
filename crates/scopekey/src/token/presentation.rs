//! How a token was presented: the client address, the request for the audit trail, and the
//! DPoP proof of a bound token.

use crate::dpop::{CheckedProof, DpopPolicy, DpopRequest, Jkt, ReplayCheck, check_proof};
use crate::token::audit::RequestContext;
use crate::token::cache::GrantCache;
use crate::token::error::{VerifyError, VerifyErrorKind};
use crate::token::grant::Grant;
use crate::token::verifier::Verifier;
use std::net::IpAddr;
use std::sync::Arc;

/// Everything about a request that a token's caveats are checked against, for
/// [`Verifier::verify_presented`](crate::Verifier::verify_presented): the client address
/// (claim `net`), the request for the audit trail, and the `DPoP` proof when the token came
/// with the `DPoP` scheme (claim `cnf.jkt`).
///
/// ```
/// use scopekey::Presentation;
/// use scopekey::dpop::DpopRequest;
/// let p = Presentation::new()
///     .client(Some("203.0.113.7".parse()?))
///     .dpop(DpopRequest::new(Some("eyJ…"), "GET", "https://api.example/projects/42"));
/// # let _ = p;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Presentation<'a> {
    pub(crate) client: Option<IpAddr>,
    pub(crate) request: Option<RequestContext>,
    pub(crate) dpop: Option<DpopRequest<'a>>,
}

impl<'a> Presentation<'a> {
    /// A token presented as a bearer token, from an unknown client, outside any request.
    pub fn new() -> Self {
        Self::default()
    }

    /// The client's address, when the server knows it (else a network-limited token is
    /// refused).
    pub fn client(mut self, client: Option<IpAddr>) -> Self {
        self.client = client;
        self
    }

    /// The request, for the audit events (its client, if any, stands for
    /// [`client`](Self::client)).
    pub fn request(mut self, request: RequestContext) -> Self {
        self.request = Some(request);
        self
    }

    /// The token came with the `DPoP` scheme, and this request (its proof, method and URI).
    /// Without this, a DPoP-bound token is refused as
    /// [`VerifyErrorKind::DpopProofMissing`]; with it, an unbound token is refused as
    /// [`VerifyErrorKind::DpopNotBound`].
    pub fn dpop(mut self, request: DpopRequest<'a>) -> Self {
        self.dpop = Some(request);
        self
    }
}

impl Verifier {
    /// Verifies a token as it was presented (see [`Presentation`]), through `cache` (or the
    /// verifier's own cache when `None`): every caveat is checked against the presentation —
    /// client networks (claim `net`), the DPoP proof of a bound token (claim `cnf.jkt`, with
    /// the [policy](Self::with_dpop)), and last one use (claim `uses`), so that a token refused
    /// for anything else uses nothing. HTTP layers call this.
    ///
    /// # Errors
    /// As [`verify_from`](Self::verify_from), and the `Dpop…` kinds of [`VerifyErrorKind`].
    ///
    /// # Security
    /// A DPoP-bound token is accepted only with a proof; pass
    /// [`Presentation::dpop`] only for a request that used the `DPoP` scheme.
    pub fn verify_presented(
        &self,
        token: &str,
        cache: Option<&GrantCache>,
        presentation: Presentation<'_>,
    ) -> Result<Grant, VerifyError> {
        let Presentation {
            client,
            request,
            dpop,
        } = presentation;
        self.verify_inner(
            token,
            cache.or(self.grant_cache()),
            client,
            request.map(Arc::new),
            dpop.as_ref(),
        )
    }
}

/// The verifier's DPoP step for a token bound to `jkt` (or not), presented as `dpop` says.
pub(crate) fn check_binding(
    policy: Option<&DpopPolicy>,
    jkt: Option<&Jkt>,
    token: &str,
    dpop: Option<&DpopRequest<'_>>,
    unix_now: i64,
) -> Result<(), VerifyError> {
    let (jkt, request) = match (jkt, dpop) {
        (None, None) => return Ok(()),
        (None, Some(_)) => {
            return Err(VerifyError::new(
                VerifyErrorKind::DpopNotBound,
                "the token was presented with the DPoP scheme and is not bound to a key: \
                 present it as a Bearer token",
            ));
        }
        (Some(_), None) => {
            return Err(VerifyError::new(
                VerifyErrorKind::DpopProofMissing,
                "the token is bound to a DPoP key: present it with the DPoP scheme and a \
                 `DPoP` proof, not as a bearer token",
            ));
        }
        (Some(jkt), Some(request)) => (jkt, request),
    };
    let Some(policy) = policy else {
        return Err(VerifyError::new(
            VerifyErrorKind::DpopUnavailable,
            "the token is bound to a DPoP key and this verifier checks no DPoP proofs \
             (configure Verifier::with_dpop)",
        ));
    };
    let proof = check_proof(request, Some(token), unix_now, policy)?;
    if proof.jkt != *jkt {
        return Err(VerifyError::new(
            VerifyErrorKind::DpopKeyMismatch,
            "the DPoP proof is signed by another key than the one the token is bound to",
        ));
    }
    remember(policy, &proof, unix_now)
}

/// Remembers a checked proof's `jti` in the policy's replay cache: refused when seen before, or
/// when the cache is full or failed.
pub(crate) fn remember(
    policy: &DpopPolicy,
    proof: &CheckedProof,
    unix_now: i64,
) -> Result<(), VerifyError> {
    let unavailable = |why: String| {
        Err(VerifyError::new(
            VerifyErrorKind::DpopUnavailable,
            format!("the DPoP proof could not be checked for replay, so it is refused: {why}"),
        ))
    };
    match policy
        .replay
        .check_and_insert(&proof.replay_key, proof.keep_until, unix_now)
    {
        Ok(ReplayCheck::Fresh) => Ok(()),
        Ok(ReplayCheck::Replayed) => Err(VerifyError::new(
            VerifyErrorKind::DpopProofReplayed,
            "the DPoP proof was already used: make a new proof (a new `jti`) for every request",
        )),
        Ok(ReplayCheck::Full) => unavailable("the replay cache is full".into()),
        Err(e) => unavailable(e.to_string()),
    }
}
