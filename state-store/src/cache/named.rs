//! One store's entries in the thread cache (Kafka's `NamedCache`), laid out so that the
//! operations of every record are O(1) and allocate nothing for a key already cached.
//!
//! Entries live in a slab; a hash table (foldhash) maps a key to its slot; two intrusive
//! doubly linked lists through the slots keep the LRU order and the dirty (latest-update)
//! order. Updating a cached key is one hash lookup and a few relinks. Key order is only
//! needed by scans, so the ordered index (a `BTreeMap` from key to slot) is built at a named
//! cache's first scan and kept from then on; it changes only when a key enters or leaves
//! the cache, never on an update.

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::ops::{Bound, RangeBounds};

use bytes::{Bytes, BytesMut};
use hashbrown::HashTable;
use slab::Slab;

use super::entry_bytes;
use crate::layers::Timestamped;

/// What the store under the cache holds for a key, as far as the cache knows.
///
/// A clean entry's value is the store's value, so an update over a clean entry knows what
/// the store holds, and the write-down need not read it back to forward the old value.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) enum Stored {
    /// Not known: the write-down reads the store when it needs the old value.
    #[default]
    Unknown,
    /// The store's value (`None`: absent).
    Known(Option<Timestamped>),
}

/// An entry on its way down to the store (and the flush listener).
#[derive(Debug)]
pub(super) struct Flushed {
    pub(super) key: Bytes,
    /// The value to write (`None` deletes).
    pub(super) value: Option<Timestamped>,
    /// What the store holds for the key before this write, when the cache knows it.
    pub(super) stored: Stored,
}

impl Flushed {
    /// An entry that goes straight down, the cache knowing nothing of the store.
    pub(super) fn through(key: Bytes, value: Option<Timestamped>) -> Flushed {
        Flushed {
            key,
            value,
            stored: Stored::Unknown,
        }
    }
}

/// Bytes a slot keeps inside itself when they fit in `N`, else in a shared `Bytes`: a
/// lookup then touches the hash table and the slot only, never a separate allocation.
#[derive(Debug, Clone)]
pub(super) enum Small<const N: usize> {
    Inline { len: u8, bytes: [u8; N] },
    Shared(Bytes),
}

impl<const N: usize> Small<N> {
    /// A copy of `b` (inline when it fits).
    pub(super) fn copy(b: &[u8]) -> Small<N> {
        let mut bytes = [0u8; N];
        match (bytes.get_mut(..b.len()), u8::try_from(b.len())) {
            (Some(dst), Ok(len)) => {
                dst.copy_from_slice(b);
                Small::Inline { len, bytes }
            }
            _ => Small::Shared(crate::serde::compact_bytes(b)),
        }
    }

    /// `b` itself, or an inline copy when it fits.
    fn from_bytes(b: Bytes) -> Small<N> {
        if b.len() <= N {
            Small::copy(&b)
        } else {
            Small::Shared(b)
        }
    }

    pub(super) fn as_slice(&self) -> &[u8] {
        match self {
            Small::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or(bytes),
            Small::Shared(b) => b,
        }
    }

    /// The bytes as `Bytes`: inline ones copied into `arena` and split off it (one
    /// allocation shared by a whole flush piece instead of one per key and value).
    fn to_bytes_in(&self, arena: &mut BytesMut) -> Bytes {
        match self {
            Small::Inline { .. } => {
                arena.extend_from_slice(self.as_slice());
                arena.split().freeze()
            }
            Small::Shared(b) => b.clone(),
        }
    }

    /// The bytes as `Bytes` (one small allocation when inline).
    fn to_bytes(&self) -> Bytes {
        match self {
            Small::Inline { .. } => crate::serde::compact_bytes(self.as_slice()),
            Small::Shared(b) => b.clone(),
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Small::Inline { .. } => crate::serde::compact_bytes(self.as_slice()),
            Small::Shared(b) => b,
        }
    }
}

