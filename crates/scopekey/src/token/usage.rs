//! Usage limits: a token that may be used at most N times (claim `uses`), counted by a
//! [`UsageCounter`] that `lifecycle/` (in memory) or a store implements.

use crate::token::claims::{Claims, TokenId};
use crate::token::error::{BackendError, VerifyError, VerifyErrorKind};
use crate::token::verifier::MAX_LEEWAY;
use time::OffsetDateTime;

/// The most uses one token may be limited to: 1 000 000. A token needing more is not
/// use-limited in any useful sense; give it a shorter lifetime instead.
pub const MAX_USES: u32 = 1_000_000;

/// The claim that carries a token's usage limit.
pub(crate) const USES_CLAIM: &str = "uses";

/// The limit of a verified token's `uses` claim: `None` without one; an error for a claim that
/// is not an integer in 1..=[`MAX_USES`] (a token that says it is limited but not how must not
/// be taken as unlimited).
pub(crate) fn uses_of(
    other: &serde_json::Map<String, serde_json::Value>,
) -> Result<Option<u32>, String> {
    let Some(value) = other.get(USES_CLAIM) else {
        return Ok(None);
    };
    value
        .as_u64()
        .filter(|n| (1..=u64::from(MAX_USES)).contains(n))
        .and_then(|n| u32::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| format!("`uses` must be an integer from 1 to {MAX_USES}"))
}

/// What a [`UsageCounter`] did with one use.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Consumption {
    /// The use was within the limit and is now counted: it was the `used`-th.
    Counted {
        /// How many uses the token has had, this one included (1 for the first).
        used: u32,
    },
    /// The token had already been used `limit` times; nothing was counted.
    Exhausted,
}

/// Counts the uses of use-limited tokens (claim `uses`, THREATS.md G3), for
/// [`Verifier::with_usage_counter`](crate::Verifier::with_usage_counter).
///
/// [`MemoryUsageCounter`](crate::usage::MemoryUsageCounter) counts in one process;
/// `scopekey-store`'s `Store::usage_counter` counts in the store, so that every instance sharing
/// it shares the count.
///
/// # Security
/// [`consume`](Self::consume) must be atomic: of any number of concurrent calls for one token,
/// in any number of processes, at most `limit` may return [`Consumption::Counted`] over the
/// token's life. A counter that cannot tell must return an error (the verifier then refuses,
/// [`VerifyErrorKind::UsageUnavailable`]), never a guess.
pub trait UsageCounter: Send + Sync + std::fmt::Debug {
    /// Counts one use of the token `token_id`, which may be used at most `limit` times
    /// (1..=[`MAX_USES`]). Its count must be kept at least until `keep_until` (the token's `exp`
    /// plus [`MAX_LEEWAY`]: no verifier accepts it after that), and may be forgotten afterwards.
    ///
    /// # Errors
    /// [`BackendError`] when the count could not be read or written; the token is refused.
    fn consume(
        &self,
        token_id: &TokenId,
        limit: u32,
        keep_until: OffsetDateTime,
    ) -> Result<Consumption, BackendError>;
}

/// The verifier's step: consumes one use of a token limited to `limit` uses through `counter`
/// (fail closed without one, or when it errs).
pub(crate) fn consume_use(
    counter: Option<&dyn UsageCounter>,
    claims: &Claims,
    limit: u32,
) -> Result<(), VerifyError> {
    let Some(counter) = counter else {
        return Err(VerifyError::new(
            VerifyErrorKind::UsageUnavailable,
            "the token is limited to a number of uses and this verifier has no usage counter \
             (configure Verifier::with_usage_counter)",
        ));
    };
    let keep_until = claims
        .expires_at
        .checked_add(time::Duration::seconds(
            i64::try_from(MAX_LEEWAY.as_secs()).unwrap_or(0),
        ))
        .unwrap_or(claims.expires_at);
    match counter.consume(&claims.token_id, limit, keep_until) {
        Ok(Consumption::Counted { .. }) => Ok(()),
        Ok(Consumption::Exhausted) => Err(VerifyError::new(
            VerifyErrorKind::UsesExhausted,
            format!(
                "the token has been used the {limit} time{} it may be; its consumer needs a new token",
                if limit == 1 { "" } else { "s" }
            ),
        )),
        Err(e) => Err(VerifyError::new(
            VerifyErrorKind::UsageUnavailable,
            format!("the token's uses could not be counted, so it is refused: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_integers_in_range_are_limits() {
        let of = |json: &str| uses_of(&serde_json::from_str(json).unwrap());
        assert_eq!(of("{}"), Ok(None));
        assert_eq!(of(r#"{"uses":1}"#), Ok(Some(1)));
        assert_eq!(of(r#"{"uses":1000000}"#), Ok(Some(MAX_USES)));
        for bad in [
            r#"{"uses":0}"#,
            r#"{"uses":-1}"#,
            r#"{"uses":1000001}"#,
            r#"{"uses":1.5}"#,
            r#"{"uses":1.0}"#,
            r#"{"uses":"3"}"#,
            r#"{"uses":null}"#,
            r#"{"uses":[1]}"#,
            r#"{"uses":18446744073709551616}"#,
        ] {
            assert!(of(bad).is_err(), "{bad}");
        }
    }
}
