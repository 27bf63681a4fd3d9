//! `manifest.json`: the format name and version, the schema, and each shard's rows, bytes and
//! checksum. Parsed defensively: a manifest is input like any other.

use std::path::Path;
use std::sync::Arc;

use arrow_schema::{Schema, SchemaRef};
use arrowfeed_traits::{Error, Result};
use serde_json::{Value, json};

/// The value of the manifest's `format` field.
pub const FORMAT_NAME: &str = "arrowfeed-shard-store";
/// The manifest version this crate writes and reads.
pub const FORMAT_VERSION: u64 = 1;
/// The manifest's file name inside a store directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// One shard, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardEntry {
    /// File name inside the store directory (no directories).
    pub file: String,
    /// Rows in the shard.
    pub rows: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// xxh3-64 of the whole file.
    pub xxh3: u64,
}

/// Compression of shard files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ShardCompression {
    /// None (the default): shards are read zero-copy from a memory map, so `take` touches only
    /// the bytes of the rows it gathers.
    #[default]
    None,
    /// LZ4 frame: smaller files, but every batch touched by a read is decompressed whole, which
    /// makes random access much slower.
    Lz4,
    /// Zstandard: smallest, slowest to read at random.
    Zstd,
}

impl ShardCompression {
    /// Its name in the manifest and on the command line: `none`, `lz4` or `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }

    /// The compression called `name` ([`name`](Self::name)'s inverse).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::None, Self::Lz4, Self::Zstd]
            .into_iter()
            .find(|c| c.name() == name)
    }
}

impl std::fmt::Display for ShardCompression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed, validated manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The schema of every shard.
    pub schema: SchemaRef,
    /// Shard compression.
    pub compression: ShardCompression,
    /// The shards, in row order.
    pub shards: Vec<ShardEntry>,
    /// Per column of the schema, its offset span when recorded: for each top-level `Utf8`,
    /// `Binary` and `List` column, the sum over all batches of last offset minus first (value
    /// bytes, or list elements). It decides which columns the store reports in their large
    /// type; `None` for other columns and in manifests written before spans were recorded.
    pub column_spans: Vec<Option<u64>>,
}

impl Manifest {
    /// Total rows.
    pub fn rows(&self) -> u64 {
        self.shards.iter().map(|s| s.rows).sum()
    }

    pub(crate) fn to_json(&self) -> Result<String> {
        let shards: Vec<Value> = self
            .shards
            .iter()
            .map(|s| json!({"file": s.file, "rows": s.rows, "bytes": s.bytes, "xxh3": format!("{:016x}", s.xxh3)}))
            .collect();
        let columns: Vec<Value> = self
            .schema
            .fields()
            .iter()
            .enumerate()
            .map(|(c, f)| {
                let mut v = json!({"name": f.name(), "type": f.data_type().to_string()});
                if let Some(span) = self.column_spans.get(c).copied().flatten() {
                    v["offset_span"] = json!(span);
                }
                v
            })
            .collect();
        let v = json!({
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "rows": self.rows(),
            "compression": self.compression.name(),
            "columns": columns,
            "schema_ipc_hex": hex(&schema_bytes(&self.schema)?),
            "shards": shards,
        });
        serde_json::to_string_pretty(&v)
            .map_err(|e| Error::external(arrowfeed_traits::Location::none(), e))
    }

