//! Why a control request was refused: each error names the key or frame at fault.

/// Longest piece of client input (a key, an action, a value) an error message repeats: errors
/// go into replies and logs, so they must not carry megabytes.
pub(crate) const MAX_ECHO: usize = 64;

/// `s` cut to [`MAX_ECHO`] characters, with `...` when it was cut.
pub(crate) fn shorten(s: &str) -> String {
    match s.char_indices().nth(MAX_ECHO) {
        Some((end, _)) => format!("{}...", &s[..end]),
        None => s.to_owned(),
    }
}

/// A control request that cannot be carried out as sent. [`ControlError::code`] is the reply
/// code (413 for [`ControlError::TooLarge`], 400 for everything else); the message is the
/// `Display` form. Text taken from the request is shortened and printed escaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// Nothing followed the empty delimiter frame.
    #[error("empty request: the JSON frame is missing")]
    NoFrames,
    /// A frame exceeds the node's message size limit.
    #[error("frame {index} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// The frame's position, 0 being the JSON frame.
        index: usize,
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The first frame is not JSON (or not UTF-8).
    #[error("request is not JSON: {0}")]
    NotJson(String),
    /// The JSON is not an object.
    #[error("request is not a JSON object: found {0}")]
    NotAnObject(&'static str),
    /// An object in the request has the same key twice.
    #[error("duplicate key {0:?}")]
    DuplicateKey(String),
    /// A key the request needs is absent.
    #[error("missing key `{0}`")]
    MissingKey(&'static str),
    /// `version` is not 1.
    #[error("unsupported version {0}; this node speaks version 1")]
    UnsupportedVersion(String),
    /// `action` names no action.
    #[error("unknown action {action:?}{hint}")]
    UnknownAction {
        /// The action sent (shortened).
        action: String,
        /// `; did you mean "x"?` or empty.
        hint: String,
    },
    /// A key that the action does not take.
    #[error("unknown key {key:?} for action `{action}`{hint}")]
    UnknownKey {
        /// The key sent (shortened).
        key: String,
        /// The action.
        action: &'static str,
        /// `; did you mean "x"?` or empty.
        hint: String,
    },
    /// A key holds a value of the wrong type.
    #[error("key `{key}`: expected {expected}, found {found}")]
    WrongType {
        /// The key.
        key: &'static str,
        /// What it should be, like `a string`.
        expected: &'static str,
        /// What it is, like `a number`.
        found: &'static str,
    },
    /// `app` is not a valid app name.
    #[error("key `app`: {0}")]
    BadAppName(String),
    /// A string argument is empty.
    #[error("key `{0}` must not be empty")]
    Empty(&'static str),
    /// `schedule` has both `at` and `after`.
    #[error("`at` and `after` are exclusive: give one")]
    AtAndAfter,
    /// `schedule` has neither `at` nor `after`.
    #[error("`schedule` needs `at` (unix ms) or `after` (ms)")]
    NeitherAtNorAfter,
    /// `scale` with neither `pool-min` nor `pool-limit`.
    #[error("`scale` needs `pool-min`, `pool-limit` or both")]
    NothingToScale,
    /// `body` is not valid base64.
    #[error("key `body` is not valid base64: {0}")]
    BadBase64(String),
    /// Some but not all of `user`, `ts` and `nonce` are present.
    #[error("a signed request needs `user`, `ts` and `nonce`: `{0}` is missing")]
    IncompleteSignature(&'static str),
    /// A signed request has no frame after the JSON for the signature.
    #[error("signed request without a signature frame")]
    MissingSignature,
    /// More frames than the action takes.
    #[error("action `{action}` takes {max} binary frame(s) after the JSON, got {got}")]
    UnexpectedFrames {
        /// The action.
        action: &'static str,
        /// Binary frames it takes (the signature frame not counted).
        max: usize,
        /// Binary frames sent (the signature frame not counted).
        got: usize,
    },
}

impl ControlError {
    /// The reply code: 413 for an oversized frame, 400 otherwise.
    pub fn code(&self) -> u32 {
        match self {
            ControlError::TooLarge { .. } => crate::status::TOO_LARGE,
            _ => crate::status::BAD_REQUEST,
        }
    }

    /// The reply message (the `Display` form).
    pub fn message(&self) -> String {
        self.to_string()
    }
}
