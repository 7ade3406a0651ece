//! `scopekey audit`: read the audit trail from the store or a JSON Lines file, filtered.

use crate::Failure;
use crate::args::{JsonOutput, OptionalStore};
use crate::common::{Outcome, before_now, rfc3339, store_error, usage};
use clap::Args;
use scopekey_store::AuditQuery;
use serde_json::{Map, Value};
use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::path::PathBuf;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The longest line read from a JSON Lines trail; a longer one is refused, naming the line.
const MAX_LINE: u64 = 1 << 20;

/// Events read from the store per query (pages follow the row id).
const PAGE: i64 = 1000;

/// `scopekey audit (--store URL | --file FILE) [filters] [--json]`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  scopekey audit --store sqlite://scopekey.db --jti \"$JTI\"\n  scopekey audit --file audit.jsonl --kind revoked --since 1d --json"
)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["store", "file"])))]
#[command(mut_arg("store", |a| a.help("The store whose trail to read")))]
#[command(mut_arg("json", |a| a.help("Print the matching events as JSON Lines, exactly as recorded")))]
pub(crate) struct AuditArgs {
    #[command(flatten)]
    store: OptionalStore,
    /// A JSON Lines trail (`JsonLinesSink`, the example service's `--audit-log`).
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Only events about this token (`jti`).
    // Ids are base64url: one in 64 starts with `-`, which is a value here, not a flag.
    #[arg(long, allow_hyphen_values = true)]
    jti: Option<String>,
    /// Only events about this consumer (`sub`).
    #[arg(long)]
    subject: Option<String>,
    /// Only events of this kind (`issued`, `revoked`, `token_used`, `refused_summary`, …).
    #[arg(long)]
    kind: Option<String>,
    /// Only events at or after this time: RFC 3339, or a duration ago (`30m`, `1d`).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    #[command(flatten)]
    output: JsonOutput,
}

struct Filter {
    jti: Option<String>,
    /// What is known of the `--jti` token, so the revocations that cover it without naming it
    /// (its family's, its consumer's, its key's, everything-before-a-moment) are shown too.
    covering: Covering,
    subject: Option<String>,
    kind: Option<String>,
    since: Option<OffsetDateTime>,
}

#[derive(Debug, Default)]
struct Covering {
    family: Option<String>,
    subject: Option<String>,
    key: Option<String>,
}

impl Covering {
    /// What an event about the token says of it.
    fn learn(&mut self, e: &Map<String, Value>) {
        let text = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_owned);
        self.family = self.family.take().or_else(|| text("fam"));
        self.subject = self.subject.take().or_else(|| text("sub"));
        self.key = self.key.take().or_else(|| text("kid"));
    }

    fn covers(&self, e: &Map<String, Value>) -> bool {
        let text = |k: &str| e.get(k).and_then(Value::as_str);
        if text("event") != Some("revoked") {
            return false;
        }
        let same = |k: &str, known: &Option<String>| known.is_some() && text(k) == known.as_deref();
        match text("target") {
            Some("family") => same("fam", &self.family),
            Some("subject") => same("sub", &self.subject),
            Some("key") => same("kid", &self.key),
            Some("issued_before") => true,
            _ => false,
        }
    }
}

impl Filter {
    fn matches(&self, e: &Map<String, Value>) -> bool {
        let is = |field: &str, want: &Option<String>| {
            want.as_deref()
                .is_none_or(|w| e.get(field).and_then(Value::as_str) == Some(w))
        };
        let recent = self.since.is_none_or(|since| {
            e.get("time")
                .and_then(Value::as_str)
                .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
                .is_some_and(|t| t >= since)
        });
        let about_token = is("jti", &self.jti) || (self.jti.is_some() && self.covering.covers(e));
        about_token && is("sub", &self.subject) && is("event", &self.kind) && recent
    }
}

