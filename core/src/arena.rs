//! A generational slab: entities live in one `Vec`, are named by a [`Key`] that carries the
//! slot and its generation, and a key to a freed slot never reaches the slot's next tenant.
//! This is how the engine can hand a job's key to a worker as its `sid` and safely drop late
//! replies for a job that already ended.
//!
//! Slots live in fixed-size pages rather than one growing `Vec`, so the arena never holds
//! more than one page of slack: a doubling `Vec` would cost up to twice each entry's size,
//! and a queued job's size is what the engine's memory per job is measured by.

/// Names one entry of an [`Arena`]; stale once that entry is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(u64);

impl Key {
    fn new(index: u32, generation: u32) -> Self {
        Key((u64::from(generation) << 32) | u64::from(index))
    }

    fn index(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }

    fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The key as a wire id (a job's `sid` on the worker channel).
    pub fn to_u64(self) -> u64 {
        self.0
    }

    /// The key named by a wire id; it may be stale or never have existed.
    pub fn from_u64(raw: u64) -> Self {
        Key(raw)
    }
}

#[derive(Debug)]
enum Slot<T> {
    Occupied {
        generation: u32,
        value: T,
    },
    Vacant {
        generation: u32,
        next_free: Option<u32>,
    },
}

/// Slots per page.
const PAGE: usize = 256;

/// A generational slab of `T`.
#[derive(Debug)]
pub struct Arena<T> {
    pages: Vec<Vec<Slot<T>>>,
    free_head: Option<u32>,
    len: usize,
}

impl<T> Default for Arena<T> {
    fn default() -> Self {
        Self {
            pages: Vec::new(),
            free_head: None,
            len: 0,
        }
    }
}

impl<T> Arena<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn insert(&mut self, value: T) -> Key {
        self.len += 1;
        if let Some(index) = self.free_head {
            let index_usize = index as usize;
            let slot = self.pages[index_usize / PAGE]
                .get_mut(index_usize % PAGE)
                .expect("free list points at a slot");
            let (generation, next_free) = match *slot {
                Slot::Vacant {
                    generation,
                    next_free,
                } => (generation, next_free),
                Slot::Occupied { .. } => unreachable!("free list points at an occupied slot"),
            };
            self.free_head = next_free;
            *slot = Slot::Occupied { generation, value };
            return Key::new(index, generation);
        }
        let used = self.pages.last().map_or(PAGE, Vec::len);
        if used == PAGE {
            self.pages.push(Vec::with_capacity(PAGE));
        }
        let index = (self.pages.len() - 1) * PAGE + self.pages.last().map_or(0, Vec::len);
        let index = u32::try_from(index).expect("more than 2^32 live entries");
        if let Some(page) = self.pages.last_mut() {
            page.push(Slot::Occupied {
                generation: 0,
                value,
            });
        }
        Key::new(index, 0)
    }

    pub fn get(&self, key: Key) -> Option<&T> {
        match self.slot(key.index())? {
            Slot::Occupied { generation, value } if *generation == key.generation() => Some(value),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        match self.slot_mut(key.index())? {
            Slot::Occupied { generation, value } if *generation == key.generation() => Some(value),
            _ => None,
        }
    }

    pub fn contains(&self, key: Key) -> bool {
        self.get(key).is_some()
    }

    pub fn remove(&mut self, key: Key) -> Option<T> {
        let index = key.index();
        let slot = self.pages.get_mut(index / PAGE)?.get_mut(index % PAGE)?;
        match slot {
            Slot::Occupied { generation, .. } if *generation == key.generation() => {}
            _ => return None,
        }
        // A generation that would wrap retires its slot for good rather than risk a stale key
        // matching again.
        let next_generation = key.generation().checked_add(1);
        let vacant = Slot::Vacant {
            generation: next_generation.unwrap_or(u32::MAX),
            next_free: self.free_head,
        };
        let old = std::mem::replace(slot, vacant);
        if next_generation.is_some() {
            self.free_head = Some(index as u32);
        } else if let Slot::Vacant { next_free, .. } = slot {
            *next_free = None;
        }
        self.len -= 1;
        match old {
            Slot::Occupied { value, .. } => Some(value),
            Slot::Vacant { .. } => unreachable!("checked above"),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (Key, &T)> {
        self.pages
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, slot)| match slot {
                Slot::Occupied { generation, value } => {
                    Some((Key::new(i as u32, *generation), value))
                }
                Slot::Vacant { .. } => None,
            })
    }

    fn slot(&self, index: usize) -> Option<&Slot<T>> {
        self.pages.get(index / PAGE)?.get(index % PAGE)
    }

    fn slot_mut(&mut self, index: usize) -> Option<&mut Slot<T>> {
        self.pages.get_mut(index / PAGE)?.get_mut(index % PAGE)
    }

    pub fn keys(&self) -> Vec<Key> {
        self.iter().map(|(k, _)| k).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_keys_miss_the_new_tenant() {
        let mut arena = Arena::new();
        let a = arena.insert("a");
        assert_eq!(arena.remove(a), Some("a"));
        let b = arena.insert("b");
        assert_eq!(a.index(), b.index(), "the slot is reused");
        assert_eq!(arena.get(a), None);
        assert_eq!(arena.remove(a), None);
        assert_eq!(arena.get(b), Some(&"b"));
        assert_eq!(arena.len(), 1);
    }

    #[test]
    fn keys_survive_the_wire() {
        let mut arena = Arena::new();
        let k = arena.insert(7);
        assert_eq!(arena.get(Key::from_u64(k.to_u64())), Some(&7));
        assert_eq!(arena.get(Key::from_u64(u64::MAX)), None);
    }

    #[test]
    fn pages_fill_before_new_ones_start() {
        let mut arena = Arena::new();
        let keys: Vec<_> = (0..PAGE * 2 + 1).map(|i| arena.insert(i)).collect();
        assert_eq!(arena.pages.len(), 3);
        assert!(arena.pages.iter().all(|p| p.capacity() == PAGE));
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(arena.get(*k), Some(&i));
        }
        assert_eq!(arena.iter().count(), PAGE * 2 + 1);
    }

    #[test]
    fn iteration_sees_live_entries_only() {
        let mut arena = Arena::new();
        let keys: Vec<_> = (0..5).map(|i| arena.insert(i)).collect();
        arena.remove(keys[1]);
        arena.remove(keys[3]);
        let live: Vec<_> = arena.iter().map(|(_, v)| *v).collect();
        assert_eq!(live, vec![0, 2, 4]);
    }
}
