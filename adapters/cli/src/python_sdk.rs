//! Which copy of the Python worker SDK (the `cocaine` package) Python workers run.
//!
//! The rule, first match wins:
//! 1. `--python-path DIR` or `$COCAINE_PYTHON_PATH`: that folder, put on the workers'
//!    `PYTHONPATH`;
//! 2. with an interpreter chosen by `--python` (a virtualenv's, say): the SDK installed for it
//!    (`pip install ./adapters/python`), when it can import it on its own; the node then adds
//!    nothing to `PYTHONPATH`;
//! 3. `adapters/python` of the source tree holding this binary (a `cargo build` checkout);
//! 4. the SDK installed for the default `python3`;
//! 5. nothing: the worker's `ModuleNotFoundError` says what is missing.
//!
//! Asking an interpreter costs one run of it (about 100 ms, more through a pyenv shim), which
//! would delay every node's first reply; so the default interpreter is asked only when there is
//! no source tree to use, and a virtualenv's interpreter is not run at all when its folder
//! answers the question (see [`venv_answer`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the workers' `cocaine` package comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PythonSdk {
    /// Given with `--python-path` or `$COCAINE_PYTHON_PATH`.
    Given(PathBuf),
    /// Importable by the interpreter without help.
    Installed,
    /// The source tree's `adapters/python`.
    SourceTree(PathBuf),
    /// Found nowhere.
    Missing,
}

impl PythonSdk {
    /// Finds the SDK for `python` by the rule above; `chosen` says whether `--python` named
    /// an interpreter rather than leaving the default.
    pub fn find(python: &str, chosen: bool, given: Option<PathBuf>) -> Self {
        if let Some(path) =
            given.or_else(|| std::env::var_os("COCAINE_PYTHON_PATH").map(Into::into))
        {
            return Self::Given(path);
        }
        if chosen && installed(python) {
            return Self::Installed;
        }
        if let Some(tree) = source_tree() {
            return Self::SourceTree(tree);
        }
        if !chosen && installed(python) {
            return Self::Installed;
        }
        Self::Missing
    }

    /// The folder to put on the workers' `PYTHONPATH`, if any.
    pub fn path(&self) -> Option<PathBuf> {
        match self {
            Self::Given(path) | Self::SourceTree(path) => Some(path.clone()),
            Self::Installed | Self::Missing => None,
        }
    }

    /// One line for the node's log.
    pub fn describe(&self, python: &str) -> String {
        match self {
            Self::Given(path) => format!("python SDK: {} (given)", path.display()),
            Self::Installed => format!("python SDK: the one installed for {python}"),
            Self::SourceTree(path) => format!("python SDK: {} (source tree)", path.display()),
            Self::Missing => format!(
                "python SDK: not found (neither installed for {python} nor in a source tree); \
                 python apps will fail to start"
            ),
        }
    }
}

/// Whether `python` imports this SDK (not another package named `cocaine`) without help:
/// from its virtualenv's folder when that is enough to know, else by asking it.
fn installed(python: &str) -> bool {
    venv_answer(python).unwrap_or_else(|| asks_yes(python))
}

/// What a virtualenv's layout says without running its interpreter: `Some(true)` when its
/// `site-packages` holds the SDK, `Some(false)` when it cannot import it (no SDK there, no
/// system site-packages, no `.pth` file that could add one, no `PYTHONPATH`), `None` when only
/// the interpreter can tell (not a virtualenv, a bare command name, or any doubt).
fn venv_answer(python: &str) -> Option<bool> {
    if !python.contains('/') {
        return None;
    }
    let root = Path::new(python).parent()?.parent()?;
    let config = std::fs::read_to_string(root.join("pyvenv.cfg")).ok()?;
    let mut sites = std::fs::read_dir(root.join("lib"))
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path().join("site-packages")))
        .filter(|site| site.is_dir());
    let site = sites.next()?;
    if sites.next().is_some() {
        return None; // several Python versions in one virtualenv: let the interpreter say
    }
    if site.join("cocaine/worker.py").is_file() && site.join("cocaine/__init__.py").is_file() {
        return Some(true);
    }
    let isolated = config.lines().any(|line| {
        line.split_once('=').is_some_and(|(key, value)| {
            key.trim() == "include-system-site-packages" && value.trim() == "false"
        })
    });
    let pythonpath = std::env::var_os("PYTHONPATH").is_some_and(|v| !v.is_empty());
    if !isolated || pythonpath || pth_may_add_sdk(&site) {
        return None;
    }
    Some(false)
}

