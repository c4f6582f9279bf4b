//! `cocaine keygen NAME`: a new RSA key pair for a user (or a node), written as `NAME.key`
//! (the private key, PKCS#8 PEM, mode 0600) and `NAME.pem` (the public key, for a node's key
//! folder). Made by OpenSSL (docs/security.md: which library does what).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use cocaine_keys::files::write_pair;
use cocaine_keys::{PrivateKey, DEFAULT_BITS};

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The user's name: the files are NAME.key and NAME.pem, and NAME is what --user says.
    name: String,
    /// The key size in bits (2048 to 4096).
    #[arg(long, default_value_t = DEFAULT_BITS)]
    bits: u32,
    /// The folder to write the two files in.
    #[arg(long, value_name = "DIR", default_value = ".")]
    out: PathBuf,
}

pub fn run(args: &KeygenArgs) -> ExitCode {
    match keygen(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cocaine keygen: {message}");
            ExitCode::from(2)
        }
    }
}

fn keygen(args: &KeygenArgs) -> Result<(), String> {
    cocaine_core::auth::check_user_name(&args.name).map_err(|e| e.to_string())?;
    let key = PrivateKey::generate(args.bits).map_err(|e| e.to_string())?;
    let (private, public) = write_pair(&args.out, &args.name, &key).map_err(|e| e.to_string())?;
    let fingerprint = key.fingerprint().map_err(|e| e.to_string())?;
    println!("private key: {} (keep it; mode 0600)", private.display());
    println!(
        "public key:  {} (copy it into the node's key folder)",
        public.display()
    );
    println!("fingerprint: {fingerprint}");
    Ok(())
}
