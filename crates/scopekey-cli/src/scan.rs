//! Finding scopekey tokens in files, so a leak is found before an attacker finds it.
//!
//! The scanner looks for `v4.public.` (PASETO) and `eyJ` (the start of a JWT's base64url JSON
//! header) with SIMD substring search (memchr) and only then extends the match over base64url
//! characters, so text without tokens is scanned at memory speed. A JWT candidate must have three
//! dot-separated base64url parts and a header that decodes to a JSON object with an `alg`.
//! Files are read in 1 MiB chunks with an overlap of one maximum token, so memory stays bounded
//! whatever the file size; files with a NUL byte in their first 8 KiB are treated as binary and
//! skipped.

use memchr::memmem;
use scopekey::danger::decode_unverified;
use scopekey::danger::paseto::MAX_TOKEN_LEN;
use scopekey::{KeySet, ManualClock};
use std::io::Read;
use std::path::{Path, PathBuf};

const HEADER: &[u8] = b"v4.public.";
const JWT_START: &[u8] = b"eyJ";
const CHUNK: usize = 1 << 20;
const BINARY_SNIFF: usize = 8 * 1024;

/// What a found token is, as far as the scanner can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Signed by a given key and not expired.
    Valid,
    /// Signed by a given key, but expired.
    Expired,
    /// Its key id is one of the given keys, but the signature does not verify.
    BadSignature,
    /// Its key id is not among the given keys.
    UnknownKey,
    /// No key was given, so nothing was checked.
    Unverified,
    /// Token-shaped, but it does not decode.
    Malformed,
}

impl Status {
    /// The status as printed: `valid`, `expired`, `bad-signature`, `unknown-key`,
    /// `unverified`, `malformed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Expired => "expired",
            Self::BadSignature => "bad-signature",
            Self::UnknownKey => "unknown-key",
            Self::Unverified => "unverified",
            Self::Malformed => "malformed",
        }
    }
}

/// One token found.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Where: a path, or `-` for standard input.
    pub path: String,
    /// 1-based line.
    pub line: u64,
    /// 1-based column, in bytes.
    pub column: u64,
    /// `paseto-v4-public` or `jwt`.
    pub format: &'static str,
    /// The footer's `kid`, if readable.
    pub kid: Option<String>,
    /// The (unverified) `jti`.
    pub jti: Option<String>,
    /// The (unverified) `sub`.
    pub sub: Option<String>,
    /// The (unverified) `env`.
    pub env: Option<String>,
    /// The (unverified) `exp`.
    pub exp: Option<String>,
    /// What the scanner could establish.
    pub status: Status,
    /// The first 12 characters and `…`: never the whole token.
    pub redacted: String,
}

impl Finding {
    /// The finding as a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "path": self.path, "line": self.line, "column": self.column, "format": self.format,
            "kid": self.kid, "jti": self.jti, "sub": self.sub, "env": self.env, "exp": self.exp,
            "status": self.status.as_str(), "token": self.redacted,
        })
    }

    /// The finding as one line of text.
    pub fn to_line(&self) -> String {
        let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        format!(
            "{}:{}:{}: {} {} status={} kid={} jti={} sub={} env={} exp={}",
            self.path,
            self.line,
            self.column,
            self.format,
            self.redacted,
            self.status.as_str(),
            o(&self.kid),
            o(&self.jti),
            o(&self.sub),
            o(&self.env),
            o(&self.exp),
        )
    }
}

/// Scans bytes for tokens.
#[derive(Debug)]
pub struct Scanner {
    keys: Option<KeySet>,
    finder: memmem::Finder<'static>,
    jwt_finder: memmem::Finder<'static>,
}

impl Scanner {
    /// A scanner; with `keys`, found tokens are checked against them.
    pub fn new(keys: Option<KeySet>) -> Self {
        Self {
            keys,
            finder: memmem::Finder::new(HEADER),
            jwt_finder: memmem::Finder::new(JWT_START),
        }
    }

