//! Whether the code a deployed manifest names is there, checked by the store thread before
//! anything is written: inside the package (a tar archive) for a relative `args`, on this
//! machine for an absolute one. The core cannot look (it does no IO), and a client other than
//! the CLI may send a deploy the CLI would have refused.

use std::path::{Component, Path, PathBuf};

use cocaine_core::manifest::Manifest;

/// What relative paths resolve against while checking: never a real folder.
const PACKAGE_ROOT: &str = "/.cocaine-package";

/// Why app `app`'s code cannot run, if it cannot: `args: local://nope.py does not exist in
/// the package`. A manifest that does not parse, or a package that is not a readable archive,
/// is left to the node and the store to report.
pub fn missing_code(app: &str, manifest_json: &[u8], package: Option<&[u8]>) -> Option<String> {
    let root = Path::new(PACKAGE_ROOT);
    let manifest = Manifest::parse(app, manifest_json, package.map(|_| root)).ok()?;
    let raw = &manifest.args.raw;
    match (manifest.args.path.strip_prefix(root), package) {
        (Ok(inside), Some(archive)) => match in_archive(archive, inside) {
            Some(false) => Some(format!("args: {raw} does not exist in the package")),
            _ => None,
        },
        _ if manifest.args.path.exists() => None,
        _ => Some(format!("args: {raw} does not exist on the node")),
    }
}

/// Whether `path` (relative) is a file or a folder of `archive`; `None` if it is not an
/// archive that can be read.
fn in_archive(archive: &[u8], path: &Path) -> Option<bool> {
    let wanted = plain(path);
    let mut ar = tar::Archive::new(archive);
    for entry in ar.entries().ok()? {
        let entry = entry.ok()?;
        let name = plain(&entry.path().ok()?);
        // A folder's entry, or any entry below it, says the folder is there.
        if name.starts_with(&wanted) {
            return Some(true);
        }
    }
    Some(false)
}

/// A relative path with only its normal components (`./a/b/` is `a/b`).
fn plain(path: &Path) -> PathBuf {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(args: &str) -> Vec<u8> {
        serde_json::json!({"type": "python", "args": args,
            "tasks": {"t": {"type": "manual-scheduler"}}})
        .to_string()
        .into_bytes()
    }

    fn archive(files: &[&str]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for name in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(1);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, &b"x"[..]).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn relative_code_must_be_in_the_package() {
        let package = archive(&["./apps/echo.py", "lib/pkg/__init__.py"]);
        let check = |args: &str| missing_code("a", &manifest(args), Some(&package));
        assert_eq!(check("local://apps/echo.py"), None);
        assert_eq!(check("local://./apps/../apps/echo.py"), None);
        assert_eq!(check("local://lib/pkg"), None, "a folder");
        assert_eq!(
            check("local://nope.py"),
            Some("args: local://nope.py does not exist in the package".into())
        );
        assert_eq!(
            missing_code("a", &manifest("local://x.py"), Some(b"not a tar at all")),
            None,
            "the store reports a bad archive"
        );
    }

    #[test]
    fn absolute_code_must_be_on_this_machine() {
        let dir = tempfile::tempdir().unwrap();
        let here = dir.path().join("app.py");
        std::fs::write(&here, "").unwrap();
        let args = format!("local://{}", here.display());
        assert_eq!(missing_code("a", &manifest(&args), None), None);
        let gone = "local:///path/to/application/__init__.py";
        assert_eq!(
            missing_code("a", &manifest(gone), None),
            Some(format!("args: {gone} does not exist on the node"))
        );
        assert_eq!(missing_code("a", b"{", None), None, "the node reports it");
    }
}
