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

/// A worker, unique for the life of the node (never reused). The high half is its app's
/// [`AppId`], the low half a counter within the app, so the node finds a worker's app
/// without a lookup table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkerId(pub u64);

impl WorkerId {
    pub fn new(app: AppId, seq: u32) -> Self {
        WorkerId((app.0 << 32) | u64::from(seq))
    }

    pub fn app(self) -> AppId {
        AppId(self.0 >> 32)
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "w{}.{}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}
/// A filesystem watch the node asks a runtime for (`Output::WatchPath`): one per
/// filesystem-monitor task of one app version. The high half is the app's [`AppId`], the low
/// half the task's index, so events find their task without a lookup table; a redeployed app
/// (a new `AppId`) watches under new ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WatchId(pub u64);

impl WatchId {
    pub fn new(app: AppId, task: usize) -> Self {
        WatchId((app.0 << 32) | (task as u64 & 0xffff_ffff))
    }

    pub fn app(self) -> AppId {
        AppId(self.0 >> 32)
    }

    pub fn task(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }
}

impl fmt::Display for WatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "f{}.{}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

id_type!(
    /// A socket the runtime owns for the core: a bound ZeroMQ socket or a TCP listener.
    EndpointId,
    "e"
);
id_type!(
    /// A TCP connection a runtime accepted on a raw-server endpoint, unique for the life of
    /// the node (never reused).
    ConnId,
    "c"
);
id_type!(
    /// An app instance. A redeployed app gets a new one.
    AppId,
    "a"
);

/// A hasher for maps keyed by our ids: they are already unique small integers, so a
/// multiply-and-rotate (FxHash's) spreads them well at a fraction of SipHash's cost, and with
/// no random seed the maps behave the same in every run.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    // An enum's derived `Hash` writes its discriminant as an `isize`; without these it would
    // go through `write`, a round per byte.
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }

    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }

    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }
}

/// `HashMap` keyed by an id, with [`IdHasher`].
pub type IdMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;
