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
//! no source tree to use.

use std::path::PathBuf;
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

/// Whether `python` imports this SDK (not another package named `cocaine`) without help.
/// The current folder, which `-c` puts first on `sys.path`, is left out: workers run in
/// their app's folder, not in the node's.
fn installed(python: &str) -> bool {
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

    #[test]
    fn an_interpreter_that_cannot_run_is_not_an_installed_sdk() {
        assert!(!installed("/no/such/python"));
        assert_eq!(PythonSdk::Installed.path(), None);
    }
}