/// Key bytes kept in a slot: window and session cache keys of 8-byte keys are 28 and 32.
const KEY_INLINE: usize = 32;
/// Room a flush piece's shared buffer starts with per entry (a window key of an 8-byte
/// key and an 8-byte value; the buffer grows for longer ones).
const ARENA_ENTRY: usize = 40;
/// Value bytes kept in a slot: counts and sums of fixed-width numbers fit.
const VALUE_INLINE: usize = 16;

type SlotKey = Small<KEY_INLINE>;

/// A cached value and its timestamp, as a slot keeps them.
#[derive(Debug, Clone)]
struct Stamped {
    value: Small<VALUE_INLINE>,
    timestamp: i64,
}

impl Stamped {
    fn from_timestamped(t: Timestamped) -> Stamped {
        Stamped {
            value: Small::from_bytes(t.value),
            timestamp: t.timestamp,
        }
    }

    fn to_timestamped(&self) -> Timestamped {
        Timestamped {
            value: self.value.to_bytes(),
            timestamp: self.timestamp,
        }
    }

    /// [`to_timestamped`](Self::to_timestamped) with the bytes split off `arena`.
    fn to_timestamped_in(&self, arena: &mut BytesMut) -> Timestamped {
        Timestamped {
            value: self.value.to_bytes_in(arena),
            timestamp: self.timestamp,
        }
    }

    fn into_timestamped(self) -> Timestamped {
        Timestamped {
            value: self.value.into_bytes(),
            timestamp: self.timestamp,
        }
    }

    fn borrowed(&self) -> Timestamped<&[u8]> {
        Timestamped {
            value: self.value.as_slice(),
            timestamp: self.timestamp,
        }
    }
}

/// [`Stored`] as a slot keeps it.
#[derive(Debug, Default)]
enum Prior {
    #[default]
    Unknown,
    Known(Option<Stamped>),
}

impl Prior {
    fn into_stored(self) -> Stored {
        match self {
            Prior::Unknown => Stored::Unknown,
            Prior::Known(v) => Stored::Known(v.map(Stamped::into_timestamped)),
        }
    }
}

/// A key the cache looks up borrowed and copies only when it is new.
pub(super) trait CacheKey: AsRef<[u8]> {
    fn into_bytes(self) -> Bytes;

    /// The key as a slot keeps it.
    fn into_slot(self) -> SlotKey
    where
        Self: Sized,
    {
        Small::copy(self.as_ref())
    }
}

impl CacheKey for Bytes {
    fn into_bytes(self) -> Bytes {
        self
    }

    fn into_slot(self) -> SlotKey {
        Small::from_bytes(self)
    }
}

impl CacheKey for &[u8] {
    fn into_bytes(self) -> Bytes {
        crate::serde::compact_bytes(self)
    }
}

/// Room for a key on the stack: window and session cache keys are 28 and 32 bytes around
/// the user key.
const INLINE: usize = 64;

/// A cache key built from parts on the stack when it fits (most do), so that looking a key
/// up allocates nothing; only a key new to the cache is copied.
#[derive(Debug, Clone)]
pub(super) enum KeyBuf {
    Inline { len: usize, bytes: [u8; INLINE] },
    Heap(Vec<u8>),
}

impl KeyBuf {
    /// The concatenation of `parts`.
    pub(super) fn concat<const N: usize>(parts: [&[u8]; N]) -> KeyBuf {
        let mut k = KeyBuf::default();
        k.set(parts);
        k
    }

    /// Makes this the concatenation of `parts`, in place.
    pub(super) fn set<const N: usize>(&mut self, parts: [&[u8]; N]) {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total > INLINE {
            *self = KeyBuf::Heap(parts.concat());
            return;
        }
        if matches!(self, KeyBuf::Heap(_)) {
            *self = KeyBuf::default();
        }
        if let KeyBuf::Inline { len, bytes } = self {
            let mut at = 0;
            for part in parts {
                if let Some(dst) = bytes.get_mut(at..at + part.len()) {
                    dst.copy_from_slice(part);
                }
                at += part.len();
            }
            *len = total;
        }
    }
}

