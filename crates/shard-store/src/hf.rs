//! Hugging Face `save_to_disk` directories: `state.json` names the shards, each an Arrow IPC
//! stream; opening reads their message headers only.

use std::path::Path;
use std::sync::Arc;

use arrow_schema::{Schema, SchemaRef};
use arrowfeed_traits::{Error, Result};
use serde_json::Value;

use crate::manifest::ShardCompression;
use crate::shard::{ShardKind, scan_stream};
use crate::store::{Parts, ShardMeta, StoreFormat};

/// Opens a Hugging Face `save_to_disk` directory: `state.json` lists the shard files.
pub(crate) fn open_hf(dir: &Path) -> Result<Parts> {
    let state_path = dir.join("state.json");
    let text = std::fs::read_to_string(&state_path).map_err(|e| Error::io(&state_path, e))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| Error::corrupt_with(&state_path, "not valid JSON", e))?;
    let files = v
        .get("_data_files")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::corrupt(&state_path, "no _data_files list"))?;
    let mut schema: Option<SchemaRef> = None;
    let mut shards = Vec::new();
    let mut bytes = 0u64;
    let mut compression = ShardCompression::None;
    for (i, f) in files.iter().enumerate() {
        let name = f.get("filename").and_then(Value::as_str).ok_or_else(|| {
            Error::corrupt(&state_path, format!("_data_files[{i}] has no filename"))
        })?;
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(Error::corrupt(
                &state_path,
                format!("_data_files[{i}]: {name:?} leaves the directory"),
            ));
        }
        let path = dir.join(name);
        let scan = scan_stream(&path)?;
        let (s, rows) = (scan.schema, scan.rows);
        bytes = bytes.saturating_add(scan.bytes);
        if compression == ShardCompression::None {
            compression = scan.compression;
        }
        match &schema {
            None => schema = Some(s),
            Some(first) if first.fields() != s.fields() => {
                return Err(Error::corrupt(
                    &path,
                    format!("schema {s:?} differs from the first shard's {first:?}"),
                ));
            }
            Some(_) => {}
        }
        shards.push(ShardMeta {
            file: name.to_string(),
            path,
            rows,
            bytes: None,
            xxh3: None,
        });
    }
    let stored = schema.unwrap_or_else(|| Arc::new(Schema::empty()));
    Ok(Parts {
        format: StoreFormat::HuggingFace,
        spans: vec![None; stored.fields().len()],
        stored,
        kind: ShardKind::Stream,
        shards,
        compression,
        // The state records no spans; uncompressed shards' sizes bound them.
        unrecorded: match compression {
            ShardCompression::None => bytes,
            _ => u64::MAX,
        },
    })
}
