//! `arrowfeed info`: what a file holds, as text or JSON.

use std::io::Write;
use std::path::Path;

use serde_json::json;

use crate::{CliResult, Failure};

fn store(path: &Path, as_json: bool) -> CliResult {
    use arrowfeed::traits::RandomAccess;
    let store = crate::input::open_store(path)?;
    let schema = store.schema();
    let columns: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| json!({"name": f.name(), "type": f.data_type().to_string(), "nullable": f.is_nullable()}))
        .collect();
    let shards = store.shard_rows();
    let text = if as_json {
        let v = json!({
            "path": path.display().to_string(),
            "format": store.format().name(),
            "rows": store.num_rows(),
            "columns": columns,
            "shards": shards.len(),
            "shard_rows": shards.iter().map(|(_, r)| r).collect::<Vec<_>>(),
            "file_bytes": store.total_bytes(),
            "compression": store.compression().name(),
        });
        format!("{v}\n")
    } else {
        let mut s = String::new();
        s += &format!("path:        {}\n", path.display());
        s += &format!("format:      {}\n", store.format().name());
        s += &format!("rows:        {}\n", crate::units::count(store.num_rows()));
        s += &format!("shards:      {}\n", shards.len());
        if let Some(b) = store.total_bytes() {
            s += &format!(
                "size:        {} ({} bytes)\n",
                crate::units::bytes(b),
                crate::units::count(b)
            );
        }
        s += &format!("compression: {}\n", store.compression());
        s += &format!("columns:     {}\n", schema.fields().len());
        for f in schema.fields() {
            s += &format!(
                "  {}: {}{}\n",
                f.name(),
                f.data_type(),
                if f.is_nullable() { "" } else { " not null" }
            );
        }
        s
    };
    crate::convert::write_stdout(&text)
}

pub(crate) fn run(path: &Path, as_json: bool) -> CliResult {
    if crate::input::is_store(path)? {
        return store(path, as_json);
    }
    let info = arrowfeed::info(path).map_err(|e| Failure::at(path, e))?;
    let columns: Vec<_> = info
        .schema
        .fields()
        .iter()
        .map(|f| json!({"name": f.name(), "type": f.data_type().to_string(), "nullable": f.is_nullable()}))
        .collect();
    let mut out = std::io::stdout().lock();
    let r = if as_json {
        let v = json!({
            "path": path.display().to_string(),
            "format": info.format.name(),
            "rows": info.rows,
            "columns": columns,
            "file_bytes": info.file_bytes,
            "unit": info.unit.name(),
            "units": info.unit_rows.len(),
            "unit_rows": info.unit_rows,
            "compression": info.compression,
            "created_by": info.created_by,
        });
        writeln!(out, "{v}")
    } else {
        let mut s = String::new();
        s += &format!("path:        {}\n", path.display());
        s += &format!("format:      {}\n", info.format);
        s += &format!(
            "rows:        {}\n",
            info.rows.map_or("unknown".into(), crate::units::count)
        );
        s += &format!(
            "{:<12} {}\n",
            format!("{}:", info.unit),
            info.unit_rows.len()
        );
        s += &format!(
            "size:        {} ({} bytes)\n",
            crate::units::bytes(info.file_bytes),
            crate::units::count(info.file_bytes)
        );
        s += &format!(
            "compression: {}\n",
            if info.compression.is_empty() {
                "none".into()
            } else {
                info.compression.join(", ")
            }
        );
        if let Some(c) = &info.created_by {
            s += &format!("created by:  {c}\n");
        }
        s += &format!("columns:     {}\n", info.schema.fields().len());
        for f in info.schema.fields() {
            s += &format!(
                "  {}: {}{}\n",
                f.name(),
                f.data_type(),
                if f.is_nullable() { "" } else { " not null" }
            );
        }
        out.write_all(s.as_bytes())
    };
    r.map_err(|e| Failure::Run(format!("<stdout>: {e}")))
}
