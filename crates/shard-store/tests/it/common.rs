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

/// `batches` as an Arrow IPC stream, compressed with `codec`: a Hugging Face shard.
pub fn ipc_stream(batches: &[RecordBatch], codec: Option<arrow_ipc::CompressionType>) -> Vec<u8> {
    let mut stream = Vec::new();
    let options = arrow_ipc::writer::IpcWriteOptions::default()
        .try_with_compression(codec)
        .unwrap();
    let mut w = arrow_ipc::writer::StreamWriter::try_new_with_options(
        &mut stream,
        &batches[0].schema(),
        options,
    )
    .unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
    drop(w);
    stream
}

/// A Hugging Face `save_to_disk` directory at `dir` whose one shard is `stream`.
pub fn hf_dir(dir: &Path, stream: &[u8]) {
    std::fs::create_dir(dir).unwrap();
    std::fs::write(
        dir.join("state.json"),
        r#"{"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}"#,
    )
    .unwrap();
    std::fs::write(dir.join("data-00000-of-00001.arrow"), stream).unwrap();
}

/// Rewrites the manifest of the store at `p` through `f`.
pub fn edit_manifest(p: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let m = p.join("manifest.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&m, serde_json::to_string(&v).unwrap()).unwrap();
}