    /// Scans one in-memory buffer, reporting findings with `path`.
    pub fn scan_bytes(&self, path: &str, data: &[u8]) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut line_counter = LineCounter::default();
        self.scan_chunk(path, data, 0, data.len(), &mut line_counter, &mut out);
        out
    }

    /// Scans a reader in bounded chunks.
    ///
    /// # Errors
    /// I/O errors from the reader.
    pub fn scan_reader(&self, path: &str, mut reader: impl Read) -> std::io::Result<ScanResult> {
        let mut out = Vec::new();
        let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + MAX_TOKEN_LEN);
        let mut base = 0u64; // offset of buf[0] in the stream
        let mut first = true;
        let mut lines = LineCounter::default();
        loop {
            let start_len = buf.len();
            buf.resize(start_len + CHUNK, 0);
            let n = read_full(&mut reader, &mut buf[start_len..])?;
            buf.truncate(start_len + n);
            if first {
                first = false;
                let sniff = &buf[..buf.len().min(BINARY_SNIFF)];
                if memchr::memchr(0, sniff).is_some() {
                    return Ok(ScanResult::Binary);
                }
            }
            let eof = n == 0;
            // Tokens starting before `limit` are complete in `buf` (or the stream ended).
            let limit = if eof {
                buf.len()
            } else {
                buf.len().saturating_sub(MAX_TOKEN_LEN + HEADER.len())
            };
            lines.base = base;
            self.scan_chunk(path, &buf, 0, limit, &mut lines, &mut out);
            if eof {
                break;
            }
            lines.advance_to(&buf, limit);
            buf.drain(..limit);
            base += limit as u64;
        }
        Ok(ScanResult::Text(out))
    }

    fn scan_chunk(
        &self,
        path: &str,
        data: &[u8],
        from: usize,
        limit: usize,
        lines: &mut LineCounter,
        out: &mut Vec<Finding>,
    ) {
        // Candidates of both formats, then findings in the order they appear.
        let mut spans = Vec::new();
        let mut pos = from;
        while pos < limit {
            let Some(i) = self.finder.find(&data[pos..]) else {
                break;
            };
            let start = pos + i;
            if start >= limit {
                break;
            }
            // A token begins at a boundary, not inside a longer identifier.
            if start > 0 && is_b64(data[start - 1]) {
                pos = start + HEADER.len();
                continue;
            }
            let end = token_end(data, start);
            spans.push((start, end, "paseto-v4-public"));
            pos = end.max(start + HEADER.len());
        }
        let mut pos = from;
        while pos < limit {
            let Some(i) = self.jwt_finder.find(&data[pos..]) else {
                break;
            };
            let start = pos + i;
            if start >= limit {
                break;
            }
            if start > 0 && (is_b64(data[start - 1]) || data[start - 1] == b'.') {
                pos = start + JWT_START.len();
                continue;
            }
            match jwt_end(data, start) {
                Some(end) => {
                    spans.push((start, end, "jwt"));
                    pos = end;
                }
                None => pos = start + JWT_START.len(),
            }
        }
        spans.sort_unstable();
        for (start, end, format) in spans {
            let (line, column) = lines.position(data, start);
            out.push(self.finding(path, &data[start..end], line, column, format));
        }
    }

    fn finding(
        &self,
        path: &str,
        token: &[u8],
        line: u64,
        column: u64,
        format: &'static str,
    ) -> Finding {
        // Every byte of `token` is ASCII: the header and base64url characters.
        let text = String::from_utf8_lossy(token);
        let redacted: String = text.chars().take(12).chain(std::iter::once('…')).collect();
        let mut f = Finding {
            path: path.to_owned(),
            line,
            column,
            format,
            kid: None,
            jti: None,
            sub: None,
            env: None,
            exp: None,
            status: Status::Malformed,
            redacted,
        };
        let Ok(t) = decode_unverified(&text) else {
            return f;
        };
        f.kid = t.key_id().map(str::to_owned);
        f.jti = t.claim_str("jti").map(str::to_owned);
        f.sub = t.claim_str("sub").map(str::to_owned);
        f.env = t.claim_str("env").map(str::to_owned);
        f.exp = t.claim_str("exp").map(str::to_owned).or_else(|| {
            // A JWT's NumericDate, shown as RFC 3339 like PASETO's.
            let claims = t.claims().ok()?;
            let secs = claims.get("exp")?.as_i64()?;
            let at = time::OffsetDateTime::from_unix_timestamp(secs).ok()?;
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
        f.status = match &self.keys {
            None => Status::Unverified,
            Some(keys) => match f.kid.as_deref().and_then(|k| keys.get(k)) {
                None => Status::UnknownKey,
                Some(entry) => match t.check_signature_any_type(entry.key()) {
                    Err(_) => Status::BadSignature,
                    Ok(_) => {
                        let expired = f
                            .exp
                            .as_deref()
                            .and_then(parse_time)
                            .is_none_or(|exp| exp <= now());
                        if expired {
                            Status::Expired
                        } else {
                            Status::Valid
                        }
                    }
                },
            },
        };
        f
    }
}

fn now() -> i64 {
    use scopekey::Clock as _;
    ManualClock::now_utc().now().unix_timestamp()
}

fn parse_time(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

/// The result of scanning one input.
#[derive(Debug)]
pub enum ScanResult {
    /// Text, with the tokens found.
    Text(Vec<Finding>),
    /// Skipped: a NUL byte in the first 8 KiB.
    Binary,
}

/// Scans files and directories (recursively, respecting `.gitignore`, including hidden files
/// such as `.env`, never descending into `.git`).
///
/// # Errors
/// Never for unreadable entries: they are reported in the second list and skipped.
pub fn scan_paths(scanner: &Scanner, paths: &[PathBuf]) -> (Vec<Finding>, Vec<String>) {
    let mut findings = Vec::new();
    let mut problems = Vec::new();
    for root in paths {
        let walker = ignore::WalkBuilder::new(root)
            .hidden(false)
            .require_git(false)
            .filter_entry(|e| e.file_name() != ".git")
            .build();
        for entry in walker {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    problems.push(e.to_string());
                    continue;
                }
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            let path = entry.path();
            match scan_file(scanner, path) {
                Ok(ScanResult::Text(f)) => findings.extend(f),
                Ok(ScanResult::Binary) => {}
                Err(e) => problems.push(format!("{}: {e}", path.display())),
            }
        }
    }
    (findings, problems)
}

fn scan_file(scanner: &Scanner, path: &Path) -> std::io::Result<ScanResult> {
    let file = std::fs::File::open(path)?;
    scanner.scan_reader(&path.display().to_string(), file)
}

fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// The end of a token starting at `start`: base64url after the header, optionally one `.` and
/// a base64url footer, at most `MAX_TOKEN_LEN` bytes.
fn token_end(data: &[u8], start: usize) -> usize {
    let max = (start + MAX_TOKEN_LEN).min(data.len());
    let mut i = start + HEADER.len();
    while i < max && is_b64(data[i]) {
        i += 1;
    }
    if i + 1 < max && data[i] == b'.' && is_b64(data[i + 1]) {
        i += 1;
        while i < max && is_b64(data[i]) {
            i += 1;
        }
    }
    i
}

/// The end of a JWT starting at `start` (at `eyJ`): three dot-separated base64url runs whose
/// first decodes to a JSON object naming an `alg`; `None` if the text there is not one.
fn jwt_end(data: &[u8], start: usize) -> Option<usize> {
    let max = (start + MAX_TOKEN_LEN).min(data.len());
    let run = |mut i: usize| {
        let from = i;
        while i < max && is_b64(data[i]) {
            i += 1;
        }
        (i > from).then_some(i)
    };
    let header_end = run(start)?;
    if data.get(header_end) != Some(&b'.') {
        return None;
    }
    let payload_end = run(header_end + 1)?;
    if data.get(payload_end) != Some(&b'.') {
        return None;
    }
    let end = run(payload_end + 1)?;
    let header = std::str::from_utf8(&data[start..header_end]).ok()?;
    let header = base64_decode(header)?;
    let value: serde_json::Value = serde_json::from_slice(&header).ok()?;
    value.get("alg")?;
    Some(end)
}

/// Lenient base64url decoding (padding and stray trailing bits tolerated) for recognising a JWT
/// header: a leak is reported even when the token would be refused as non-canonical.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(text).ok()
}

