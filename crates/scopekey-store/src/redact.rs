//! Database URLs as they may be shown: parsed with the `url` crate (the parser sqlx itself uses),
//! with the password and every secret query parameter replaced by `***`, and never echoed raw when
//! they do not parse.

use percent_encoding::percent_decode_str;
use std::fmt;
use url::{Url, form_urlencoded};

/// What replaces a secret.
const MASK: &str = "***";
/// The longest shown URL, in characters.
const MAX_SHOWN: usize = 300;

/// A database URL in its shown form, with the secret values it held (kept only to scrub them
/// out of error texts; never printed, not even by `Debug`).
#[derive(Clone)]
pub(crate) struct RedactedUrl {
    shown: String,
    /// Every secret value, as written and percent-decoded, longest first.
    secrets: Vec<String>,
}

impl RedactedUrl {
    pub(crate) fn new(url: &str) -> Self {
        let mut secrets = Vec::new();
        let shown = match Url::parse(url) {
            Ok(parsed) => shown_form(parsed, &mut secrets),
            Err(_) => unparseable(url),
        };
        secrets.retain(|s| !s.is_empty());
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        let mut url = Self { shown, secrets };
        // A secret that is also visible elsewhere (a password equal to the user name, say) is
        // masked there too: the shown form never holds one.
        url.shown = url.scrub(&url.shown);
        url
    }

    /// The URL with its secrets replaced by `***`.
    pub(crate) fn as_str(&self) -> &str {
        &self.shown
    }

    /// `text` with every secret of the URL replaced by `***`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        out
    }

    /// Whether `text` holds any secret of the URL.
    pub(crate) fn leaks_into(&self, text: &str) -> bool {
        self.secrets.iter().any(|s| text.contains(s.as_str()))
    }
}

impl fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RedactedUrl").field(&self.shown).finish()
    }
}

/// The URL with any password and secret query value replaced by `***`.
#[cfg(test)]
pub(crate) fn redact(url: &str) -> String {
    RedactedUrl::new(url).shown
}

/// Whether a query parameter (by its decoded name) holds a secret: `password`, `sslpassword`,
/// `sslkey` (a key file's path, or the key itself inline) and anything named like a password,
/// token, key or secret. `sslmode`, `sslrootcert`, `sslcert`, `host`, `port`, … stay visible.
fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "pwd", "secret", "token", "key", "credential"]
        .iter()
        .any(|word| name.contains(word))
}

fn shown_form(mut url: Url, secrets: &mut Vec<String>) -> String {
    let scheme = url.scheme().to_owned();
    // `postgres:user:password@host` has no authority: the would-be credentials end up in the path.
    if url.cannot_be_a_base() && url.path().contains('@') {
        push_both(secrets, url.path());
        return format!("<unparseable {} URL>", printable_scheme(&scheme));
    }
    if let Some(password) = url.password().map(str::to_owned) {
        push_both(secrets, &password);
        if url.set_password(Some(MASK)).is_err() {
            return format!("<unparseable {} URL>", printable_scheme(&scheme));
        }
    }
    if let Some(fragment) = url.fragment().map(str::to_owned) {
        // Nothing reads a fragment; it can only be a mistyped part of something else.
        push_both(secrets, &fragment);
        url.set_fragment(None);
    }
    if let Some(query) = url.query().map(str::to_owned) {
        let mut changed = false;
        let pieces: Vec<String> = query
            .split('&')
            .map(|piece| {
                let (raw_name, raw_value) = piece.split_once('=').unwrap_or((piece, ""));
                // Decoded as sqlx decodes it (`Url::query_pairs`: form encoding, `+` a space).
                let Some((name, value)) = form_urlencoded::parse(piece.as_bytes()).next() else {
                    return piece.to_owned();
                };
                if is_secret_param(&name) {
                    secrets.push(raw_value.to_owned());
                    secrets.push(value.into_owned());
                    changed = true;
                    format!("{raw_name}={MASK}")
                } else {
                    piece.to_owned()
                }
            })
            .collect();
        if changed {
            url.set_query(Some(&pieces.join("&")));
        }
    }
    let shown: String = url.as_str().chars().take(MAX_SHOWN).collect();
    if shown.len() < url.as_str().len() {
        format!("{shown}…")
    } else {
        shown
    }
}

