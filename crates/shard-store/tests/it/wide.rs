//! One rule for wide columns: the schema a store reports is the schema of every batch it
//! returns, and says which string, binary and list columns are in their 64-bit types.

use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BinaryArray, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use arrowfeed_prefetch::{Loader, Remainder, Shuffle};
use arrowfeed_shard_store::{OpenOptions, ShardCompression, ShardStore, StoreWriter};
use arrowfeed_traits::{Error, RandomAccess};
use proptest::prelude::*;

use crate::common::*;

/// Per column of `all`, the offset units a gather of `rows` holds (value bytes for text and
/// image, list elements for tokens; 0 for the id).
fn units(all: &RecordBatch, rows: impl Iterator<Item = usize> + Clone) -> Vec<u64> {
    all.columns()
        .iter()
        .map(|c| {
            let len = |r: usize| match c.data_type() {
                DataType::Utf8 => c.as_string::<i32>().value_length(r) as u64,
                DataType::Binary => c.as_binary::<i32>().value_length(r) as u64,
                DataType::List(_) => c.as_list::<i32>().value_length(r) as u64,
                _ => 0,
            };
            rows.clone().map(len).sum()
        })
        .collect()
}

fn large(t: &DataType) -> DataType {
    match t {
        DataType::Utf8 => DataType::LargeUtf8,
        DataType::Binary => DataType::LargeBinary,
        DataType::List(f) => DataType::LargeList(f.clone()),
        other => other.clone(),
    }
}

