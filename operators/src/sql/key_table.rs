//! `KeyTable`: the map from a key (a 64-bit hash) to its slot that
//! [`super::WindowAggregate`] reads on every event.
//!
//! Written by hand rather than using `hashbrown::HashMap` for one reason: the aggregate starts
//! loading a key's bucket several events before it needs it (see the *Why prefetching* section
//! of `window_aggregate`), which needs the bucket's address from the key alone, and no map
//! crate exposes that. With 100,000 keys the table is a few MB that the panes keep pushing out
//! of the cache, so an unprefetched lookup is a trip to memory.
//!
//! Linear probing over `(key, slot)` pairs, at most half full, Fibonacci hashing of the key
//! (keys are usually xxh3 hashes already, but booleans are 0 and 1), deletion by backward
//! shift (no tombstones, so probes stay short however many keys are evicted).

/// Slot value of an empty bucket.
const EMPTY: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    key: u64,
    slot: u32,
}

const VACANT: Bucket = Bucket { key: 0, slot: EMPTY };

/// Map from key to slot. See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct KeyTable {
    /// A power of two buckets.
    buckets: Vec<Bucket>,
    len: usize,
    /// `64 - log2(buckets)`: the home bucket is the top bits of the multiplied key.
    shift: u32,
}

/// Asks the CPU to start loading the cache line at `p` (no effect where unsupported). The
/// engine uses it too, for the feature columns of the rows it will encode next.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults and never changes memory, whatever the
    // address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl KeyTable {
    /// An empty table.
    pub(crate) fn new() -> Self {
        Self::with_buckets(16)
    }

    fn with_buckets(n: usize) -> Self {
        debug_assert!(n.is_power_of_two());
        KeyTable { buckets: vec![VACANT; n], len: 0, shift: 64 - n.trailing_zeros() }
    }

    /// Keys held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    #[inline]
    fn mask(&self) -> usize {
        self.buckets.len() - 1
    }

    /// Starts loading `key`'s home bucket into the cache.
    #[inline]
    pub(crate) fn prefetch(&self, key: u64) {
        prefetch(&self.buckets[self.home(key)]);
    }

    /// The bucket holding `key`, or the empty bucket that ends its probe.
    #[inline]
    fn find(&self, key: u64) -> usize {
        let mask = self.mask();
        let mut i = self.home(key);
        loop {
            let b = self.buckets[i];
            if b.slot == EMPTY || b.key == key {
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    /// The slot of `key`.
    #[inline]
    pub(crate) fn get(&self, key: u64) -> Option<u32> {
        let b = self.buckets[self.find(key)];
        (b.slot != EMPTY).then_some(b.slot)
    }

    /// Maps `key` to `slot` (not [`u32::MAX`]); returns the slot it had.
    pub(crate) fn insert(&mut self, key: u64, slot: u32) -> Option<u32> {
        assert_ne!(slot, EMPTY, "slot {EMPTY} marks empty buckets");
        if 2 * (self.len + 1) > self.buckets.len() {
            self.grow();
        }
        let i = self.find(key);
        let old = self.buckets[i];
        self.buckets[i] = Bucket { key, slot };
        if old.slot == EMPTY {
            self.len += 1;
            None
        } else {
            Some(old.slot)
        }
    }

    /// Removes `key`; returns its slot.
    pub(crate) fn remove(&mut self, key: u64) -> Option<u32> {
        let mut hole = self.find(key);
        let removed = self.buckets[hole];
        if removed.slot == EMPTY {
            return None;
        }
        self.len -= 1;
        // Backward shift: move up every later entry of the cluster whose home is not in the
        // cyclic range (hole, j], so no probe ever meets a gap before its key.
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let b = self.buckets[j];
            if b.slot == EMPTY {
                break;
            }
            let home = self.home(b.key);
            let stays = if hole <= j { hole < home && home <= j } else { hole < home || home <= j };
            if !stays {
                self.buckets[hole] = b;
                hole = j;
            }
        }
        self.buckets[hole] = VACANT;
        Some(removed.slot)
    }

    fn grow(&mut self) {
        let old = std::mem::replace(self, Self::with_buckets(self.buckets.len() * 2));
        for b in old.buckets.into_iter().filter(|b| b.slot != EMPTY) {
            let i = self.find(b.key);
            self.buckets[i] = b;
            self.len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn colliding_keys_survive_removals_in_any_order() {
        // Six keys with the same home bucket (and, wrapping around, a cluster ending there).
        let mut t = KeyTable::new();
        let home = t.home(0) ^ 15;
        let keys: Vec<u64> = (1..).filter(|&k| t.home(k) == home).take(6).collect();
        for (s, &k) in keys.iter().enumerate() {
            assert_eq!(t.insert(k, s as u32), None);
        }
        assert_eq!(t.remove(keys[2]), Some(2));
        assert_eq!(t.remove(keys[0]), Some(0));
        for (s, &k) in keys.iter().enumerate().filter(|(s, _)| *s != 0 && *s != 2) {
            assert_eq!(t.get(k), Some(s as u32), "key {k:#x}");
        }
        assert_eq!(t.get(keys[2]), None);
        assert_eq!(t.len(), 4);
    }

    proptest! {
        #[test]
        fn behaves_like_a_hash_map(ops in prop::collection::vec((0u8..3, 0u64..64, 0u32..1000), 0..600)) {
            let mut t = KeyTable::new();
            let mut want: HashMap<u64, u32> = HashMap::new();
            for (op, k, s) in ops {
                // Spread keys over the whole range, some sharing a home bucket.
                let key = k.rotate_right(7) ^ (k % 4);
                match op {
                    0 => prop_assert_eq!(t.insert(key, s), want.insert(key, s)),
                    1 => prop_assert_eq!(t.remove(key), want.remove(&key)),
                    _ => prop_assert_eq!(t.get(key), want.get(&key).copied()),
                }
                prop_assert_eq!(t.len(), want.len());
            }
            for (k, s) in &want {
                prop_assert_eq!(t.get(*k), Some(*s));
            }
        }
    }
}