/// Counts lines incrementally, so positions cost O(distance since the last one).
#[derive(Debug, Default)]
struct LineCounter {
    /// Offset of the buffer's first byte in the stream (for chunked reading).
    base: u64,
    /// Position in the current buffer up to which newlines are counted.
    counted_to: usize,
    /// Newlines before `counted_to`.
    lines: u64,
    /// Stream offset of the byte after the last newline before `counted_to`.
    line_start: u64,
}

impl LineCounter {
    fn count(&mut self, data: &[u8], to: usize) {
        if to <= self.counted_to {
            return;
        }
        for nl in memchr::memchr_iter(b'\n', &data[self.counted_to..to]) {
            self.lines += 1;
            self.line_start = self.base + (self.counted_to + nl + 1) as u64;
        }
        self.counted_to = to;
    }

    fn position(&mut self, data: &[u8], at: usize) -> (u64, u64) {
        self.count(data, at);
        let offset = self.base + at as u64;
        (self.lines + 1, offset - self.line_start + 1)
    }

    /// Counts up to `to` and rebases for a buffer whose first `to` bytes are dropped.
    fn advance_to(&mut self, data: &[u8], to: usize) {
        self.count(data, to);
        self.counted_to = 0;
    }
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_positions_across_chunk_boundaries() {
        let token = "v4.public.eyJhIjoxfQ.eyJraWQiOiJ4In0";
        let mut data = "x".repeat(CHUNK - 5).into_bytes();
        data.extend_from_slice(b"\nab ");
        data.extend_from_slice(token.as_bytes());
        data.extend_from_slice(b" cd\n");
        let s = Scanner::new(None);
        let ScanResult::Text(found) = s.scan_reader("f", &data[..]).unwrap() else {
            panic!("binary?")
        };
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].line, found[0].column), (2, 4));
        assert_eq!(found[0].redacted, "v4.public.ey…");
        let in_memory = s.scan_bytes("f", &data);
        assert_eq!((in_memory[0].line, in_memory[0].column), (2, 4));
    }

    #[test]
    fn finds_jwts_next_to_pasetos_in_order() {
        let header = base64_decode("eyJhbGciOiJFZERTQSJ9").unwrap();
        assert_eq!(header, br#"{"alg":"EdDSA"}"#);
        let jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let text = format!("a v4.public.abc\nAuthorization: Bearer {jwt}\n");
        let found = Scanner::new(None).scan_bytes("f", text.as_bytes());
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].format, "paseto-v4-public");
        assert_eq!(
            (found[1].format, found[1].line, found[1].column),
            ("jwt", 2, 23)
        );
        assert_eq!(found[1].redacted, "eyJhbGciOiJF…");
        // Base64 JSON that is not a JWT: no finding.
        for not_jwt in [
            "eyJzdWIiOiJ4In0",
            "eyJzdWIiOiJ4In0.eyJzdWIiOiJ4In0.c2ln",
            "x.eyJhbGciOiJFZERTQSJ9.eyJ9.c2ln",
        ] {
            let found = Scanner::new(None).scan_bytes("f", not_jwt.as_bytes());
            assert!(found.iter().all(|f| f.format != "jwt"), "{not_jwt}");
        }
    }

    #[test]
    fn ignores_headers_inside_identifiers_and_binary_files() {
        let s = Scanner::new(None);
        assert!(s.scan_bytes("f", b"xv4.public.abc").is_empty());
        assert_eq!(s.scan_bytes("f", b"\"v4.public.abc\"").len(), 1);
        let mut bin = vec![0u8; 10];
        bin.extend_from_slice(b"v4.public.abc");
        assert!(matches!(
            s.scan_reader("f", &bin[..]).unwrap(),
            ScanResult::Binary
        ));
    }
}
