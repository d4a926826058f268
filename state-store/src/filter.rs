//! A filter of the keys a backend tree may hold, so that a lookup of a key it cannot hold
//! does not reach the backend (RocksDB's Bloom filters, which Kafka Streams configures).
//!
//! A store keeps one for a tree it found empty: every key it writes there since is added
//! first, so a key the filter has never seen is not in the tree. Without it, a window store
//! asks sled for the old aggregate of every new window (W2: 100,000 misses, ≈ 1 µs each, and
//! each one waits while the apply worker holds sled's write lock).
//!
//! It is a Bloom filter that grows in stages: each stage holds four times the keys of the
//! one before at 16 bits per key, a key's bits all in one cache line of the stage (0.1–0.2 %
//! false positives each; a false positive is a lookup that waits on sled's lock while an
//! apply writes), and a key is added to the newest unless the filter already answers
//! "maybe" for it (a key written at every commit counts once). Past [`MAX_BITS`] it stops
//! growing and answers "maybe" for every key, so its memory stays bounded; a false "maybe"
//! only costs the lookup it would have made.

use std::hash::BuildHasher;

/// Keys the first stage holds.
const FIRST_STAGE_KEYS: usize = 4096;
/// Bits per key of a stage.
const BITS_PER_KEY: usize = 16;
/// Bits set and tested per key, all in one block of [`BLOCK_BITS`].
const PROBES: u64 = 8;
/// Bits of a block: a cache line, so a key's probes cost one miss, not one each.
const BLOCK_BITS: u64 = 512;
/// The most bits a filter takes (4 MiB); past it, every key may be present.
const MAX_BITS: usize = 32 << 20;

/// One stage: a blocked Bloom filter for up to `capacity` keys.
#[derive(Debug)]
struct Stage {
    blocks: Vec<[u64; 8]>,
    capacity: usize,
    len: usize,
}

impl Stage {
    fn new(capacity: usize) -> Stage {
        let blocks = (capacity * BITS_PER_KEY)
            .div_ceil(BLOCK_BITS as usize)
            .max(1);
        Stage {
            blocks: vec![[0; 8]; blocks],
            capacity,
            len: 0,
        }
    }

    fn bit_count(&self) -> usize {
        self.blocks.len() * BLOCK_BITS as usize
    }

    /// The block of hash `h` and its probed bits (word, mask): the block from the hash's
    /// high half, the bits by double hashing within it from its low half.
    fn probes(&self, h: u64) -> (usize, impl Iterator<Item = (usize, u64)>) {
        let block = ((h >> 32) % self.blocks.len() as u64) as usize;
        let (h1, h2) = (h & 0xffff, ((h >> 16) & 0xffff) | 1);
        let bits = (0..PROBES).map(move |i| {
            let bit = h1.wrapping_add(i.wrapping_mul(h2)) % BLOCK_BITS;
            ((bit / 64) as usize, 1u64 << (bit % 64))
        });
        (block, bits)
    }

    fn insert(&mut self, h: u64) {
        let (block, bits) = self.probes(h);
        let words = &mut self.blocks[block];
        for (word, mask) in bits {
            words[word] |= mask;
        }
        self.len += 1;
    }

    fn may_contain(&self, h: u64) -> bool {
        let (block, mut bits) = self.probes(h);
        let words = &self.blocks[block];
        bits.all(|(word, mask)| words[word] & mask != 0)
    }
}

/// The keys written to a tree since it was empty (see the module docs).
#[derive(Debug)]
pub(crate) struct KeyFilter {
    hasher: foldhash::fast::FixedState,
    stages: Vec<Stage>,
    /// Past [`MAX_BITS`]: no longer kept, every key may be present.
    full: bool,
}

impl Default for KeyFilter {
    fn default() -> Self {
        KeyFilter {
            hasher: foldhash::fast::FixedState::with_seed(0x5eed_f11e),
            stages: vec![Stage::new(FIRST_STAGE_KEYS)],
            full: false,
        }
    }
}

impl KeyFilter {
    /// Notes that `key` may be in the tree from now on.
    pub(crate) fn insert(&mut self, key: &[u8]) {
        if self.full {
            return;
        }
        let h = self.hasher.hash_one(key);
        // Bits are only ever set: a key the filter may hold now, it may hold for good.
        if self.stages.iter().any(|s| s.may_contain(h)) {
            return;
        }
        let Some(last) = self.stages.last() else {
            return;
        };
        if last.len >= last.capacity {
            let next = last.capacity * 4;
            let total: usize = self.stages.iter().map(Stage::bit_count).sum();
            if total + next * BITS_PER_KEY > MAX_BITS {
                self.full = true;
                self.stages = Vec::new();
                return;
            }
            self.stages.push(Stage::new(next));
        }
        if let Some(stage) = self.stages.last_mut() {
            stage.insert(h);
        }
    }

    /// False only if `key` was never inserted.
    pub(crate) fn may_contain(&self, key: &[u8]) -> bool {
        if self.full {
            return true;
        }
        let h = self.hasher.hash_one(key);
        self.stages.iter().any(|s| s.may_contain(h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_inserted_key_may_be_present_and_few_others_are() {
        let mut f = KeyFilter::default();
        let n = 200_000u32;
        for k in 0..n {
            f.insert(&k.to_be_bytes());
        }
        assert!(f.stages.len() > 1, "the filter grew past its first stage");
        assert!((0..n).all(|k| f.may_contain(&k.to_be_bytes())));
        let false_positives = (n..2 * n)
            .filter(|k| f.may_contain(&k.to_be_bytes()))
            .count();
        // About 0.1–0.2 % per full stage, four stages here (0.6 % measured).
        assert!(
            false_positives < n as usize / 100,
            "{false_positives} false positives of {n}"
        );
    }

    #[test]
    fn a_key_written_again_and_again_counts_once() {
        let mut f = KeyFilter::default();
        for _ in 0..10 {
            for k in 0u32..1000 {
                f.insert(&k.to_be_bytes());
            }
        }
        let counted: usize = f.stages.iter().map(|s| s.len).sum();
        assert!(counted <= 1000, "{counted} keys counted for 1,000");
        assert_eq!(f.stages.len(), 1);
    }

    #[test]
    fn a_filter_past_its_size_answers_maybe_for_every_key() {
        let mut f = KeyFilter::default();
        let mut k = 0u64;
        while !f.full {
            f.insert(&k.to_be_bytes());
            k += 1;
        }
        assert!(f.stages.is_empty(), "its memory is given back");
        assert!(f.may_contain(b"never inserted"));
        assert!(k as usize <= MAX_BITS / BITS_PER_KEY);
    }
}