impl Default for KeyBuf {
    /// Empty, inline.
    fn default() -> KeyBuf {
        KeyBuf::Inline {
            len: 0,
            bytes: [0; INLINE],
        }
    }
}

impl AsRef<[u8]> for KeyBuf {
    fn as_ref(&self) -> &[u8] {
        match self {
            KeyBuf::Inline { len, bytes } => bytes.get(..*len).unwrap_or(bytes),
            KeyBuf::Heap(v) => v,
        }
    }
}

impl CacheKey for KeyBuf {
    fn into_bytes(self) -> Bytes {
        match self {
            // One allocation with its reference count: flushes clone every dirty key.
            KeyBuf::Inline { .. } => crate::serde::compact_bytes(self.as_ref()),
            KeyBuf::Heap(v) => Bytes::from(v),
        }
    }

    fn into_slot(self) -> SlotKey {
        match self {
            KeyBuf::Inline { .. } => Small::copy(self.as_ref()),
            KeyBuf::Heap(v) => Small::from_bytes(Bytes::from(v)),
        }
    }
}

/// A slot's index as the hash table and the lists keep it: half the width of a `usize`,
/// so that the table's slot array and the slots themselves (a lookup's memory misses on a
/// large cache) are smaller and more of them stay in the CPU's caches. A named cache never
/// holds more entries than its thread cache's budget allows
/// ([`ThreadCache::MAX_BYTES`](super::ThreadCache::MAX_BYTES) keeps that far under
/// `u32::MAX`), and the slab reuses freed slots, so every index fits; an entry whose index
/// would not is not cached but goes straight down (see [`NamedCache::put`]).
type Slot = u32;

/// No slot: the end of a list. `Slab::get` answers `None` for it (no slot gets this index).
const NIL: Slot = Slot::MAX;

/// The slab index of a slot.
fn slot_index(s: Slot) -> usize {
    s as usize
}

#[derive(Debug, Clone, Copy)]
struct Link {
    prev: Slot,
    next: Slot,
}

impl Link {
    const DETACHED: Link = Link {
        prev: NIL,
        next: NIL,
    };
}

/// The two orders an entry is linked into.
#[derive(Debug, Clone, Copy)]
enum Order {
    /// Least recently used first: eviction takes the head.
    Use,
    /// Dirty entries only, least recently updated first: a flush walks it from the head.
    Update,
}

#[derive(Debug, Clone, Copy)]
struct List {
    head: Slot,
    tail: Slot,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
    };
}

/// One entry: what a lookup reads (key, value) first; short keys and values are kept in
/// the slot itself. 160 bytes (192 before): the key's hash is recomputed when the table
/// grows and the counted size from the lengths. What the store holds under a dirty entry
/// stays here: kept beside the slots it was a second memory miss per flushed entry.
#[derive(Debug)]
struct Node {
    key: SlotKey,
    value: Option<Stamped>,
    used: Link,
    updated: Link,
    dirty: bool,
    /// For a dirty entry, what the store holds (a clean entry's store holds `value`).
    stored: Prior,
}

impl Node {
    fn link(&mut self, order: Order) -> &mut Link {
        match order {
            Order::Use => &mut self.used,
            Order::Update => &mut self.updated,
        }
    }

    fn size(&self) -> usize {
        entry_bytes(
            self.key.as_slice().len(),
            self.value.as_ref().map(|v| v.value.as_slice().len()),
        )
    }
}

/// The slots and the two lists through them. Every slot is in the LRU list; a slot is in
/// the dirty list exactly when it is dirty.
#[derive(Debug)]
struct Nodes {
    slab: Slab<Node>,
    lru: List,
    dirty: List,
}

