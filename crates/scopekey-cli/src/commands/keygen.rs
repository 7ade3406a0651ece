//! `scopekey keygen`: generate a signing key pair into a folder.

use crate::common::{Outcome, usage};
use clap::Args;
use scopekey::SigningKey;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// `scopekey keygen --out DIR [--force]`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  scopekey keygen --out ./keys")]
pub(crate) struct KeygenArgs {
    /// Folder to write the keys to (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Overwrite existing key files.
    #[arg(long)]
    force: bool,
}

/// Writes `DIR/secret.paserk` (mode 0600) and `DIR/public.paserk`; prints the key id.
pub(crate) fn exec(a: KeygenArgs) -> Outcome {
    let out = &a.out;
    let secret_path = out.join("secret.paserk");
    let public_path = out.join("public.paserk");
    if !a.force && (secret_path.exists() || public_path.exists()) {
        return Err(usage(format!(
            "{} already holds keys; pass --force to overwrite them",
            out.display()
        )));
    }
    std::fs::create_dir_all(out)
        .map_err(|e| usage(format!("cannot create {}: {e}", out.display())))?;
    let key = SigningKey::generate().map_err(|e| usage(e.to_string()))?;
    write_secret(&secret_path, key.to_paserk().as_bytes())?;
    std::fs::write(&public_path, format!("{}\n", key.public_key().to_paserk()))
        .map_err(|e| usage(format!("cannot write {}: {e}", public_path.display())))?;
    println!("{}", key.key_id());
    Ok(())
}

fn write_secret(path: &Path, bytes: &[u8]) -> Outcome {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| usage(format!("cannot write {}: {e}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        // An existing file keeps its mode on open: set it explicitly.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| usage(format!("cannot restrict {}: {e}", path.display())))?;
    }
    file.write_all(bytes)
        .and_then(|()| file.write_all(b"\n"))
        .map_err(|e| usage(format!("cannot write {}: {e}", path.display())))
}