/// Whether a `.pth` file in `site` might put an SDK on the path (an editable install, or
/// any line naming `cocaine`).
fn pth_may_add_sdk(site: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(site) else {
        return true;
    };
    entries.filter_map(Result::ok).any(|entry| {
        let path = entry.path();
        path.extension().is_some_and(|ext| ext == "pth")
            && std::fs::read_to_string(&path).map_or(true, |text| {
                text.contains("cocaine") || text.contains("__editable__")
            })
    })
}

/// Runs `python` to ask. The current folder, which `-c` puts first on `sys.path`, is left
/// out: workers run in their app's folder, not in the node's.
fn asks_yes(python: &str) -> bool {
    const PROBE: &str = "import sys; del sys.path[0]; import importlib.util as u; import cocaine; \
                         sys.exit(0 if hasattr(cocaine, 'App') and u.find_spec('cocaine.worker') \
                         else 1)";
    Command::new(python)
        .args(["-c", PROBE])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// `adapters/python` in a source tree that holds this binary.
fn source_tree() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .map(|dir| dir.join("adapters/python"))
        .find(|candidate| candidate.join("cocaine/__init__.py").is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_folder_wins_and_goes_on_the_path() {
        let sdk = PythonSdk::find("/no/such/python", true, Some(PathBuf::from("/opt/sdk")));
        assert_eq!(sdk, PythonSdk::Given(PathBuf::from("/opt/sdk")));
        assert_eq!(sdk.path(), Some(PathBuf::from("/opt/sdk")));
    }

    /// A virtualenv's folder, with `files` ({relative path: text}) in it; the interpreter
    /// path does not exist, so an answer can only come from the folder.
    fn venv(files: &[(&str, &str)]) -> (tempfile::TempDir, String) {
        let dir = tempfile::Builder::new()
            .prefix("cocaine-venv-test-")
            .tempdir()
            .unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let python = dir.path().join("bin/python").display().to_string();
        (dir, python)
    }

    const ISOLATED: (&str, &str) = (
        "pyvenv.cfg",
        "home = /usr/bin\ninclude-system-site-packages = false\n",
    );
    const SITE: &str = "lib/python3.11/site-packages";

    #[test]
    fn a_virtualenv_folder_answers_without_running_its_interpreter() {
        let with_sdk = format!("{SITE}/cocaine/worker.py");
        let init = format!("{SITE}/cocaine/__init__.py");
        let (_dir, python) = venv(&[ISOLATED, (&with_sdk, ""), (&init, "")]);
        assert_eq!(venv_answer(&python), Some(true));
        // `installed` would run the interpreter otherwise, which does not exist here.
        assert!(installed(&python));

        let other = format!("{SITE}/distutils-precedence.pth");
        let (_dir, python) = venv(&[ISOLATED, (&other, "import os")]);
        if std::env::var_os("PYTHONPATH").is_none_or(|v| v.is_empty()) {
            assert_eq!(venv_answer(&python), Some(false));
        }
    }

    #[test]
    fn any_doubt_leaves_the_question_to_the_interpreter() {
        let editable = format!("{SITE}/__editable__.cocaine_worker-0.2.0.pth");
        let named = format!("{SITE}/sdk.pth");
        let shared = ("pyvenv.cfg", "include-system-site-packages = true\n");
        let two = "lib/python3.12/site-packages/x.py";
        for files in [
            vec![ISOLATED, (editable.as_str(), "import __editable___finder")],
            vec![ISOLATED, (named.as_str(), "/src/cocaine-sdk")],
            vec![shared, (named.as_str(), "")],
            vec![ISOLATED, (named.as_str(), ""), (two, "")],
            vec![(named.as_str(), "")],
        ] {
            let (_dir, python) = venv(&files);
            assert_eq!(venv_answer(&python), None, "{files:?}");
        }
        assert_eq!(venv_answer("python3"), None);
    }

    #[test]
    fn an_interpreter_that_cannot_run_is_not_an_installed_sdk() {
        assert!(!installed("/no/such/python"));
        assert_eq!(PythonSdk::Installed.path(), None);
    }
}