/// Prints the matching events of the trail, oldest first.
pub(crate) fn exec(a: AuditArgs) -> Outcome {
    let since = match &a.since {
        None => None,
        Some(s) if s.contains('T') => Some(rfc3339(s, "--since")?),
        Some(s) => Some(before_now(s, "--since", OffsetDateTime::now_utc())?),
    };
    let mut filter = Filter {
        jti: a.jti,
        covering: Covering::default(),
        subject: a.subject,
        kind: a.kind,
        since,
    };
    let mut shown = 0u64;
    let mut out = std::io::stdout().lock();
    let mut show = |filter: &Filter, line: &str, e: &Map<String, Value>| {
        if filter.matches(e) {
            shown += 1;
            // A closed pipe (`| head`) ends the output, never the process with a panic.
            let _ = if a.output.json {
                writeln!(out, "{line}")
            } else {
                writeln!(out, "{}", human(e))
            };
        }
    };
    if let Some(store) = a.store.open()? {
        let mut query = AuditQuery::new().limit(PAGE);
        if let Some(jti) = &filter.jti {
            filter.covering = store_facts(&store, jti)?;
            let c = &filter.covering;
            let family = c.family.as_deref().and_then(|f| f.parse().ok());
            let key = c.key.as_deref().and_then(|k| k.parse().ok());
            query = query.jti(jti).with_revocations_covering(
                family.as_ref(),
                c.subject.as_deref(),
                key.as_ref(),
            );
        }
        if let Some(subject) = &filter.subject {
            query = query.subject(subject);
        }
        if let Some(kind) = &filter.kind {
            query = query.kind(kind);
        }
        if let Some(since) = filter.since {
            query = query.since(since);
        }
        loop {
            let page = store.audit_events(&query).map_err(store_error)?;
            let Some((last, _)) = page.last() else { break };
            query = query.after(*last);
            for (row, line) in &page {
                let e = parse(line).map_err(|why| {
                    usage(format!(
                        "store audit row {row} is not an audit event: {why}"
                    ))
                })?;
                // The database filtered already; the exact check stays here.
                show(&filter, line, &e);
            }
        }
    } else if let Some(path) = &a.file {
        if let Some(jti) = filter.jti.clone() {
            // A first pass learns the token's family, consumer and key from its own events.
            read_trail(path, |_, e| {
                if e.get("jti").and_then(Value::as_str) == Some(jti.as_str()) {
                    filter.covering.learn(e);
                }
            })?;
        }
        read_trail(path, |line, e| show(&filter, line, e))?;
    }
    if shown == 0 {
        eprintln!("scopekey: no matching audit events");
    }
    Ok(())
}

/// What the store knows of token `jti`: its inventory record, or else its first audit event.
fn store_facts(store: &scopekey_store::Store, jti: &str) -> Result<Covering, Failure> {
    let mut covering = Covering::default();
    if let Ok(id) = jti.parse::<scopekey::TokenId>()
        && let Some(record) = store.token(&id).map_err(store_error)?
    {
        covering.family = record.family().map(|f| f.as_str().to_owned());
        covering.subject = Some(record.subject().to_owned());
        covering.key = Some(record.key_id().as_str().to_owned());
        return Ok(covering);
    }
    let first = store
        .audit_events(&AuditQuery::new().jti(jti).limit(1))
        .map_err(store_error)?;
    if let Some(e) = first.first().and_then(|(_, line)| parse(line).ok()) {
        covering.learn(&e);
    }
    Ok(covering)
}

/// Calls `each` with every event of a JSON Lines trail, in order; a line that is too long or
/// not an event is an error naming it.
fn read_trail(
    path: &std::path::Path,
    mut each: impl FnMut(&str, &Map<String, Value>),
) -> Result<(), Failure> {
    let file = std::fs::File::open(path)
        .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    for n in 1u64.. {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE + 1)
            .read_line(&mut line)
            .map_err(|e| usage(format!("{}:{n}: {e}", path.display())))?;
        if read == 0 {
            break;
        }
        if read as u64 > MAX_LINE {
            return Err(usage(format!(
                "{}:{n}: line longer than {MAX_LINE} bytes: not an audit trail",
                path.display()
            )));
        }
        let text = line.trim_end_matches(['\n', '\r']);
        if text.is_empty() {
            continue;
        }
        let e = parse(text).map_err(|why| {
            usage(format!(
                "{}:{n}: not an audit event ({why})",
                path.display()
            ))
        })?;
        each(text, &e);
    }
    Ok(())
}

fn parse(line: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(m)) if m.get("event").is_some_and(Value::is_string) => Ok(m),
        Ok(_) => Err("no `event` member".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// `TIME EVENT key=value …`: the time and the kind first, then every other member. A trail file
/// or store row may have been tampered with, so control and bidirectional-formatting
/// characters are shown escaped, never sent to the terminal.
fn human(e: &Map<String, Value>) -> String {
    let text = |v: Option<&Value>| safe(v.and_then(Value::as_str).unwrap_or("-"));
    let mut out = format!("{} {}", text(e.get("time")), text(e.get("event")));
    for (k, v) in e {
        if k == "time" || k == "event" {
            continue;
        }
        let shown = match v {
            Value::String(s) => safe(s),
            other => safe(&other.to_string()),
        };
        out.push_str(&format!(" {}={shown}", safe(k)));
    }
    out
}

fn safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}
