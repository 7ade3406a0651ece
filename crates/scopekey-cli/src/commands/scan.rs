//! `scopekey scan`: find scopekey tokens in files, folders or standard input (the scanner itself
//! is [`crate::scan`]).

use crate::args::{JsonOutput, PublicKeys};
use crate::common::{Outcome, refused, usage};
use crate::scan::{ScanResult, Scanner, scan_paths};
use clap::Args;
use std::path::{Path, PathBuf};

/// `scopekey scan [--public-key FILE …] [--json] (PATH … | -)`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  scopekey scan --public-key keys/public.paserk .\n  git log -p | scopekey scan -"
)]
#[command(mut_arg("public_keys", |a| a.help(
    "Check found tokens against these public keys (PASERK k4.public files); repeat for more"
)))]
pub(crate) struct ScanArgs {
    #[command(flatten)]
    public_keys: PublicKeys,
    #[command(flatten)]
    output: JsonOutput,
    /// Files or folders to scan, or `-` for standard input.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

/// Scans and prints one line per token found; a finding is a refusal (exit 1).
pub(crate) fn exec(a: ScanArgs) -> Outcome {
    let scanner = Scanner::new(a.public_keys.key_set()?);
    let (findings, problems) = if a.paths.len() == 1 && a.paths[0] == Path::new("-") {
        match scanner.scan_reader("-", std::io::stdin().lock()) {
            Ok(ScanResult::Text(f)) => (f, Vec::new()),
            Ok(ScanResult::Binary) => (Vec::new(), Vec::new()),
            Err(e) => return Err(usage(format!("cannot read standard input: {e}"))),
        }
    } else {
        for p in &a.paths {
            if !p.exists() {
                return Err(usage(format!("{}: no such file or folder", p.display())));
            }
        }
        scan_paths(&scanner, &a.paths)
    };
    for p in &problems {
        eprintln!("scopekey: skipped {p}");
    }
    for f in &findings {
        if a.output.json {
            println!("{}", f.to_json());
        } else {
            println!("{}", f.to_line());
        }
    }
    if findings.is_empty() {
        Ok(())
    } else {
        Err(refused(format!(
            "{} token(s) found; revoke any that are real (`scopekey revoke --jti …`)",
            findings.len()
        )))
    }
}
