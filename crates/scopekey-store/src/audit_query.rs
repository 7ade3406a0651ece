//! Reading the audit trail back: filters run in the database, pages follow the row id.

use scopekey::{FamilyId, KeyId};
use time::OffsetDateTime;

/// The most events one [`Store::audit_events`](crate::Store::audit_events) call returns.
pub const MAX_AUDIT_PAGE: i64 = 10_000;

/// Which audit events to read, oldest first, one page at a time.
///
/// Pages follow the row id (keyset paging): pass the last id of a page to
/// [`after`](Self::after) for the next one, so a trail growing while it is read is neither
/// skipped nor repeated, and every page costs the same however deep it is.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("scopekey-doc-auditq-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// use scopekey_store::{AuditQuery, Store};
/// let store = Store::open(&format!("sqlite://{}/scopekey.db", dir.display()))?;
/// let mut query = AuditQuery::new().kind("revoked").limit(500);
/// loop {
///     let page = store.audit_events(&query)?;
///     let Some((last, _)) = page.last() else { break };
///     query = query.after(*last);
///     for (_, line) in &page { println!("{line}"); }
/// }
/// # drop(store); std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AuditQuery {
    pub(crate) after: i64,
    pub(crate) limit: i64,
    pub(crate) jti: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) since: Option<OffsetDateTime>,
    pub(crate) covering: Option<Covering>,
}

/// What a token is covered by besides its own id: the revocations of its family, its
/// consumer, its key, and everything-before-a-moment.
#[derive(Debug, Clone, Default)]
pub(crate) struct Covering {
    pub(crate) family: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) key: Option<String>,
}

impl Default for AuditQuery {
    fn default() -> Self {
        Self::new()
    }
}

impl AuditQuery {
    /// Every event, from the first, 1,000 per page.
    pub fn new() -> Self {
        Self {
            after: 0,
            limit: 1000,
            jti: None,
            subject: None,
            kind: None,
            since: None,
            covering: None,
        }
    }

    /// Events with a row id above `id` (the last id of the previous page).
    pub fn after(mut self, id: i64) -> Self {
        self.after = id;
        self
    }

    /// At most `n` events per page (1 to [`MAX_AUDIT_PAGE`]; out-of-range values are clamped).
    pub fn limit(mut self, n: i64) -> Self {
        self.limit = n.clamp(1, MAX_AUDIT_PAGE);
        self
    }

    /// Only events about this token (`jti`).
    pub fn jti(mut self, jti: &str) -> Self {
        self.jti = Some(jti.to_owned());
        self
    }

    /// With [`jti`](Self::jti): also the `revoked` events that cover the token without naming
    /// it: its family's, its consumer's, its key's, and every `issued_before` revocation (the
    /// caller checks the moment). Pass what is known of the token.
    pub fn with_revocations_covering(
        mut self,
        family: Option<&FamilyId>,
        subject: Option<&str>,
        key: Option<&KeyId>,
    ) -> Self {
        self.covering = Some(Covering {
            family: family.map(|f| f.as_str().to_owned()),
            subject: subject.map(str::to_owned),
            key: key.map(|k| k.as_str().to_owned()),
        });
        self
    }

    /// Only events about this consumer (`sub`).
    pub fn subject(mut self, subject: &str) -> Self {
        self.subject = Some(subject.to_owned());
        self
    }

    /// Only events of this kind (`issued`, `revoked`, `token_used`, …).
    pub fn kind(mut self, kind: &str) -> Self {
        self.kind = Some(kind.to_owned());
        self
    }

    /// Only events at or after `t` (to the second).
    pub fn since(mut self, t: OffsetDateTime) -> Self {
        self.since = Some(t);
        self
    }

    /// The SQL after `SELECT id, body FROM scopekey_audit` and its text parameters, numbered
    /// from `$2` (`$1` is `after`, the last `$n` the limit).
    pub(crate) fn where_clause(&self) -> (String, Vec<String>) {
        let mut sql = String::from(" WHERE id > $1");
        let mut params: Vec<String> = Vec::new();
        let param = |value: String, params: &mut Vec<String>| {
            params.push(value);
            format!("${}", params.len() + 1)
        };
        if let Some(kind) = &self.kind {
            let p = param(kind.clone(), &mut params);
            sql.push_str(&format!(" AND event = {p}"));
        }
        if let Some(subject) = &self.subject {
            let p = param(subject.clone(), &mut params);
            sql.push_str(&format!(" AND subject = {p}"));
        }
        if let Some(since) = self.since {
            // RFC 3339 in UTC sorts as text; comparing to the second's prefix keeps events
            // with fractional seconds within that second.
            let prefix = rfc3339_second(since);
            let p = param(prefix, &mut params);
            sql.push_str(&format!(" AND time >= {p}"));
        }
        if let Some(jti) = &self.jti {
            let p = param(jti.clone(), &mut params);
            match &self.covering {
                None => sql.push_str(&format!(" AND jti = {p}")),
                Some(c) => {
                    let mut alternatives = vec![format!("jti = {p}")];
                    let mut revoked =
                        vec![String::from("body LIKE '%\"target\":\"issued_before\"%'")];
                    if let Some(f) = &c.family {
                        let p = param(format!("%\"fam\":\"{}\"%", like_literal(f)), &mut params);
                        revoked.push(format!("body LIKE {p} ESCAPE '\\'"));
                    }
                    if let Some(s) = &c.subject {
                        let p = param(s.clone(), &mut params);
                        revoked.push(format!(
                            "(subject = {p} AND body LIKE '%\"target\":\"subject\"%')"
                        ));
                    }
                    if let Some(k) = &c.key {
                        let p = param(format!("%\"kid\":\"{}\"%", like_literal(k)), &mut params);
                        revoked.push(format!(
                            "(body LIKE {p} ESCAPE '\\' AND body LIKE '%\"target\":\"key\"%')"
                        ));
                    }
                    alternatives.push(format!(
                        "(event = 'revoked' AND ({}))",
                        revoked.join(" OR ")
                    ));
                    sql.push_str(&format!(" AND ({})", alternatives.join(" OR ")));
                }
            }
        }
        let limit = params.len() + 2;
        sql.push_str(&format!(" ORDER BY id LIMIT ${limit}"));
        (sql, params)
    }
}

/// `text` matched literally inside a `LIKE … ESCAPE '\'` pattern: ids are base64url, whose `_`
/// would otherwise match any character.
fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SS` of `t` in UTC.
fn rfc3339_second(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_numbered_in_order_and_never_inlined() {
        let q = AuditQuery::new()
            .kind("revoked")
            .subject("ci' OR 1=1 --")
            .jti("abc")
            .with_revocations_covering(None, Some("ci"), None);
        let (sql, params) = q.where_clause();
        assert!(!sql.contains("OR 1=1"), "{sql}");
        assert_eq!(params.len(), 4);
        for n in 2..=6 {
            assert!(sql.contains(&format!("${n}")), "{sql} lacks ${n}");
        }
        assert!(sql.ends_with("LIMIT $6"), "{sql}");
    }

    #[test]
    fn like_patterns_match_ids_literally() {
        assert_eq!(like_literal("a_b%c\\d"), "a\\_b\\%c\\\\d");
    }

    #[test]
    fn the_limit_is_bounded() {
        assert_eq!(AuditQuery::new().limit(0).limit, 1);
        assert_eq!(AuditQuery::new().limit(i64::MAX).limit, MAX_AUDIT_PAGE);
    }
}
