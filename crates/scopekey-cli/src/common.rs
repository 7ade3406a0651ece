//! Helpers every command shares: failures, reading small inputs into zeroizing memory, opening
//! the store, parsing times and printing.

use crate::{Failure, time_args};
use scopekey::{Environment, KeySet, PublicKey};
use scopekey_store::Store;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The longest input read from a file or standard input where one token or key is expected.
const MAX_SMALL_INPUT: u64 = 64 * 1024;

/// What a command returns.
pub(crate) type Outcome = Result<(), Failure>;

/// A usage or I/O error (exit 2).
pub(crate) fn usage(m: impl std::fmt::Display) -> Failure {
    Failure::Usage(m.to_string())
}

/// A refusal (exit 1).
pub(crate) fn refused(m: impl std::fmt::Display) -> Failure {
    Failure::Refused(m.to_string())
}

/// A store that failed to answer (exit 2).
pub(crate) fn store_error(e: impl std::fmt::Display) -> Failure {
    usage(format!("store: {e}"))
}

/// Says on standard error, in one line, that `old` still works but `new` is the spelling to use.
pub(crate) fn deprecated(old: &str, new: &str) {
    eprintln!(
        "scopekey: warning: `{old}` is deprecated and will be removed; write `{new}` (see docs/cli.md)"
    );
}

/// Reads a small file (a key, a token) into memory that is cleared when dropped: secret keys are
/// read through here.
pub(crate) fn read_small(path: &Path) -> Result<zeroize::Zeroizing<String>, Failure> {
    let file = std::fs::File::open(path)
        .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    // Room for the whole bounded read up front, so no growth leaves a copy behind.
    let mut text = zeroize::Zeroizing::new(String::with_capacity(MAX_SMALL_INPUT as usize + 64));
    file.take(MAX_SMALL_INPUT)
        .read_to_string(&mut text)
        .map_err(|e| {
            usage(format!(
                "cannot read {}: {e} (is it a text file?)",
                path.display()
            ))
        })?;
    Ok(zeroize::Zeroizing::new(text.trim().to_owned()))
}

/// The token given on the command line, or read from standard input when it is `-` or absent.
pub(crate) fn token_arg(token: Option<String>) -> Result<String, Failure> {
    match token.as_deref() {
        Some(t) if t != "-" => Ok(t.trim().to_owned()),
        _ => {
            let mut text = String::new();
            std::io::stdin()
                .take(MAX_SMALL_INPUT)
                .read_to_string(&mut text)
                .map_err(|e| usage(format!("cannot read the token from standard input: {e}")))?;
            Ok(text.trim().to_owned())
        }
    }
}

/// A public key from a PASERK `k4.public` file.
pub(crate) fn public_key(path: &Path) -> Result<PublicKey, Failure> {
    PublicKey::from_paserk(&read_small(path)?)
        .map_err(|e| usage(format!("{}: {e}", path.display())))
}

/// A key set of the public keys in `paths`.
pub(crate) fn key_set(paths: &[PathBuf]) -> Result<KeySet, Failure> {
    let mut set = KeySet::new();
    for p in paths {
        set.insert(public_key(p)?);
    }
    Ok(set)
}

/// Opens the store at `url`.
pub(crate) fn open_store(url: &str) -> Result<Store, Failure> {
    Store::open(url).map_err(store_error)
}

/// Parses the value of `--env`.
pub(crate) fn environment(s: &str) -> Result<Environment, Failure> {
    s.parse().map_err(|e| usage(format!("--env: {e}")))
}

/// Loads a role file (see [`scopekey::consumer::Roles::from_toml`]); a bad file is a refusal
/// naming the file and line.
pub(crate) fn load_roles(path: &Path) -> Result<scopekey::consumer::Roles, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    scopekey::consumer::Roles::from_toml(&path.display().to_string(), &text).map_err(refused)
}

/// Parses `90s`, `15m`, `1h`, `30d` given to `flag` (see [`time_args::duration`]).
pub(crate) fn duration(s: &str, flag: &str) -> Result<Duration, Failure> {
    Ok(time_args::duration(flag, s)?)
}

/// The instant a duration given to `flag` before `now` (see [`time_args::before`]).
pub(crate) fn before_now(
    s: &str,
    flag: &str,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, Failure> {
    Ok(time_args::before(flag, s, now)?)
}

/// Parses an RFC 3339 time given to `flag`, in UTC (see [`time_args::time`]).
pub(crate) fn rfc3339(s: &str, flag: &str) -> Result<OffsetDateTime, Failure> {
    Ok(time_args::time(flag, s)?)
}

/// An optional RFC 3339 time given to `flag`.
pub(crate) fn rfc3339_opt(s: Option<&str>, flag: &str) -> Result<Option<OffsetDateTime>, Failure> {
    s.map(|t| rfc3339(t, flag)).transpose()
}

/// A time as RFC 3339.
pub(crate) fn fmt_time(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// `in 14 min`, `expired 3 h ago`.
pub(crate) fn relative(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let d = (t - now).whole_seconds();
    let human = |s: i64| match s {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    };
    if d >= 0 {
        format!("expires in {}", human(d))
    } else {
        format!("expired {} ago", human(-d))
    }
}

/// Prints `v` as pretty JSON on standard output.
pub(crate) fn print_json(v: &serde_json::Value) -> Outcome {
    let text = serde_json::to_string_pretty(v).map_err(|e| usage(e.to_string()))?;
    writeln!(std::io::stdout(), "{text}").map_err(|e| usage(format!("cannot write output: {e}")))
}

/// The scopes given to a repeatable `flag`, each value one scope or several separated by spaces.
pub(crate) fn parse_scopes<C: FromIterator<scopekey::Scope>>(
    values: &[String],
    flag: &str,
) -> Result<C, Failure> {
    values
        .iter()
        .flat_map(|s| s.split(' '))
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|e| usage(format!("{flag}: {e}"))))
        .collect()
}
