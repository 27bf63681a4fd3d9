//! Serving `RandomAccess` from a store: rows routed to their shards ([`crate::route`]),
//! gathered batch by batch in one pass per column ([`crate::wide::Columns`]), sliced without a
//! copy where they lie in one batch; a remote store holds one shard at a time.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use arrowfeed_traits::{RandomAccess, Result, check_slice, project_schema};

use crate::shard::LoadedShard;
use crate::store::ShardStore;
use crate::wide::{batch_of, conform};

impl RandomAccess for ShardStore {
    fn schema(&self) -> SchemaRef {
        self.inner.schema.clone()
    }

    fn num_rows(&self) -> u64 {
        self.inner.routes.total()
    }

    /// Gathers rows grouped by shard and batch: each shard is loaded once per call and each
    /// column gathered in one pass; a sorted run of consecutive rows is served as a slice.
    ///
    /// The batch's schema is always `schema().project(p)`: string, binary and list columns
    /// that can pass 2 GiB of values are in their large types in every batch (decided at open;
    /// see the crate docs). A `take` that repeats rows until a column reported in its 32-bit
    /// type would pass 2 GiB is an [`Error::InvalidArgument`](arrowfeed_traits::Error::InvalidArgument) naming the column.
    fn take(&self, indices: &[u64], projection: Option<&[usize]>) -> Result<RecordBatch> {
        let schema = project_schema(&self.inner.schema, projection)?;
        let n = self.num_rows();
        if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
            return Err(self.out_of_range(bad));
        }
        if indices.is_empty() {
            return Ok(RecordBatch::new_empty(schema));
        }
        if indices.windows(2).all(|w| w[1] == w[0] + 1) {
            return self.slice(indices[0], indices.len() as u64, projection);
        }
        if self.inner.cache.is_some() {
            return self.take_shard_by_shard(indices, projection, &schema);
        }
        // Two passes: route every row and load its shard, then name each batch gathered from
        // once, by reference. Flat tables rather than maps, and no batch cloned: these were a
        // tenth of a fresh process's take of 256 random rows from a store of 12 shards.
        let shards = self.num_shards();
        let mut loaded: Vec<Option<Arc<LoadedShard>>> = vec![None; shards];
        let mut routed = Vec::with_capacity(indices.len());
        let mut wanted = Vec::new();
        let mut seen = vec![false; shards];
        for &i in indices {
            let (s, local) = self.inner.routes.route(i);
            if !std::mem::replace(&mut seen[s], true) {
                wanted.push(s);
            }
            routed.push((s, local));
        }
        for (&s, sh) in wanted.iter().zip(self.shards(&wanted)?) {
            loaded[s] = Some(sh);
        }
        let located: Vec<(usize, usize, usize)> = routed
            .iter()
            .map(|&(s, local)| {
                let (b, r) = loaded[s].as_ref().expect("loaded above").locate(local);
                (s, b, r)
            })
            .collect();
        // Where each loaded shard's batches start among all loaded batches, and which source
        // each of those batches became (`usize::MAX`: none yet).
        let mut first_batch = vec![0; shards];
        let mut all = 0;
        for (s, sh) in loaded.iter().enumerate() {
            first_batch[s] = all;
            all += sh.as_ref().map_or(0, |sh| sh.batches.len());
        }
        let mut source_of = vec![usize::MAX; all];
        let mut sources: Vec<&RecordBatch> = Vec::new();
        let mut positions = Vec::with_capacity(indices.len());
        for &(s, b, r) in &located {
            let slot = &mut source_of[first_batch[s] + b];
            if *slot == usize::MAX {
                let shard = loaded[s].as_ref().expect("loaded in the first pass");
                *slot = sources.len();
                sources.push(&shard.batches[b]);
            }
            positions.push((*slot, r));
        }
        self.columns()
            .gather_batch(&schema, &sources, projection, &positions)
    }

    /// Rows `offset..offset + len`: zero-copy when they lie in one batch, else the pieces of
    /// each batch concatenated (whole shards are never materialised).
    fn slice(&self, offset: u64, len: u64, projection: Option<&[usize]>) -> Result<RecordBatch> {
        let range = check_slice(offset, len, self.num_rows())
            .map_err(|_| self.out_of_range(offset.saturating_add(len).saturating_sub(1)))?;
        let schema = project_schema(&self.inner.schema, projection)?;
        if range.is_empty() {
            return Ok(RecordBatch::new_empty(schema));
        }
        if self.inner.cache.is_some()
            && self.inner.routes.route(range.start).0 != self.inner.routes.route(range.end - 1).0
        {
            // Pieces would keep every shard they point into open, and in the cache, at once:
            // copy shard by shard instead.
            let rows: Vec<u64> = range.collect();
            return self.take_shard_by_shard(&rows, projection, &schema);
        }
        let mut pieces = Vec::new();
        let mut row = range.start;
        while row < range.end {
            let (s, local) = self.inner.routes.route(row);
            let shard = self.shard(s)?;
            let (b, r) = shard.locate(local);
            let batch = &shard.batches[b];
            let take = ((batch.num_rows() - r) as u64).min(range.end - row) as usize;
            let piece = batch.slice(r, take);
            pieces.push(match projection {
                Some(p) => piece.project(p)?,
                None => piece,
            });
            row += take as u64;
        }
        if pieces.len() == 1 {
            return conform(pieces.pop().expect("one piece"), &schema);
        }
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(c, f)| {
                self.columns()
                    .concat(f, pieces.iter().map(|p| p.column(c).as_ref()).collect())
            })
            .collect::<Result<Vec<_>>>()?;
        batch_of(&schema, columns, len as usize)
    }

    /// For a remote store, asks the shard cache to download the shards holding `rows` ahead of
    /// use, in the order they first appear; a local store ignores it.
    fn will_need(&self, rows: &[u64]) {
        let Some(cache) = &self.inner.cache else {
            return;
        };
        let n = self.num_rows();
        let mut shards: Vec<usize> = Vec::new();
        for &r in rows.iter().filter(|&&r| r < n) {
            let (s, _) = self.inner.routes.route(r);
            if !shards.contains(&s) {
                shards.push(s);
            }
        }
        cache.want(&shards);
    }

    fn partitions(&self) -> Vec<Range<u64>> {
        self.inner.routes.partitions()
    }
}