/// The placeholder for a URL that does not parse: only its scheme, if it has a plausible one.
fn unparseable(url: &str) -> String {
    match url.split_once(':') {
        Some((scheme, _)) if is_scheme(scheme) => {
            format!("<unparseable {} URL>", scheme.to_ascii_lowercase())
        }
        _ => "<unparseable URL>".to_owned(),
    }
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 32
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn printable_scheme(scheme: &str) -> &str {
    if is_scheme(scheme) {
        scheme
    } else {
        "database"
    }
}

/// A value as written and percent-decoded (sqlx decodes the userinfo password).
fn push_both(secrets: &mut Vec<String>, raw: &str) {
    secrets.push(raw.to_owned());
    secrets.push(percent_decode_str(raw).decode_utf8_lossy().into_owned());
}

/// An error chain with every secret of a URL scrubbed from each level's `Display` and `Debug`.
/// It stands in for the original chain only when that would print a secret.
pub(crate) struct ScrubbedError {
    display: String,
    debug: String,
    source: Option<Box<ScrubbedError>>,
}

impl ScrubbedError {
    /// Scrubs `error` and its sources (at most 32 levels).
    pub(crate) fn new(error: &(dyn std::error::Error + 'static), url: &RedactedUrl) -> Self {
        let mut levels = Vec::new();
        let mut next = Some(error);
        while let Some(e) = next {
            if levels.len() == 32 {
                break;
            }
            levels.push((url.scrub(&e.to_string()), url.scrub(&format!("{e:?}"))));
            next = e.source();
        }
        let mut chain: Option<Box<ScrubbedError>> = None;
        for (display, debug) in levels.into_iter().rev() {
            chain = Some(Box::new(ScrubbedError {
                display,
                debug,
                source: chain,
            }));
        }
        chain.map_or_else(
            || ScrubbedError {
                display: String::new(),
                debug: String::new(),
                source: None,
            },
            |b| *b,
        )
    }

    /// Whether `error` or any of its sources would print a secret of `url`.
    pub(crate) fn needed(error: &(dyn std::error::Error + 'static), url: &RedactedUrl) -> bool {
        let mut next = Some(error);
        let mut depth = 0;
        while let Some(e) = next {
            if depth == 32 || url.leaks_into(&e.to_string()) || url.leaks_into(&format!("{e:?}")) {
                return true;
            }
            depth += 1;
            next = e.source();
        }
        false
    }
}

impl fmt::Display for ScrubbedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

impl fmt::Debug for ScrubbedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.debug)
    }
}

impl std::error::Error for ScrubbedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// The query parameters sqlx's PostgreSQL driver reads. It logs the value of any other one
/// (`ignoring unrecognized connect parameter`), so a secret under another name would end up in
/// the logs.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
const POSTGRES_PARAMS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// The name of the first secret-looking query parameter of a PostgreSQL URL that the driver
/// would ignore (and log, value included), such as libpq's `sslpassword`.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn ignored_secret_param(url: &Url) -> Option<String> {
    url.query_pairs()
        .map(|(name, _)| name.into_owned())
        .find(|name| {
            is_secret_param(name)
                && !POSTGRES_PARAMS.contains(&name.as_str())
                && !name.starts_with("options[")
        })
        .map(|name| name.chars().take(40).collect())
}

