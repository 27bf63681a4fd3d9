//! Data generators and writers shared by the tests.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Int32Builder, ListBuilder};
use arrow_array::types::Int32Type;
use arrow_array::*;
use arrow_ipc::writer::{FileWriter, IpcWriteOptions, StreamWriter};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

/// Column types the generators cover.
#[derive(Debug, Clone, Copy)]
pub enum Col {
    Int64,
    Float64,
    Bool,
    Utf8,
    LargeUtf8,
    Binary,
    ListInt32,
    Struct,
    DictUtf8,
    Date32,
    TimestampTz,
}

pub const ALL: [Col; 11] = [
    Col::Int64,
    Col::Float64,
    Col::Bool,
    Col::Utf8,
    Col::LargeUtf8,
    Col::Binary,
    Col::ListInt32,
    Col::Struct,
    Col::DictUtf8,
    Col::Date32,
    Col::TimestampTz,
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn null(&mut self) -> bool {
        self.next().is_multiple_of(7)
    }
}

fn struct_fields() -> Fields {
    Fields::from(vec![
        Field::new("a", DataType::Int32, true),
        Field::new("b", DataType::Utf8, true),
    ])
}

pub fn data_type(c: Col) -> DataType {
    match c {
        Col::Int64 => DataType::Int64,
        Col::Float64 => DataType::Float64,
        Col::Bool => DataType::Boolean,
        Col::Utf8 => DataType::Utf8,
        Col::LargeUtf8 => DataType::LargeUtf8,
        Col::Binary => DataType::Binary,
        Col::ListInt32 => DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true))),
        Col::Struct => DataType::Struct(struct_fields()),
        Col::DictUtf8 => DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
        Col::Date32 => DataType::Date32,
        Col::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("+02:00".into())),
    }
}

pub fn schema(cols: &[Col]) -> SchemaRef {
    Arc::new(Schema::new(
        cols.iter()
            .enumerate()
            .map(|(i, c)| Field::new(format!("c{i}_{c:?}"), data_type(*c), true))
            .collect::<Vec<_>>(),
    ))
}

fn text(r: &mut Rng) -> String {
    let n = (r.next() % 12) as usize;
    (0..n)
        .map(|_| char::from(b'a' + (r.next() % 26) as u8))
        .collect::<String>()
        + if r.next().is_multiple_of(5) { "é" } else { "" }
}

pub fn array(c: Col, n: usize, seed: u64) -> ArrayRef {
    let mut r = Rng(seed ^ 0x9e3779b97f4a7c15);
    match c {
        Col::Int64 => Arc::new(Int64Array::from_iter(
            (0..n).map(|_| (!r.null()).then(|| r.next() as i64 - (1 << 30))),
        )),
        Col::Float64 => Arc::new(Float64Array::from_iter(
            (0..n).map(|_| (!r.null()).then(|| r.next() as f64 / 7.0)),
        )),
        Col::Bool => Arc::new(BooleanArray::from_iter(
            (0..n).map(|_| (!r.null()).then(|| r.next().is_multiple_of(2))),
        )),
        Col::Utf8 => Arc::new(StringArray::from_iter(
            (0..n).map(|_| (!r.null()).then(|| text(&mut r))),
        )),
        Col::LargeUtf8 => Arc::new(LargeStringArray::from_iter(
            (0..n).map(|_| (!r.null()).then(|| text(&mut r))),
        )),
        Col::Binary => Arc::new(BinaryArray::from_iter(
            (0..n).map(|_| (!r.null()).then(|| text(&mut r).into_bytes())),
        )),
        Col::ListInt32 => {
            let mut b = ListBuilder::new(Int32Builder::new());
            for _ in 0..n {
                if r.null() {
                    b.append_null();
                } else {
                    for _ in 0..r.next() % 5 {
                        if r.null() {
                            b.values().append_null();
                        } else {
                            b.values().append_value(r.next() as i32);
                        }
                    }
                    b.append(true);
                }
            }
            Arc::new(b.finish())
        }
        Col::Struct => {
            let a = Int32Array::from_iter((0..n).map(|_| (!r.null()).then(|| r.next() as i32)));
            let s = StringArray::from_iter((0..n).map(|_| (!r.null()).then(|| text(&mut r))));
            // Struct nulls only where the children are null too, so every format round-trips them.
            let valid: Vec<bool> = (0..n).map(|i| !(a.is_null(i) && s.is_null(i))).collect();
            Arc::new(StructArray::new(
                struct_fields(),
                vec![Arc::new(a), Arc::new(s)],
                Some(valid.into()),
            ))
        }
        Col::DictUtf8 => {
            // The same dictionary in every batch: the IPC file format allows no replacement.
            let keys =
                Int32Array::from_iter((0..n).map(|_| (!r.null()).then(|| (r.next() % 4) as i32)));
            let values = StringArray::from(vec!["red", "green", "blue", "ünï"]);
            Arc::new(DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values)).unwrap())
        }
        Col::Date32 => Arc::new(Date32Array::from_iter(
            (0..n).map(|_| (!r.null()).then(|| (r.next() % 40000) as i32)),
        )),
        Col::TimestampTz => Arc::new(
            TimestampMicrosecondArray::from_iter(
                (0..n).map(|_| (!r.null()).then(|| r.next() as i64)),
            )
            .with_timezone("+02:00"),
        ),
    }
}