    /// Parses and validates `text`, the manifest of the store at `dir`.
    pub(crate) fn parse(dir: &Path, text: &str) -> Result<Self> {
        let at = dir.join(MANIFEST_FILE);
        let bad = |m: String| Error::corrupt(&at, m);
        let v: Value = serde_json::from_str(text)
            .map_err(|e| Error::corrupt_with(&at, "not valid JSON", e))?;
        let format = v.get("format").and_then(Value::as_str).unwrap_or_default();
        if format != FORMAT_NAME {
            return Err(bad(format!(
                "format is {format:?}, expected {FORMAT_NAME:?}"
            )));
        }
        match v.get("version").and_then(Value::as_u64) {
            Some(FORMAT_VERSION) => {}
            other => {
                return Err(bad(format!(
                    "unsupported version {other:?}; this reader knows version {FORMAT_VERSION}"
                )));
            }
        }
        let schema_hex = v
            .get("schema_ipc_hex")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no schema_ipc_hex".into()))?;
        let schema_bytes =
            unhex(schema_hex).ok_or_else(|| bad("schema_ipc_hex is not hex".into()))?;
        let schema = arrow_ipc::convert::try_schema_from_ipc_buffer(&schema_bytes)
            .map_err(|e| Error::corrupt_with(&at, "the schema does not decode", e))?;
        let name = v
            .get("compression")
            .and_then(Value::as_str)
            .unwrap_or("none");
        let compression = ShardCompression::from_name(name)
            .ok_or_else(|| bad(format!("unknown compression {name:?}")))?;
        let list = v
            .get("shards")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no shards list".into()))?;
        let mut shards = Vec::with_capacity(list.len());
        for (i, s) in list.iter().enumerate() {
            let file = s
                .get("file")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("shard {i} has no file")))?;
            check_file_name(file).map_err(|m| bad(format!("shard {i}: {m}")))?;
            let num = |k: &str| {
                s.get(k)
                    .and_then(Value::as_u64)
                    .ok_or_else(|| bad(format!("shard {i} ({file}) has no {k}")))
            };
            let xxh3 = s
                .get("xxh3")
                .and_then(Value::as_str)
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad(format!("shard {i} ({file}) has no valid xxh3 checksum")))?;
            shards.push(ShardEntry {
                file: file.to_string(),
                rows: num("rows")?,
                bytes: num("bytes")?,
                xxh3,
            });
        }
        let total: u64 = shards
            .iter()
            .try_fold(0u64, |a, s| a.checked_add(s.rows))
            .ok_or_else(|| bad("row counts overflow".into()))?;
        if let Some(rows) = v.get("rows").and_then(Value::as_u64)
            && rows != total
        {
            return Err(bad(format!(
                "rows is {rows}, but the shards add up to {total}"
            )));
        }
        let mut names: Vec<&str> = shards.iter().map(|s| s.file.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(bad(format!("shard file {} is listed twice", w[0])));
        }
        let column_spans = match v.get("columns") {
            None => vec![None; schema.fields().len()],
            Some(list) => {
                let list = list
                    .as_array()
                    .ok_or_else(|| bad("columns is not a list".into()))?;
                if list.len() != schema.fields().len() {
                    return Err(bad(format!(
                        "columns lists {} columns, the schema has {}",
                        list.len(),
                        schema.fields().len()
                    )));
                }
                list.iter()
                    .enumerate()
                    .map(|(c, col)| match col.get("offset_span") {
                        None => Ok(None),
                        Some(n) => n
                            .as_u64()
                            .map(Some)
                            .ok_or_else(|| bad(format!("columns[{c}].offset_span is not a count"))),
                    })
                    .collect::<Result<Vec<_>>>()?
            }
        };
        Ok(Self {
            schema: Arc::new(schema),
            compression,
            shards,
            column_spans,
        })
    }
}

/// A shard file name must name a file directly inside the store: no separators, no `..`.
fn check_file_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.starts_with('.')
        && !Path::new(name).is_absolute()
        && name != MANIFEST_FILE;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "file name {name:?} leaves the store directory or is not a plain file name"
        ))
    }
}

/// The schema as an IPC schema message (an IPC stream with no batches).
fn schema_bytes(schema: &Schema) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, schema)?;
    w.finish()?;
    drop(w);
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_cannot_leave_the_directory() {
        for bad in [
            "",
            ".",
            "..",
            "../x.arrow",
            "/etc/passwd",
            "a/b.arrow",
            "a\\b",
            ".hidden",
            "manifest.json",
        ] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_file_name("shard-00001.arrow").is_ok());
    }

    #[test]
    fn hex_round_trips() {
        let b: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&b)).unwrap(), b);
        assert!(unhex("abc").is_none() && unhex("zz").is_none());
    }
}
