//! What a failed parse reports: every problem found, each with the key path it is about.

use std::fmt;

/// One thing wrong with a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path from the root, like `tasks.event.endpoint`; empty for the whole document
    /// (invalid JSON, a root that is not an object).
    pub path: String,
    /// What is wrong there, like `expected a string, found 5`.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// A manifest that cannot be used, with all its problems (never only the first), so an operator
/// fixes them in one go.
///
/// Displays one line per problem: `app "echo": tasks.event.endpoint: expected a string, found 5`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    /// The app the manifest was given for.
    pub app: String,
    /// Every problem found, in a deterministic order; never empty.
    pub problems: Vec<Problem>,
}

impl ManifestError {
    /// Whether some problem is at exactly `path` and its message contains `needle`; handy in
    /// tests and in tools that highlight a key.
    pub fn has(&self, path: &str, needle: &str) -> bool {
        self.problems
            .iter()
            .any(|p| p.path == path && p.message.contains(needle))
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "app {:?}: {problem}", self.app)?;
        }
        Ok(())
    }
}

/// Collects problems while the whole manifest is walked; parsing goes on after a problem so
/// that all of them are reported together.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    list: Vec<Problem>,
}

impl Problems {
    /// Records a problem at `path`.
    pub(crate) fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.list.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// How many problems so far; a section compares it before and after itself.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// Turns what was collected into the error for `app`.
    pub(crate) fn into_error(self, app: &str) -> ManifestError {
        ManifestError {
            app: app.to_owned(),
            problems: self.list,
        }
    }
}
