//! The `scopekey` binary. See `scopekey --help` and `docs/cli.md`.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(scopekey_cli::run(std::env::args_os()))
}
