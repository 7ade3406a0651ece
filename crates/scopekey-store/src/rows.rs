//! Rows to types and back. A row that does not parse is an error naming the row, never a
//! panic and never silently skipped.

use crate::StoreError;
use crate::backend::at;
use scopekey::consumer::Consumer;
use scopekey::inventory::{TokenRecord, TokenRecordParts};
use scopekey::revocation::{Revocation, RevocationTarget};
use scopekey::{KeyId, PublicKey, TokenType};
use sqlx::Row;
use time::OffsetDateTime;

/// `(kind, value, instant)` of a revocation target.
pub(crate) fn revocation_columns(
    t: &RevocationTarget,
) -> (&'static str, Option<String>, Option<i64>) {
    let ts = |t: &OffsetDateTime| t.unix_timestamp();
    match t {
        RevocationTarget::Token {
            token_id,
            expires_at,
        } => (
            "token",
            Some(token_id.as_str().into()),
            expires_at.as_ref().map(ts),
        ),
        RevocationTarget::Family(f) => ("family", Some(f.as_str().into()), None),
        RevocationTarget::Subject {
            subject,
            issued_before,
        } => (
            "subject",
            Some(subject.clone()),
            issued_before.as_ref().map(ts),
        ),
        RevocationTarget::IssuedBefore(t) => ("issued_before", None, Some(ts(t))),
        RevocationTarget::Key(k) => ("key", Some(k.as_str().into()), None),
        // RevocationTarget is non-exhaustive; a future kind cannot be stored by this version.
        _ => ("unknown", None, None),
    }
}

fn get<'r, T, R>(row: &'r R, table: &str, key: &str, column: &'r str) -> Result<T, StoreError>
where
    R: Row,
    T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    &'r str: sqlx::ColumnIndex<R>,
{
    row.try_get::<T, _>(column)
        .map_err(|e| StoreError::corrupt(table, key, format_args!("column {column}: {e}")))
}

pub(crate) fn revocation<R>(row: &R) -> Result<(i64, Revocation), StoreError>
where
    R: Row,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
{
    const T: &str = "scopekey_revocations";
    let id: i64 = get(row, T, "?", "id")?;
    let key = id.to_string();
    let kind: String = get(row, T, &key, "kind")?;
    let value: Option<String> = get(row, T, &key, "value")?;
    let instant: Option<i64> = get(row, T, &key, "instant")?;
    let by: String = get(row, T, &key, "revoked_by")?;
    let revoked_at: i64 = get(row, T, &key, "revoked_at")?;
    let reason: String = get(row, T, &key, "reason")?;
    let bad = |why: &str| StoreError::corrupt(T, &key, why);
    let value_of = |what: &str| {
        value
            .clone()
            .ok_or_else(|| bad(&format!("{what} revocation without a value")))
    };
    let instant_at = |i: i64| at(i).map_err(|_| bad("instant out of range"));
    let target = match kind.as_str() {
        "token" => RevocationTarget::Token {
            token_id: value_of("token")?
                .parse()
                .map_err(|e| bad(&format!("{e}")))?,
            expires_at: instant.map(instant_at).transpose()?,
        },
        "family" => RevocationTarget::Family(
            value_of("family")?
                .parse()
                .map_err(|e| bad(&format!("{e}")))?,
        ),
        "subject" => RevocationTarget::Subject {
            subject: value_of("subject")?,
            issued_before: instant.map(instant_at).transpose()?,
        },
        "issued_before" => RevocationTarget::IssuedBefore(instant_at(
            instant.ok_or_else(|| bad("issued_before revocation without an instant"))?,
        )?),
        "key" => RevocationTarget::Key(value_of("key")?.parse().map_err(|e| bad(&format!("{e}")))?),
        other => {
            return Err(bad(&format!(
                "unknown revocation kind {:?}",
                other.chars().take(32).collect::<String>()
            )));
        }
    };
    let record = Revocation::new(target, &by, instant_at(revoked_at)?, &reason)
        .map_err(|e| bad(&e.to_string()))?;
    Ok((id, record))
}

type KeyRow = (PublicKey, Option<OffsetDateTime>, Option<OffsetDateTime>);