impl Nodes {
    fn list(&mut self, order: Order) -> &mut List {
        match order {
            Order::Use => &mut self.lru,
            Order::Update => &mut self.dirty,
        }
    }

    fn push_back(&mut self, order: Order, i: Slot) {
        let tail = self.list(order).tail;
        if let Some(n) = self.slab.get_mut(slot_index(i)) {
            *n.link(order) = Link {
                prev: tail,
                next: NIL,
            };
        }
        match self.slab.get_mut(slot_index(tail)) {
            Some(t) => t.link(order).next = i,
            None => self.list(order).head = i,
        }
        self.list(order).tail = i;
    }

    /// Takes slot `i` out of a list it is in.
    fn unlink(&mut self, order: Order, i: Slot) {
        let Some(n) = self.slab.get_mut(slot_index(i)) else {
            return;
        };
        let Link { prev, next } = std::mem::replace(n.link(order), Link::DETACHED);
        match self.slab.get_mut(slot_index(prev)) {
            Some(p) => p.link(order).next = next,
            None => self.list(order).head = next,
        }
        match self.slab.get_mut(slot_index(next)) {
            Some(n) => n.link(order).prev = prev,
            None => self.list(order).tail = prev,
        }
    }

    fn move_to_back(&mut self, order: Order, i: Slot) {
        if self.list(order).tail != i {
            self.unlink(order, i);
            self.push_back(order, i);
        }
    }
}

/// What a read-modify-write of one key did in the named cache.
pub(super) enum Modified<E> {
    /// The key was cached: `f` saw its value and the new value is in, dirty.
    Done,
    /// `f` failed: nothing was put.
    Failed(E),
    /// The key is not cached (or there was no `f`): `f` was not called and is still there.
    Miss,
}

/// One store's entries in the thread cache (see the module docs).
#[derive(Debug)]
pub(super) struct NamedCache {
    pub(super) name: String,
    nodes: Nodes,
    /// Slots by key hash, as `u32` (see [`Slot`]).
    index: HashTable<Slot>,
    hasher: foldhash::fast::RandomState,
    /// Slots by key, once the store has scanned.
    ordered: Option<BTreeMap<Bytes, usize>>,
    /// The bytes counted for the entries.
    pub(super) size_bytes: usize,
    /// Entries flushed by an eviction this store did not cause (a shrinking budget), waiting
    /// for the store's next call to write them down.
    pub(super) parked: Vec<Flushed>,
}

impl NamedCache {
    pub(super) fn new(name: String) -> NamedCache {
        NamedCache {
            name,
            nodes: Nodes {
                slab: Slab::new(),
                lru: List::EMPTY,
                dirty: List::EMPTY,
            },
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            ordered: None,
            size_bytes: 0,
            parked: Vec::new(),
        }
    }

    /// Drops every entry, dirty and parked ones too.
    pub(super) fn clear(&mut self) {
        let scanned = self.ordered.is_some();
        *self = NamedCache::new(std::mem::take(&mut self.name));
        if scanned {
            self.ordered = Some(BTreeMap::new());
        }
    }

    pub(super) fn len(&self) -> usize {
        self.nodes.slab.len()
    }

    /// Whether the cache holds updates not yet written down.
    pub(super) fn has_unflushed(&self) -> bool {
        self.nodes.dirty.head != NIL || !self.parked.is_empty()
    }

    /// The counted bytes, recomputed from the entries.
    pub(super) fn recount(&self) -> usize {
        self.nodes.slab.iter().map(|(_, n)| n.size()).sum()
    }

    fn find(&self, hash: u64, key: &[u8]) -> Option<Slot> {
        let slab = &self.nodes.slab;
        self.index
            .find(hash, |&i| {
                slab.get(slot_index(i))
                    .is_some_and(|n| n.key.as_slice() == key)
            })
            .copied()
    }

