//! Which sequence numbers a session has seen: the newest, and a bitmap of the 128 before it
//! (the anti-replay window of IPsec, RFC 4303 §3.4.3). A number is accepted once; one more
//! than [`WINDOW`] behind the newest is refused, since the window no longer knows whether it
//! was seen. Out-of-order arrival within the window is fine, so a client may share a session
//! between connections or threads whose requests overtake each other a little.

/// How far behind the newest a sequence number may still arrive.
pub const WINDOW: u64 = 128;

/// Why a sequence number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqRefusal {
    /// 0: sequence numbers start at 1.
    Zero,
    /// Already seen.
    Seen,
    /// More than [`WINDOW`] behind the newest.
    TooOld { newest: u64 },
}

/// The newest number seen and a bitmap: bit `i` set means `newest - i` was seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqWindow {
    newest: u64,
    seen: u128,
}

impl SeqWindow {
    /// Accepts `seq` once (and remembers it) or says why not; a refusal changes nothing.
    pub fn admit(&mut self, seq: u64) -> Result<(), SeqRefusal> {
        if seq == 0 {
            return Err(SeqRefusal::Zero);
        }
        if seq > self.newest {
            let shift = seq - self.newest;
            self.seen = if shift >= WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.newest = seq;
            return Ok(());
        }
        let behind = self.newest - seq;
        if behind >= WINDOW {
            return Err(SeqRefusal::TooOld {
                newest: self.newest,
            });
        }
        let bit = 1u128 << behind;
        if self.seen & bit != 0 {
            return Err(SeqRefusal::Seen);
        }
        self.seen |= bit;
        Ok(())
    }

    /// The newest sequence number accepted (0 before the first).
    pub fn newest(&self) -> u64 {
        self.newest
    }
}