pub fn batch(cols: &[Col], n: usize, seed: u64) -> RecordBatch {
    let schema = schema(cols);
    let arrays = cols
        .iter()
        .enumerate()
        .map(|(i, c)| array(*c, n, seed.wrapping_add(i as u64 * 1000)))
        .collect();
    RecordBatch::try_new_with_options(
        schema,
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(n)),
    )
    .unwrap()
}

/// `batch` split into pieces of the given sizes (cycled).
pub fn batches(cols: &[Col], sizes: &[usize], seed: u64) -> Vec<RecordBatch> {
    sizes
        .iter()
        .enumerate()
        .map(|(k, &n)| batch(cols, n, seed.wrapping_add(k as u64 * 77)))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    Parquet,
    IpcFile,
    IpcStream,
    IpcFileLz4,
    IpcStreamZstd,
}

pub const OUTS: [Out; 5] = [
    Out::Parquet,
    Out::IpcFile,
    Out::IpcStream,
    Out::IpcFileLz4,
    Out::IpcStreamZstd,
];

pub fn write(path: &Path, out: Out, schema: &SchemaRef, batches: &[RecordBatch]) {
    let f = File::create(path).unwrap();
    let opts = |c| IpcWriteOptions::default().try_with_compression(c).unwrap();
    match out {
        Out::Parquet => {
            let props = parquet::file::properties::WriterProperties::builder()
                .set_max_row_group_row_count(Some(50))
                .build();
            write_parquet(path, schema, batches, props);
        }
        Out::IpcFile | Out::IpcFileLz4 => {
            let c = (out == Out::IpcFileLz4).then_some(arrow_ipc::CompressionType::LZ4_FRAME);
            let mut w = FileWriter::try_new_with_options(f, schema, opts(c)).unwrap();
            for b in batches {
                w.write(b).unwrap();
            }
            w.finish().unwrap();
        }
        Out::IpcStream | Out::IpcStreamZstd => {
            let c = (out == Out::IpcStreamZstd).then_some(arrow_ipc::CompressionType::ZSTD);
            let mut w = StreamWriter::try_new_with_options(f, schema, opts(c)).unwrap();
            for b in batches {
                w.write(b).unwrap();
            }
            w.finish().unwrap();
        }
    }
}

/// Writes `batches` to a Parquet file at `path` with `props`.
pub fn write_parquet(
    path: &Path,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    props: parquet::file::properties::WriterProperties,
) {
    let f = File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, schema.clone(), Some(props)).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
}

pub fn concat(schema: &SchemaRef, batches: &[RecordBatch]) -> RecordBatch {
    arrow_select::concat::concat_batches(schema, batches).unwrap()
}

/// Opens and drains `path`, returning every batch or the arrowfeed error.
pub fn read_all(path: &Path) -> Result<Vec<RecordBatch>, arrowfeed_traits::Error> {
    let src = arrowfeed_core_source::open(path)?;
    src.map(|b| b.map_err(arrowfeed_traits::Error::from_arrow))
        .collect()
}

/// The parquet crate's own reading of `path` (its `ParquetRecordBatchReader`, nothing of
/// ours): the reference the plans are held to. `columns` in the order given, as the plans
/// give them.
pub fn parquet_reference(path: &Path, columns: Option<&[String]>) -> Vec<RecordBatch> {
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let file_schema = builder.schema().clone();
    let Some(names) = columns else {
        let reader = builder.build().unwrap();
        return reader.collect::<Result<_, _>>().unwrap();
    };
    let mut roots: Vec<usize> = names
        .iter()
        .map(|n| file_schema.index_of(n).unwrap())
        .collect();
    roots.sort_unstable();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots.iter().copied());
    let reader = builder.with_projection(mask).build().unwrap();
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
    // The reader gives the columns in file order; put them in the order asked for.
    batches
        .into_iter()
        .map(|b| {
            let order: Vec<usize> = names
                .iter()
                .map(|n| b.schema().index_of(n).unwrap())
                .collect();
            b.project(&order).unwrap()
        })
        .collect()
}
