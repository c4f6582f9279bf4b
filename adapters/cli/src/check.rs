//! Checks the CLI makes on a manifest before a node sees it, beyond what the core's parser
//! (which never touches the disk) can say: the app's code must exist.

use std::path::Path;

use cocaine_core::manifest::{AppArgs, Manifest};

/// Why the manifest's code cannot run, if it cannot: `args: local:///srv/x does not exist`
/// (a relative `args` also shows the path it resolved to).
pub fn missing_code(manifest: &Manifest) -> Option<String> {
    if manifest.args.path.exists() {
        return None;
    }
    Some(format!("args: {} does not exist", shown(&manifest.args)))
}

/// Like [`missing_code`], for a manifest whose relative paths resolved inside `package`:
/// only those are checked, since an absolute path names a file on the node's machine, which
/// may not be this one.
pub fn missing_in_package(manifest: &Manifest, package: &Path) -> Option<String> {
    if !manifest.args.path.starts_with(package) {
        return None;
    }
    missing_code(manifest).map(|why| format!("{why} in the package {}", package.display()))
}

fn shown(args: &AppArgs) -> String {
    let written = args.raw.trim_start_matches("local://");
    if Path::new(written).is_absolute() {
        args.raw.clone()
    } else {
        format!("{} ({})", args.raw, args.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(args: &str, base: &Path) -> Manifest {
        let json = serde_json::json!({
            "type": "binary",
            "args": args,
            "tasks": {"t": {"type": "manual-scheduler"}}
        });
        Manifest::parse("app", json.to_string().as_bytes(), Some(base)).unwrap()
    }

    #[test]
    fn missing_code_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("worker"), "").unwrap();
        assert_eq!(missing_code(&manifest("local://worker", dir.path())), None);
        assert_eq!(
            missing_code(&manifest(
                "local:///path/to/application/__init__.py",
                dir.path()
            )),
            Some("args: local:///path/to/application/__init__.py does not exist".into())
        );
        assert_eq!(
            missing_code(&manifest("local://app.py", dir.path())),
            Some(format!(
                "args: local://app.py ({}) does not exist",
                dir.path().join("app.py").display()
            ))
        );
    }

    #[test]
    fn a_package_answers_only_for_its_own_paths() {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest("local://app.py", dir.path());
        let why = missing_in_package(&m, dir.path()).unwrap();
        assert!(
            why.ends_with(&format!("in the package {}", dir.path().display())),
            "{why}"
        );
        let elsewhere = manifest("local:///srv/on/the/node", dir.path());
        assert_eq!(missing_in_package(&elsewhere, dir.path()), None);
    }
}