/// `schema` with the columns marked `wide` in their large types.
fn widened(schema: &Schema, wide: &[bool]) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(wide)
        .map(|(f, &w)| {
            let t = if w {
                large(f.data_type())
            } else {
                f.data_type().clone()
            };
            f.as_ref().clone().with_data_type(t)
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `batch` cast to `schema`.
fn cast_to(batch: &RecordBatch, schema: &SchemaRef) -> RecordBatch {
    let cols: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| arrow_cast::cast(c, f.data_type()).unwrap())
        .collect();
    RecordBatch::try_new_with_options(
        schema.clone(),
        cols,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .unwrap()
}

fn rows_of(all: &RecordBatch, idx: &[u64], proj: Option<&[usize]>) -> RecordBatch {
    let rows: Vec<_> = idx.iter().map(|&i| all.slice(i as usize, 1)).collect();
    let b = arrow_select::concat::concat_batches(&all.schema(), &rows).unwrap();
    match proj {
        Some(p) => b.project(p).unwrap(),
        None => b,
    }
}

/// Every batch a Loader makes from `store` has the loader's schema, whose data columns are
/// the store's, under both remainder policies and with padding rows present.
fn loader_batches_keep_the_schema(store: &ShardStore, batch_size: usize) {
    for (remainder, rank) in [(Remainder::Drop, 0), (Remainder::Pad, 1)] {
        let loader = Loader::builder(Arc::new(store.clone()))
            .batch_size(batch_size)
            .shuffle(Shuffle::Global)
            .seed(3)
            .rank(rank, 2)
            .remainder(remainder)
            .workers(1)
            .build()
            .unwrap();
        let want = loader.schema();
        for (f, g) in store.schema().fields().iter().zip(want.fields()) {
            assert_eq!(f.data_type(), g.data_type(), "{remainder:?}");
        }
        for b in loader.epoch(0).unwrap() {
            assert_eq!(b.unwrap().schema(), want, "{remainder:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// With the offset limit lowered (so small stores have wide columns), the columns whose
    /// stored values pass it are in their large types in `schema()`, and every take, slice,
    /// shard iteration and Loader batch has exactly that schema and the input's values; a take
    /// that repeats rows past the limit of a column reported in its 32-bit type is an error
    /// naming it.
    #[test]
    fn every_batch_has_the_schema_the_store_reports(
        sizes in proptest::collection::vec(0usize..50, 1..5),
        shard_rows in 1u64..60,
        batch_rows in 1usize..25,
        lz4 in any::<bool>(),
        limit in 0u64..1500,
        picks in proptest::collection::vec(any::<prop::sample::Index>(), 0..60),
        proj in proptest::option::of(proptest::sample::subsequence(vec![0usize, 1, 2, 3], 0..4)),
        slice_at in any::<prop::sample::Index>(),
        slice_len in 0usize..120,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let batches = input(&sizes);
        let all = concat(&batches);
        let n = all.num_rows();
        let path = dir.path().join("store");
        let compression = if lz4 { ShardCompression::Lz4 } else { ShardCompression::None };
        write(&path, batches, &StoreWriter::new().shard_rows(shard_rows).batch_rows(batch_rows).compression(compression));
        let store = ShardStore::open_with(&path, OpenOptions::default().offset_limit(limit)).unwrap();

        let spans = units(&all, 0..n);
        let wide: Vec<bool> = spans.iter().map(|&s| s > limit).collect();
        let schema = widened(&all.schema(), &wide);
        prop_assert_eq!(store.schema(), schema.clone());
        let p = proj.as_deref();
        let projected = Arc::new(match p {
            Some(p) => schema.project(p).unwrap(),
            None => schema.as_ref().clone(),
        });

        let idx: Vec<u64> = if n == 0 { vec![] } else { picks.iter().map(|i| i.index(n) as u64).collect() };
        let asked = units(&all, idx.iter().map(|&i| i as usize));
        let columns: Vec<usize> = p.map_or_else(|| (0..4).collect(), <[usize]>::to_vec);
        let too_wide = columns.iter().find(|&&c| !wide[c] && asked[c] > limit);
        match (store.take(&idx, p), too_wide) {
            (Ok(b), None) => prop_assert_eq!(b, cast_to(&rows_of(&all, &idx, p), &projected)),
            (Err(Error::InvalidArgument { message }), Some(&c)) => {
                let name = all.schema().field(c).name().clone();
                prop_assert!(message.contains(&format!("{name:?}")), "{}", message);
            }
            (got, want) => prop_assert!(false, "take gave {:?}, expected too wide: {:?}", got.map(|b| b.schema()), want),
        }

        if n > 0 {
            let start = slice_at.index(n);
            let len = slice_len.min(n - start);
            let want = rows_of(&all, &(start as u64..(start + len) as u64).collect::<Vec<_>>(), p);
            prop_assert_eq!(store.slice(start as u64, len as u64, p).unwrap(), cast_to(&want, &projected));
        }
        for b in store.iter_shards(None) {
            prop_assert_eq!(b.unwrap().schema(), schema.clone());
        }
        loader_batches_keep_the_schema(&store, 7);
    }
}

/// A manifest written before spans were recorded: uncompressed shards' total size bounds
/// every span, and a compressed store (whose size bounds nothing) reports every string,
/// binary and list column wide. Hugging Face directories, which record no spans, follow the
/// same rule.
#[test]
fn without_recorded_spans_the_rule_is_conservative() {
    let dir = tempfile::tempdir().unwrap();
    let batches = input(&[200]);
    let all = concat(&batches);
    let stored = all.schema();
    let every = widened(&stored, &[false, true, true, true]);
    for compression in [ShardCompression::None, ShardCompression::Lz4] {
        let p = dir.path().join(format!("{compression:?}"));
        write(
            &p,
            batches.clone(),
            &StoreWriter::new().shard_rows(70).compression(compression),
        );
        let bytes = ShardStore::open(&p).unwrap().total_bytes().unwrap();
        edit_manifest(&p, |v| {
            for c in v["columns"].as_array_mut().unwrap() {
                c.as_object_mut().unwrap().remove("offset_span");
            }
        });
        let opened =
            |limit| ShardStore::open_with(&p, OpenOptions::default().offset_limit(limit)).unwrap();
        let (below, at) = match compression {
            ShardCompression::None => (stored.clone(), stored.clone()),
            _ => (every.clone(), every.clone()),
        };
        assert_eq!(
            opened(u64::from(i32::MAX as u32)).schema(),
            below,
            "{compression:?}"
        );
        assert_eq!(opened(bytes).schema(), at, "{compression:?}");
        assert_eq!(opened(bytes - 1).schema(), every, "{compression:?}");
        let s = opened(bytes - 1);
        assert_eq!(
            s.take(&[150, 3], None).unwrap(),
            cast_to(&rows_of(&all, &[150, 3], None), &every)
        );
    }

    for (name, codec, wide) in [
        ("hf", None, false),
        ("hf-lz4", Some(arrow_ipc::CompressionType::LZ4_FRAME), true),
    ] {
        let p = dir.path().join(name);
        let stream = ipc_stream(&batches, codec);
        hf_dir(&p, &stream);
        let bytes = stream.len() as u64;
        let s = ShardStore::open_with(&p, OpenOptions::default().offset_limit(bytes)).unwrap();
        assert_eq!(
            s.schema(),
            if wide { every.clone() } else { stored.clone() },
            "{name}"
        );
        let codec = if wide {
            ShardCompression::Lz4
        } else {
            ShardCompression::None
        };
        assert_eq!(s.compression(), codec, "{name}");
        let s = ShardStore::open_with(&p, OpenOptions::default().offset_limit(bytes - 1)).unwrap();
        assert_eq!(s.schema(), every, "{name}");
        assert_eq!(
            s.take(&[7, 199], None).unwrap(),
            cast_to(&rows_of(&all, &[7, 199], None), &every)
        );
    }
}

/// `offset_span` is a count or absent; a columns list that does not match the schema is
/// refused naming the manifest.
#[test]
fn a_malformed_span_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s");
    write(&p, input(&[20]), &StoreWriter::new());
    let text = std::fs::read_to_string(p.join("manifest.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["columns"][1]["offset_span"].as_u64().unwrap() > 0,
        "the writer records spans: {text}"
    );
    assert!(
        v["columns"][0].get("offset_span").is_none(),
        "but not for an Int64 column"
    );
    for (edit, says) in [
        (serde_json::json!(-1), "offset_span is not a count"),
        (serde_json::json!("12"), "offset_span is not a count"),
    ] {
        edit_manifest(&p, |v| v["columns"][1]["offset_span"] = edit.clone());
        let e = ShardStore::open(&p).unwrap_err().to_string();
        assert!(e.contains("manifest.json") && e.contains(says), "{e}");
    }
    edit_manifest(&p, |v| {
        v["columns"].as_array_mut().unwrap().pop();
    });
    let e = ShardStore::open(&p).unwrap_err().to_string();
    assert!(
        e.contains("columns lists 3 columns, the schema has 4"),
        "{e}"
    );
}

fn blobs(values: &[&[u8]]) -> RecordBatch {
    let col = Arc::new(BinaryArray::from_vec(values.to_vec()));
    RecordBatch::try_from_iter([("blob", col as ArrayRef)]).unwrap()
}

fn blob_lengths(b: &RecordBatch) -> Vec<usize> {
    let c = b.column(0).as_binary::<i64>();
    (0..c.len()).map(|i| c.value_length(i) as usize).collect()
}

/// With real data past 2 GiB: a column whose stored values pass `i32::MAX` bytes is
/// `LargeBinary` in the schema and in every batch, small or large, and through the Loader; one
/// whose values do not stays `Binary`, and a take repeating rows past 2 GiB of it is an error
/// naming the column, not a batch of another type.
#[test]
fn a_column_past_2_gib_is_large_in_the_schema_and_in_every_batch() {
    const BIG: usize = 1100 << 20;
    let dir = tempfile::tempdir().unwrap();
    let write_store = |p: &Path, batches: Vec<RecordBatch>| {
        let schema = batches[0].schema();
        arrowfeed_shard_store::write_batches(p, schema, batches, &StoreWriter::new().batch_rows(1))
            .unwrap();
        ShardStore::open(p).unwrap()
    };

    // 1.1 GB stored: Binary; repeating its big row past 2 GiB is refused.
    let big = vec![7u8; BIG];
    let narrow = write_store(&dir.path().join("narrow"), vec![blobs(&[&big, b"small"])]);
    drop(big);
    assert_eq!(narrow.schema().field(0).data_type(), &DataType::Binary);
    assert_eq!(
        narrow.take(&[1, 0], None).unwrap().schema(),
        narrow.schema()
    );
    match narrow.take(&[0, 1, 0], None) {
        Err(Error::InvalidArgument { message }) => {
            assert!(
                message.contains("\"blob\"") && message.contains("narrow"),
                "{message}"
            )
        }
        other => panic!("{:?}", other.map(|b| b.schema())),
    }
    drop(narrow);

    // 2.2 GB stored, in batches of one row: LargeBinary, whatever is asked.
    let big = vec![9u8; BIG];
    let p = dir.path().join("wide");
    let wide = write_store(&p, vec![blobs(&[&big]), blobs(&[b"x", &big])]);
    drop(big);
    assert_eq!(wide.schema().field(0).data_type(), &DataType::LargeBinary);
    let check = |b: RecordBatch, lengths: &[usize]| {
        assert_eq!(b.schema(), wide.schema());
        assert_eq!(blob_lengths(&b), lengths);
    };
    check(wide.take(&[1], None).unwrap(), &[1]);
    check(wide.get_row(0, None).unwrap(), &[BIG]);
    check(wide.slice(1, 1, None).unwrap(), &[1]);
    check(wide.slice(0, 3, None).unwrap(), &[BIG, 1, BIG]);
    check(wide.take(&[2, 1, 0], None).unwrap(), &[BIG, 1, BIG]);
    let x = wide.take(&[2, 1, 0], None).unwrap();
    let c = x.column(0).as_binary::<i64>();
    assert!(c.value(0).iter().all(|&v| v == 9) && c.value(1) == b"x");
    for b in wide.iter_shards(None) {
        assert_eq!(b.unwrap().schema(), wide.schema());
    }
    loader_batches_keep_the_schema(&wide, 1);
    drop((wide, x));

    // Without recorded spans the shards' 2.2 GB bound the column: still LargeBinary.
    edit_manifest(&p, |v| {
        v["columns"][0]
            .as_object_mut()
            .unwrap()
            .remove("offset_span");
    });
    let unrecorded = ShardStore::open(&p).unwrap();
    assert_eq!(
        unrecorded.schema().field(0).data_type(),
        &DataType::LargeBinary
    );
    drop(unrecorded);

    // A manifest that understates the span: Binary, and more than 2 GiB asked of it is an
    // error (not an overflow, not a LargeBinary batch).
    edit_manifest(&p, |v| {
        v["columns"][0]["offset_span"] = serde_json::json!(10)
    });
    let lying = ShardStore::open(&p).unwrap();
    assert_eq!(lying.schema().field(0).data_type(), &DataType::Binary);
    assert_eq!(lying.take(&[1, 0], None).unwrap().schema(), lying.schema());
    for got in [lying.take(&[2, 0], None), lying.slice(0, 3, None)] {
        assert!(
            matches!(got, Err(Error::InvalidArgument { .. })),
            "{:?}",
            got.map(|b| b.schema())
        );
    }
}