pub(crate) fn key<R>(row: &R) -> Result<KeyRow, StoreError>
where
    R: Row,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
{
    const T: &str = "scopekey_keys";
    let kid: String = get(row, T, "?", "kid")?;
    let shown: String = kid.chars().take(60).collect();
    let bad = |why: String| StoreError::corrupt(T, &shown, why);
    let paserk: String = get(row, T, &shown, "public_key")?;
    let key = PublicKey::from_paserk(&paserk).map_err(|e| bad(e.to_string()))?;
    let expected: KeyId = kid
        .parse()
        .map_err(|e: scopekey::KeyError| bad(e.to_string()))?;
    if key.key_id() != &expected {
        return Err(bad("the key id does not match the key".into()));
    }
    let nb: Option<i64> = get(row, T, &shown, "not_before")?;
    let ra: Option<i64> = get(row, T, &shown, "retire_at")?;
    let time = |t: i64| at(t).map_err(|_| bad("time out of range".into()));
    Ok((key, nb.map(time).transpose()?, ra.map(time).transpose()?))
}

pub(crate) fn token_record<R>(row: &R) -> Result<TokenRecord, StoreError>
where
    R: Row,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
{
    const T: &str = "scopekey_tokens";
    let jti: String = get(row, T, "?", "jti")?;
    let shown: String = jti.chars().take(60).collect();
    let bad = |why: String| StoreError::corrupt(T, &shown, why);
    let token_type = match get::<String, _>(row, T, &shown, "token_type")?.as_str() {
        "access" => TokenType::Access,
        "refresh" => TokenType::Refresh,
        other => return Err(bad(format!("unknown token type {other:?}"))),
    };
    let time = |t: i64| at(t).map_err(|_| bad("time out of range".into()));
    let family: Option<String> = get(row, T, &shown, "family")?;
    let parts = TokenRecordParts {
        token_id: jti
            .parse()
            .map_err(|e: scopekey::InvalidId| bad(e.to_string()))?,
        token_type,
        subject: get(row, T, &shown, "subject")?,
        owner: get(row, T, &shown, "owner")?,
        purpose: get(row, T, &shown, "purpose")?,
        scopes: get::<String, _>(row, T, &shown, "scopes")?
            .parse()
            .map_err(|e: scopekey::ScopeError| bad(e.to_string()))?,
        issued_at: time(get(row, T, &shown, "issued_at")?)?,
        expires_at: time(get(row, T, &shown, "expires_at")?)?,
        key_id: get::<String, _>(row, T, &shown, "kid")?
            .parse()
            .map_err(|e: scopekey::KeyError| bad(e.to_string()))?,
        family: family
            .map(|f| {
                f.parse()
                    .map_err(|e: scopekey::InvalidId| bad(e.to_string()))
            })
            .transpose()?,
        last_used: get::<Option<i64>, _>(row, T, &shown, "last_used")?
            .map(time)
            .transpose()?,
    };
    Ok(parts.into())
}

pub(crate) fn consumer<R>(row: &R) -> Result<Consumer, StoreError>
where
    R: Row,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
{
    const T: &str = "scopekey_consumers";
    let name: String = get(row, T, "?", "name")?;
    let shown: String = name.chars().take(60).collect();
    let bad = |why: String| StoreError::corrupt(T, &shown, why);
    let time = |t: i64| at(t).map_err(|_| bad("time out of range".into()));
    let env = get::<String, _>(row, T, &shown, "environment")?
        .parse()
        .map_err(|e: scopekey::InvalidId| bad(e.to_string()))?;
    let ceiling = get::<String, _>(row, T, &shown, "ceiling")?
        .parse()
        .map_err(|e: scopekey::ScopeError| bad(e.to_string()))?;
    let owner: String = get(row, T, &shown, "owner")?;
    let purpose: String = get(row, T, &shown, "purpose")?;
    let created = time(get(row, T, &shown, "created_at")?)?;
    let disabled = get::<Option<i64>, _>(row, T, &shown, "disabled_at")?
        .map(time)
        .transpose()?;
    Consumer::from_parts(&name, &owner, &purpose, env, ceiling, created, disabled)
        .map_err(|e| bad(e.to_string()))
}
