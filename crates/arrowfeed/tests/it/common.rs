//! ML-shaped test data written in every format the sources read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, Int32Builder, ListBuilder};
use arrow_array::{ArrayRef, Float32Array, Int64Array, RecordBatch, StringArray};
use arrowfeed::prelude::*;

/// `n` rows with ids from `first`: an id, a label, a text, token ids and image-like bytes.
pub fn batch(first: i64, n: usize) -> RecordBatch {
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(first..first + n as i64));
    let score: ArrayRef = Arc::new(Float32Array::from_iter(
        (first..first + n as i64).map(|i| (i % 9 != 4).then_some(i as f32 / 7.0)),
    ));
    let text: ArrayRef = Arc::new(StringArray::from_iter_values(
        (first..first + n as i64).map(|i| format!("row {i} {}", "z".repeat((i % 31) as usize))),
    ));
    let mut tokens = ListBuilder::new(Int32Builder::new());
    let mut image = BinaryBuilder::new();
    for i in first..first + n as i64 {
        for t in 0..(i % 9) as i32 {
            tokens.values().append_value(t + i as i32);
        }
        tokens.append(true);
        image.append_value(vec![(i % 253) as u8; 64 + (i % 200) as usize]);
    }
    RecordBatch::try_from_iter_with_nullable([
        ("id", ids, false),
        ("score", score, true),
        ("text", text, false),
        ("tokens", Arc::new(tokens.finish()) as ArrayRef, true),
        ("image", Arc::new(image.finish()) as ArrayRef, false),
    ])
    .unwrap()
}

/// Batches of `sizes` rows, ids consecutive from 0.
pub fn batches(sizes: &[usize]) -> Vec<RecordBatch> {
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

/// Every file kind the sources read: (label, format, compression).
pub const KINDS: [(&str, Format, WriteCompression); 6] = [
    ("snappy.parquet", Format::Parquet, WriteCompression::Default),
    ("zstd.parquet", Format::Parquet, WriteCompression::Zstd),
    ("plain.arrow", Format::ArrowFile, WriteCompression::None),
    ("lz4.arrow", Format::ArrowFile, WriteCompression::Lz4),
    ("plain.arrows", Format::ArrowStream, WriteCompression::None),
    ("zstd.arrows", Format::ArrowStream, WriteCompression::Zstd),
];

/// Writes `input` as each of [`KINDS`] into `dir`; returns the paths.
pub fn write_all_kinds(dir: &Path, input: &[RecordBatch]) -> Vec<PathBuf> {
    KINDS
        .iter()
        .map(|(name, format, compression)| {
            let path = dir.join(name);
            let mut w =
                BatchWriter::create(&path, *format, input[0].schema(), *compression).unwrap();
            for b in input {
                w.write(b).unwrap();
            }
            w.finish().unwrap();
            path
        })
        .collect()
}

/// All batches of a reader.
pub fn drain(
    r: impl Iterator<Item = Result<RecordBatch, arrow_schema::ArrowError>>,
) -> Vec<RecordBatch> {
    r.collect::<Result<_, _>>().unwrap()
}

/// One batch of all rows.
pub fn concat(batches: &[RecordBatch]) -> RecordBatch {
    arrow_select::concat::concat_batches(&batches[0].schema(), batches).unwrap()
}