/// Whether a PostgreSQL URL names a root certificate (`sslrootcert` and its sqlx spellings).
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn has_root_cert(url: &Url) -> bool {
    url.query_pairs().any(|(name, value)| {
        matches!(&*name, "sslrootcert" | "ssl-root-cert" | "ssl-ca") && !value.is_empty()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// `url` shows as `shown`, and neither the shown form nor a text that echoes the secrets
    /// (scrubbed) holds any of them.
    fn check(url: &str, shown: &str, secrets: &[&str]) {
        let r = RedactedUrl::new(url);
        assert_eq!(r.as_str(), shown, "{url}");
        let echo = format!("error for {url}: {}", secrets.join(" / "));
        let scrubbed = r.scrub(&echo);
        for secret in secrets {
            assert!(
                !r.as_str().contains(secret),
                "{url}: {secret} in {}",
                r.as_str()
            );
            assert!(!scrubbed.contains(secret), "{url}: {secret} in {scrubbed}");
            assert!(
                !format!("{r:?}").contains(secret),
                "{url}: {secret} in Debug"
            );
            assert!(
                r.leaks_into(secret),
                "{url}: {secret} not known as a secret"
            );
        }
    }

    #[test]
    fn passwords_in_the_userinfo_are_masked() {
        check(
            "postgres://u:secret@h:5432/db",
            "postgres://u:***@h:5432/db",
            &["secret"],
        );
        check(
            "postgresql://u:secret@h/db",
            "postgresql://u:***@h/db",
            &["secret"],
        );
        // `@` and `:` inside the password: the last `@` ends the userinfo, as for sqlx.
        check(
            "postgres://u:p@ss:w@rd@h/db",
            "postgres://u:***@h/db",
            &["p@ss:w@rd", "p%40ss%3Aw%40rd"],
        );
        // Percent-encoded, as written and decoded.
        check(
            "postgres://u:p%40ss%2Fw0rd%20x@h/db",
            "postgres://u:***@h/db",
            &["p%40ss%2Fw0rd%20x", "p@ss/w0rd x"],
        );
        // Characters the parser encodes on the way.
        check(
            "postgres://u:pa^ss\"w@h/db",
            "postgres://u:***@h/db",
            &["pa^ss\"w"],
        );
        check(
            "postgres://u:pw1234@[::1]:5432/db",
            "postgres://u:***@[::1]:5432/db",
            &["pw1234"],
        );
        check("postgres://u:@h/db", "postgres://u@h/db", &[]);
        check("postgres://u@h/db", "postgres://u@h/db", &[]);
        check("postgres://h/db", "postgres://h/db", &[]);
    }

    #[test]
    fn a_password_visible_elsewhere_is_masked_there_too() {
        check(
            "postgres://svc:svc-pw@h/svc-pw",
            "postgres://svc:***@h/***",
            &["svc-pw"],
        );
        check(
            "postgres://svc:svc@h/db",
            "postgres://***:***@h/db",
            &["svc"],
        );
    }

    #[test]
    fn secret_query_parameters_are_masked_and_the_rest_kept() {
        check(
            "postgres://u@h/db?password=hunter2&sslmode=verify-full&sslrootcert=/etc/ca.pem",
            "postgres://u@h/db?password=***&sslmode=verify-full&sslrootcert=/etc/ca.pem",
            &["hunter2"],
        );
        check(
            "postgres://u@h/db?sslmode=verify-full&sslcert=/c.pem&sslkey=/home/svc/.pg/key.pem&sslpassword=k3yp4ss",
            "postgres://u@h/db?sslmode=verify-full&sslcert=/c.pem&sslkey=***&sslpassword=***",
            &["/home/svc/.pg/key.pem", "k3yp4ss"],
        );
        // Form encoding: `+` is a space; names are compared decoded and in any case.
        check(
            "postgres://u@h/db?pass%77ord=a+b%2Bc&Api_Token=t0k3n&application_name=x",
            "postgres://u@h/db?pass%77ord=***&Api_Token=***&application_name=x",
            &["a b+c", "a+b%2Bc", "t0k3n"],
        );
        // An inline key.
        check(
            "postgres://u@h/db?ssl-key=-----BEGIN%20PRIVATE%20KEY-----MIGHAgEA",
            "postgres://u@h/db?ssl-key=***",
            &["-----BEGIN PRIVATE KEY-----MIGHAgEA"],
        );
        check(
            "postgres://u@h/db?password=",
            "postgres://u@h/db?password=***",
            &[],
        );
        check(
            "postgres://u:pw9876@h/db?password=qu3ry",
            "postgres://u:***@h/db?password=***",
            &["pw9876", "qu3ry"],
        );
    }

    #[test]
    fn fragments_are_dropped() {
        check(
            "postgres://u@h/db#hunter2",
            "postgres://u@h/db",
            &["hunter2"],
        );
    }

    #[test]
    fn sqlite_urls_are_shown_as_written() {
        for url in [
            "sqlite://a/b.db",
            "sqlite:///var/lib/scopekey/state.db",
            "sqlite::memory:",
            "sqlite:state.db",
            "sqlite://./data/state.db?mode=rwc",
        ] {
            check(url, url, &[]);
        }
    }

    #[test]
    fn unparseable_urls_are_never_echoed() {
        for (url, shown, secret) in [
            (
                "host=db user=u password=hunter2",
                "<unparseable URL>",
                "hunter2",
            ),
            ("hunter2", "<unparseable URL>", "hunter2"),
            ("", "<unparseable URL>", ""),
            (
                "postgres://u:hunter2@[::1/db",
                "<unparseable postgres URL>",
                "hunter2",
            ),
            (
                "postgres://u:hunter2@[fe80::1%25eth0]/db",
                "<unparseable postgres URL>",
                "hunter2",
            ),
            // A `/`, `?` or `#` in an unencoded password ends the authority early.
            (
                "postgres://u:hun/ter2@h/db",
                "<unparseable postgres URL>",
                "hun",
            ),
            (
                "postgres://u:hun?ter2@h/db",
                "<unparseable postgres URL>",
                "hun",
            ),
            (
                "postgres://u:hunter2@h:99999/db",
                "<unparseable postgres URL>",
                "hunter2",
            ),
            (
                "postgres:u:hunter2@h/db",
                "<unparseable postgres URL>",
                "hunter2",
            ),
            ("My Scheme://u:hunter2@h", "<unparseable URL>", "hunter2"),
            (
                "mysql://u:hunter2@h:port/db",
                "<unparseable mysql URL>",
                "hunter2",
            ),
        ] {
            let r = RedactedUrl::new(url);
            assert_eq!(r.as_str(), shown, "{url}");
            assert!(
                secret.is_empty() || !format!("{r:?}").contains(secret),
                "{url}"
            );
        }
        // Other schemes are shown masked too (the store refuses them afterwards).
        check(
            "redis://user:hunter2@localhost/0",
            "redis://user:***@localhost/0",
            &["hunter2"],
        );
    }

    #[test]
    fn long_urls_are_cut() {
        let url = format!("postgres://u:pw5678@h/{}", "d".repeat(1000));
        let shown = redact(&url);
        assert!(shown.ends_with('…'), "{shown}");
        assert_eq!(shown.chars().count(), MAX_SHOWN + 1);
        assert!(!shown.contains("pw5678"));
    }

    #[test]
    fn secret_parameters_the_driver_would_log_are_found() {
        let name = |u: &str| ignored_secret_param(&Url::parse(u).unwrap());
        assert_eq!(
            name("postgres://h/db?sslpassword=x").as_deref(),
            Some("sslpassword")
        );
        assert_eq!(
            name("postgres://h/db?sslmode=require&api_token=x").as_deref(),
            Some("api_token")
        );
        assert_eq!(
            name("postgres://h/db?password=x&sslkey=/k&ssl-key=/k&sslrootcert=/c"),
            None
        );
        assert_eq!(
            name("postgres://h/db?connect_timeout=10&options[search_path]=x"),
            None
        );
        let root = |u: &str| has_root_cert(&Url::parse(u).unwrap());
        assert!(root("postgres://h/db?sslmode=require&sslrootcert=/ca.pem"));
        assert!(root("postgres://h/db?ssl-ca=/ca.pem"));
        assert!(!root("postgres://h/db?sslmode=require&sslrootcert="));
        assert!(!root("postgres://h/db?sslmode=require"));
    }

    #[derive(Debug)]
    struct Outer(Inner);
    #[derive(Debug)]
    struct Inner(String);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "outer")
        }
    }
    impl fmt::Display for Inner {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "inner says {}", self.0)
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    impl std::error::Error for Inner {}

    #[test]
    fn error_chains_are_scrubbed_only_when_they_would_leak() {
        use crate::{StoreError, StoreErrorKind};
        use std::error::Error as _;
        let url = RedactedUrl::new("postgres://u:hunter2@h/db");
        let leaky = StoreError::new(StoreErrorKind::Connect, "cannot connect: hunter2 refused")
            .with_source(Outer(Inner("password hunter2 is wrong".into())))
            .redacted(&url);
        let mut texts = vec![leaky.to_string(), format!("{leaky:?}")];
        let mut next = leaky.source();
        let mut depth = 0;
        while let Some(e) = next {
            texts.push(e.to_string());
            texts.push(format!("{e:?}"));
            next = e.source();
            depth += 1;
        }
        assert_eq!(depth, 2, "the chain keeps its levels");
        assert!(texts.iter().all(|t| !t.contains("hunter2")), "{texts:#?}");
        assert!(
            texts
                .iter()
                .any(|t| t == "inner says password *** is wrong"),
            "{texts:#?}"
        );

        let clean = StoreError::new(StoreErrorKind::Connect, "refused")
            .with_source(Outer(Inner("no".into())))
            .redacted(&url);
        assert!(clean.source().unwrap().downcast_ref::<Outer>().is_some());
    }
}
