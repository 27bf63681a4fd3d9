//! Shared helpers: ML-shaped batches and stores written from them.

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, Int32Builder, ListBuilder};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrowfeed_shard_store::{ShardStore, StoreWriter, write_batches};

/// `n` rows with ids from `first`: an id, a text, a token list and an image-like binary.
pub fn batch(first: i64, n: usize) -> RecordBatch {
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(first..first + n as i64));
    let text: ArrayRef = Arc::new(StringArray::from_iter((0..n).map(|i| {
        let id = first + i as i64;
        (id % 11 != 5).then(|| format!("text {id} {}", "x".repeat((id % 23) as usize)))
    })));
    let mut tokens = ListBuilder::new(Int32Builder::new());
    let mut image = BinaryBuilder::new();
    for i in 0..n {
        let id = first + i as i64;
        for t in 0..(id % 7) as i32 {
            tokens.values().append_value(t * 1000 + id as i32);
        }
        tokens.append(id % 13 != 0);
        image.append_value(vec![(id % 251) as u8; (id % 40) as usize]);
    }
    RecordBatch::try_from_iter_with_nullable([
        ("id", ids, false),
        ("text", text, true),
        ("tokens", Arc::new(tokens.finish()) as ArrayRef, true),
        ("image", Arc::new(image.finish()) as ArrayRef, false),
    ])
    .unwrap()
}

/// Input batches of the given sizes, ids consecutive from 0.
pub fn input(sizes: &[usize]) -> Vec<RecordBatch> {
    let mut first = 0;
    sizes
        .iter()
        .map(|&n| {
            let b = batch(first, n);
            first += n as i64;
            b
        })
        .collect()
}

pub fn concat(batches: &[RecordBatch]) -> RecordBatch {
    arrow_select::concat::concat_batches(&batch(0, 0).schema(), batches).unwrap()
}

pub fn write(dir: &Path, batches: Vec<RecordBatch>, w: &StoreWriter) -> ShardStore {
    write_batches(dir, batch(0, 0).schema(), batches, w).unwrap();
    ShardStore::open(dir).unwrap()
}
