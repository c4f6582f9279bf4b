//! Small copyable ids. Entities are owned in one place and referred to by these, never by
//! pointers, so the runtime and the core can name the same thing without sharing memory.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

id_type!(
    /// A worker, unique for the life of the node (never reused).
    WorkerId,
    "w"
);
id_type!(
    /// A socket the runtime owns for the core: a bound ZeroMQ socket or a TCP listener.
    EndpointId,
    "e"
);
id_type!(
    /// An app instance. A redeployed app gets a new one.
    AppId,
    "a"
);
