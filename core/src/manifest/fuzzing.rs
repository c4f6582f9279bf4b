//! The check the `manifest` fuzz target runs, shared with `cargo test`'s corpus replay. For
//! fuzzing and tests only: it panics when the parser breaks its contract.

use super::Manifest;

/// Parses arbitrary bytes as a manifest: it must return, never panic; an error must carry
/// at least one problem and render; a success must parse the same way twice.
pub fn check_manifest(data: &[u8]) {
    match Manifest::parse("fuzz", data, None) {
        Ok(manifest) => {
            let again = Manifest::parse("fuzz", data, None).expect("the same bytes parse again");
            assert_eq!(manifest, again, "parsing is deterministic");
        }
        Err(e) => {
            assert!(
                !e.problems.is_empty(),
                "an error names at least one problem"
            );
            assert!(!e.to_string().is_empty());
        }
    }
}