    /// Caches `value` under `key`, the most recently used entry and, when `dirty`, the
    /// most recently updated one. An entry the cache has no slot index for (see [`Slot`];
    /// it cannot happen within the budget) is not cached: a dirty one comes back, to be
    /// written down at once as an entry larger than the budget would be.
    pub(super) fn put(
        &mut self,
        key: impl CacheKey,
        value: Option<Timestamped>,
        dirty: bool,
    ) -> Option<Flushed> {
        let value = value.map(Stamped::from_timestamped);
        // A read-modify-write puts the key its read just used, the LRU tail: no hashing.
        let tail = self.nodes.lru.tail;
        let cached = |n: &Node| n.key.as_slice() == key.as_ref();
        if (self.nodes.slab.get(slot_index(tail))).is_some_and(cached) {
            self.update(tail, value, dirty);
            return None;
        }
        let hash = self.hasher.hash_one(key.as_ref());
        match self.find(hash, key.as_ref()) {
            Some(i) => {
                self.update(i, value, dirty);
                None
            }
            None => self.insert(hash, key.into_slot(), value, dirty),
        }
    }

    /// Kafka's get-then-put of an aggregation in one lookup: when `key` is cached, `f` gets
    /// its value (`None`: a cached deletion) and writes the new value into `buf`, returning
    /// its timestamp; the new value replaces the old as a dirty entry, exactly as a
    /// [`get`](Self::get) then a dirty [`put`](Self::put) would leave the cache. Parked
    /// entries are not looked at: the caller sees to them first.
    ///
    /// `f` is taken out of its option only when called, so that a miss leaves it with the
    /// caller without handing it back in the (then much larger) result.
    pub(super) fn modify<F, E>(
        &mut self,
        key: &[u8],
        buf: &mut Vec<u8>,
        f: &mut Option<F>,
    ) -> Modified<E>
    where
        F: FnOnce(Option<Timestamped<&[u8]>>, &mut Vec<u8>) -> Result<i64, E>,
    {
        let hash = self.hasher.hash_one(key);
        let Some(i) = self.find(hash, key) else {
            return Modified::Miss;
        };
        let Some(f) = f.take() else {
            return Modified::Miss;
        };
        self.nodes.move_to_back(Order::Use, i);
        let found = self
            .nodes
            .slab
            .get(slot_index(i))
            .and_then(|n| n.value.as_ref().map(Stamped::borrowed));
        let timestamp = match f(found, buf) {
            Ok(t) => t,
            Err(e) => return Modified::Failed(e),
        };
        if self.overwrite_dirty(i, buf, timestamp) {
            return Modified::Done;
        }
        let value = Stamped {
            value: Small::copy(buf),
            timestamp,
        };
        self.update(i, Some(value), true);
        Modified::Done
    }

    /// The usual update of an aggregation: a dirty entry whose inline value the new one
    /// fits replaces its bytes where they are (a value built aside and moved in was stored
    /// in pieces, then reloaded whole: a stall per update). Leaves the cache as
    /// [`update`](Self::update) with a dirty value would; false if it does not apply.
    fn overwrite_dirty(&mut self, i: Slot, value: &[u8], timestamp: i64) -> bool {
        let Some(n) = self.nodes.slab.get_mut(slot_index(i)) else {
            return false;
        };
        let Some(Stamped {
            value: Small::Inline { len, bytes },
            timestamp: ts,
        }) = n.value.as_mut()
        else {
            return false;
        };
        let (Some(dst), Ok(new_len), true) = (
            bytes.get_mut(..value.len()),
            u8::try_from(value.len()),
            n.dirty,
        ) else {
            return false;
        };
        // The key stays: the counted size moves by the value's change of length.
        self.size_bytes = self.size_bytes - usize::from(*len) + value.len();
        dst.copy_from_slice(value);
        *len = new_len;
        *ts = timestamp;
        self.nodes.move_to_back(Order::Update, i);
        self.nodes.move_to_back(Order::Use, i);
        true
    }