impl ShardStore {
    /// `take` holding one shard at a time: the rows of each shard are gathered while it is
    /// open, then put in the asked order. How a remote store gathers across more shards than
    /// its cache holds (a global shuffle), at the cost of copying the gathered rows twice.
    fn take_shard_by_shard(
        &self,
        indices: &[u64],
        projection: Option<&[usize]>,
        schema: &SchemaRef,
    ) -> Result<RecordBatch> {
        // Each shard's rows in the order first asked, and where each output row comes from.
        let mut order: Vec<usize> = Vec::new();
        let mut rows_of: HashMap<usize, Vec<u64>> = HashMap::new();
        let mut positions = Vec::with_capacity(indices.len());
        for &i in indices {
            let (s, local) = self.inner.routes.route(i);
            let rows = rows_of.entry(s).or_insert_with(|| {
                order.push(s);
                Vec::new()
            });
            rows.push(local);
            positions.push((s, rows.len() - 1));
        }
        let mut part_of: HashMap<usize, usize> = HashMap::new();
        let mut parts: Vec<RecordBatch> = Vec::with_capacity(order.len());
        for &s in &order {
            let shard = self.shard(s)?;
            let local = &rows_of[&s];
            let mut sources: Vec<&RecordBatch> = Vec::new();
            let mut source_of: HashMap<usize, usize> = HashMap::new();
            let mut pos = Vec::with_capacity(local.len());
            for &r in local {
                let (b, row) = shard.locate(r);
                let k = *source_of.entry(b).or_insert_with(|| {
                    sources.push(&shard.batches[b]);
                    sources.len() - 1
                });
                pos.push((k, row));
            }
            part_of.insert(s, parts.len());
            parts.push(
                self.columns()
                    .gather_batch(schema, &sources, projection, &pos)?,
            );
            // The shard is let go here, before the next is opened.
        }
        if parts.len() == 1 {
            return Ok(parts.pop().expect("one part"));
        }
        let positions: Vec<(usize, usize)> =
            positions.iter().map(|&(s, r)| (part_of[&s], r)).collect();
        let parts: Vec<&RecordBatch> = parts.iter().collect();
        self.columns()
            .gather_batch(schema, &parts, None, &positions)
    }
}
