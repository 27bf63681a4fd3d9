//! The shards a store holds open (mapped and decoded), its cache policy: at most a cap, the
//! least recently used closed first, and one load of a shard at a time.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use arrowfeed_traits::Result;

use crate::shard::LoadedShard;

#[derive(Debug, Default)]
struct Lru {
    open: HashMap<usize, Arc<LoadedShard>>,
    /// Least recently used at the front.
    order: VecDeque<usize>,
    loads: u64,
}

/// Open shards by number, at most `max` of them.
#[derive(Debug)]
pub(crate) struct OpenShards {
    lru: Mutex<Lru>,
    /// One lock per shard, held while it loads: threads that need a shard another is loading
    /// wait for that load instead of mapping and decoding it a second time. A thread never
    /// holds one shard's lock while it waits for another's, so these cannot deadlock.
    loading: Vec<Mutex<()>>,
    max: usize,
}

impl OpenShards {
    /// Room for `max` of a store's `shards` shards.
    pub(crate) fn new(shards: usize, max: usize) -> Self {
        Self {
            lru: Mutex::new(Lru::default()),
            loading: (0..shards).map(|_| Mutex::new(())).collect(),
            max,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lru> {
        self.lru.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Shard `s` if it is open, marked most recently used.
    pub(crate) fn get(&self, s: usize) -> Option<Arc<LoadedShard>> {
        let mut lru = self.lock();
        let sh = lru.open.get(&s).cloned()?;
        if let Some(p) = lru.order.iter().position(|&k| k == s) {
            lru.order.remove(p);
        }
        lru.order.push_back(s);
        Some(sh)
    }

    /// Shard `s`: open already, or loaded by `load` (once, however many threads ask at once)
    /// and kept, closing the least recently used shards past the cap.
    pub(crate) fn get_or_load(
        &self,
        s: usize,
        load: impl FnOnce() -> Result<LoadedShard>,
    ) -> Result<Arc<LoadedShard>> {
        if let Some(sh) = self.get(s) {
            return Ok(sh);
        }
        let _loading = self.loading[s].lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sh) = self.get(s) {
            return Ok(sh);
        }
        let loaded = Arc::new(load()?);
        let mut lru = self.lock();
        lru.loads += 1;
        if lru.open.insert(s, loaded.clone()).is_none() {
            lru.order.push_back(s);
        }
        while lru.open.len() > self.max {
            match lru.order.pop_front() {
                Some(old) => {
                    lru.open.remove(&old);
                }
                None => break,
            }
        }
        Ok(loaded)
    }

    /// Closes open shards nobody else holds; true if it closed any.
    pub(crate) fn release_idle(&self) -> bool {
        let mut lru = self.lock();
        let idle: Vec<usize> = lru
            .open
            .iter()
            .filter(|(_, sh)| Arc::strong_count(sh) == 1)
            .map(|(&k, _)| k)
            .collect();
        for k in &idle {
            lru.open.remove(k);
            if let Some(p) = lru.order.iter().position(|o| o == k) {
                lru.order.remove(p);
            }
        }
        !idle.is_empty()
    }

    /// Loads so far.
    pub(crate) fn loads(&self) -> u64 {
        self.lock().loads
    }

    /// Shards open now.
    pub(crate) fn len(&self) -> usize {
        self.lock().open.len()
    }
}