    fn update(&mut self, i: Slot, value: Option<Stamped>, dirty: bool) {
        let Some(n) = self.nodes.slab.get_mut(slot_index(i)) else {
            return;
        };
        // A clean put never replaces a dirty entry: stores cache clean values only after a
        // miss.
        debug_assert!(dirty || !n.dirty, "clean put over a dirty entry");
        let before = n.size();
        let old = std::mem::replace(&mut n.value, value);
        let was_dirty = std::mem::replace(&mut n.dirty, dirty);
        self.size_bytes = self.size_bytes - before + n.size();
        if !dirty {
            n.stored = Prior::Unknown;
        } else if !was_dirty {
            // The clean value was the store's.
            n.stored = Prior::Known(old);
        }
        if was_dirty {
            self.nodes.unlink(Order::Update, i);
        }
        if dirty {
            self.nodes.push_back(Order::Update, i);
        }
        self.nodes.move_to_back(Order::Use, i);
    }

    /// Caches a new entry; see [`put`](Self::put) for the one that comes back.
    fn insert(
        &mut self,
        hash: u64,
        key: SlotKey,
        value: Option<Stamped>,
        dirty: bool,
    ) -> Option<Flushed> {
        let i = match Slot::try_from(self.nodes.slab.vacant_key()) {
            Ok(i) if i != NIL => i,
            _ => {
                let value = value.map(Stamped::into_timestamped);
                return dirty.then(|| Flushed::through(key.into_bytes(), value));
            }
        };
        let ordered_key = self.ordered.is_some().then(|| key.to_bytes());
        let node = Node {
            key,
            value,
            used: Link::DETACHED,
            updated: Link::DETACHED,
            dirty,
            stored: Prior::Unknown,
        };
        self.size_bytes += node.size();
        self.nodes.slab.insert(node);
        let (slab, hasher) = (&self.nodes.slab, &self.hasher);
        self.index.insert_unique(hash, i, |&j| {
            slab.get(slot_index(j))
                .map_or(0, |n| hasher.hash_one(n.key.as_slice()))
        });
        if let (Some(ordered), Some(key)) = (&mut self.ordered, ordered_key) {
            ordered.insert(key, slot_index(i));
        }
        self.nodes.push_back(Order::Use, i);
        if dirty {
            self.nodes.push_back(Order::Update, i);
        }
        None
    }

    /// Takes slot `i`'s entry out of the cache, with what the store holds under it.
    fn remove(&mut self, i: Slot) -> Option<(Node, Stored)> {
        let n = self.nodes.slab.get(slot_index(i))?;
        let (hash, dirty) = (self.hasher.hash_one(n.key.as_slice()), n.dirty);
        self.nodes.unlink(Order::Use, i);
        if dirty {
            self.nodes.unlink(Order::Update, i);
        }
        if let Ok(entry) = self.index.find_entry(hash, |&j| j == i) {
            entry.remove();
        }
        let mut node = self.nodes.slab.try_remove(slot_index(i))?;
        if let Some(ordered) = &mut self.ordered {
            ordered.remove(node.key.as_slice());
        }
        self.size_bytes -= node.size();
        let stored = std::mem::take(&mut node.stored).into_stored();
        Some((node, stored))
    }

    /// The cached value of `key` (`Some(None)`: a cached deletion), which counts as a use;
    /// entries parked and not written down yet count too (see `ThreadCache::get`).
    pub(super) fn get(&mut self, key: &[u8]) -> Option<Option<Timestamped>> {
        let hash = self.hasher.hash_one(key);
        match self.find(hash, key) {
            Some(i) => {
                self.nodes.move_to_back(Order::Use, i);
                self.nodes
                    .slab
                    .get(slot_index(i))
                    .map(|n| n.value.as_ref().map(Stamped::to_timestamped))
            }
            None => self
                .parked
                .iter()
                .rev()
                .find(|f| f.key.as_ref() == key)
                .map(|f| f.value.clone()),
        }
    }

