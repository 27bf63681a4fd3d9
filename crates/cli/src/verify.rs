//! `arrowfeed verify`: every shard against its checksum.

use std::path::Path;

use serde_json::json;

use crate::{CliResult, Failure};

pub(crate) fn run(path: &Path, as_json: bool) -> CliResult {
    if !crate::input::is_store(path)? {
        return Err(Failure::at(
            path,
            "verify checks a shard store (a directory, or a remote prefix with a manifest.json)",
        ));
    }
    let store = crate::input::open_store(path)?;
    let report = store.verify().map_err(|e| Failure::at(path, e))?;
    if as_json {
        let bad: Vec<_> = report
            .bad
            .iter()
            .map(|b| json!({"shard": b.file, "problem": b.problem.to_string()}))
            .collect();
        let leftovers: Vec<_> = report
            .leftovers
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let v = json!({"path": path.display().to_string(), "ok": report.is_ok(), "shards": report.checked, "bytes": report.bytes, "bad": bad, "leftovers": leftovers});
        crate::convert::write_stdout(&format!("{v}\n"))?;
    } else {
        let mut s = String::new();
        for b in &report.bad {
            s += &format!("BAD {}: {}\n", b.file, b.problem);
        }
        for p in &report.leftovers {
            s += &format!(
                "LEFTOVER {}: a killed write's directory; the next write of this store removes it\n",
                p.display()
            );
        }
        s += &format!(
            "{} shards, {} checked, {} bad\n",
            report.checked,
            crate::units::bytes(report.bytes),
            report.bad.len()
        );
        crate::convert::write_stdout(&s)?;
    }
    if report.is_ok() {
        Ok(())
    } else {
        let names: Vec<&str> = report.bad.iter().map(|b| b.file.as_str()).collect();
        Err(Failure::at(
            path,
            format!("{} bad shard(s): {}", names.len(), names.join(", ")),
        ))
    }
}