    /// Marks every dirty entry clean and appends it to `out`, in latest-update order;
    /// deleted keys leave the cache (Kafka's `NamedCache.flush`).
    pub(super) fn flush_dirty(&mut self, out: &mut Vec<Flushed>) {
        self.flush_dirty_upto(out, usize::MAX);
    }

    /// [`flush_dirty`](Self::flush_dirty) of the `max` least recently updated dirty
    /// entries only: a flush in pieces whose entries go down while still in the CPU's
    /// caches, through one small reused buffer. The piece's short keys and values share one
    /// allocation (an allocation per key and value: W3 ran 30 % faster without them). A piece's entries go down together
    /// and leave the write buffer and overlays with the commit's apply; what keeps them
    /// longer copies them (the in-memory backend does) so that no piece stays pinned.
    pub(super) fn flush_dirty_upto(&mut self, out: &mut Vec<Flushed>, max: usize) {
        let mut i = self.nodes.dirty.head;
        // Allocated only when there is something to flush (a flush's last call finds
        // nothing).
        let mut arena = BytesMut::new();
        if self.nodes.slab.contains(slot_index(i)) {
            arena.reserve(max.min(self.nodes.slab.len()) * ARENA_ENTRY);
        }
        for _ in 0..max {
            let Some(n) = self.nodes.slab.get_mut(slot_index(i)) else {
                break;
            };
            let next = n.updated.next;
            n.updated = Link::DETACHED;
            n.dirty = false;
            let stored = std::mem::take(&mut n.stored).into_stored();
            if let Some(value) = &n.value {
                out.push(Flushed {
                    key: n.key.to_bytes_in(&mut arena),
                    value: Some(value.to_timestamped_in(&mut arena)),
                    stored,
                });
            } else if let Some((node, _)) = self.remove(i) {
                out.push(Flushed {
                    key: node.key.into_bytes(),
                    value: None,
                    stored,
                });
            }
            i = next;
        }
        // `i` heads what is still dirty (`NIL`: nothing).
        self.nodes.dirty.head = i;
        match self.nodes.slab.get_mut(slot_index(i)) {
            Some(n) => n.updated.prev = NIL,
            None => self.nodes.dirty = List::EMPTY,
        }
    }

    /// Evicts the least recently used entry; when it was dirty, the whole named cache is
    /// flushed into `out`, the evicted entry first. Returns false when there was nothing to
    /// evict.
    pub(super) fn evict_one(&mut self, out: &mut Vec<Flushed>) -> bool {
        let Some((node, stored)) = self.remove(self.nodes.lru.head) else {
            return false;
        };
        if node.dirty {
            out.push(Flushed {
                key: node.key.into_bytes(),
                value: node.value.map(Stamped::into_timestamped),
                stored,
            });
            self.flush_dirty(out);
        }
        true
    }

    /// A snapshot of the entries within bounds, ascending; parked entries count too, the
    /// later ones winning over earlier ones and cached entries over parked ones.
    pub(super) fn range(
        &mut self,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
    ) -> Vec<(Bytes, Option<Timestamped>)> {
        let slab = &self.nodes.slab;
        let ordered = self
            .ordered
            .get_or_insert_with(|| slab.iter().map(|(i, n)| (n.key.to_bytes(), i)).collect());
        let entries = ordered.range::<[u8], _>((from, to)).filter_map(|(k, &i)| {
            slab.get(i)
                .map(|n| (k.clone(), n.value.as_ref().map(Stamped::to_timestamped)))
        });
        if self.parked.is_empty() {
            return entries.collect();
        }
        let mut merged: BTreeMap<Bytes, Option<Timestamped>> = self
            .parked
            .iter()
            .filter(|f| RangeBounds::<[u8]>::contains(&(from, to), f.key.as_ref()))
            .map(|f| (f.key.clone(), f.value.clone()))
            .collect();
        merged.extend(entries);
        merged.into_iter().collect()
    }
}
