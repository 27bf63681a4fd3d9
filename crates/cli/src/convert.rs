//! `arrowfeed convert`: any supported input(s) to Arrow IPC file, IPC stream or Parquet.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrowfeed::ReadOptions;
use arrowfeed::source::{BatchWriter, WriteCompression};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::{CliResult, CompressionArg, Failure};

pub(crate) fn run(
    inputs: &[PathBuf],
    out: &Path,
    compression: Option<CompressionArg>,
    columns: Option<Vec<String>>,
    as_json: bool,
) -> CliResult {
    let format = BatchWriter::format_for(out)
        .map_err(|e| Failure::Usage(e.to_string().replace("invalid argument: ", "")))?;
    let compression = match compression {
        None => WriteCompression::Default,
        Some(CompressionArg::None) => WriteCompression::None,
        Some(CompressionArg::Lz4) => WriteCompression::Lz4,
        Some(CompressionArg::Zstd) => WriteCompression::Zstd,
    };
    let mut options = ReadOptions::default();
    options.columns = columns;
    let first = &inputs[0];
    let source = arrowfeed::open_many(inputs, &options).map_err(|e| Failure::at(first, e))?;
    let schema = arrow_array::RecordBatchReader::schema(&source);

    let progress = progress_bar(inputs);
    let started = Instant::now();
    let mut writer =
        BatchWriter::create(out, format, schema, compression).map_err(|e| Failure::at(out, e))?;
    let mut rows = 0u64;
    let mut batches = 0u64;
    for batch in source {
        let batch = batch.map_err(|e| {
            let e = arrowfeed::Error::from_arrow(e);
            Failure::at(first, e)
        })?;
        writer.write(&batch).map_err(|e| Failure::at(out, e))?;
        rows += batch.num_rows() as u64;
        batches += 1;
        if let Some(p) = &progress {
            p.inc(batch.num_rows() as u64);
        }
    }
    writer.finish().map_err(|e| Failure::at(out, e))?;
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    let seconds = started.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    if as_json {
        let v = json!({"out": out.display().to_string(), "format": format.name(), "rows": rows,
                       "batches": batches, "file_bytes": bytes, "seconds": seconds});
        write_stdout(&format!("{v}\n"))
    } else {
        eprintln!(
            "wrote {rows} rows in {batches} batches to {} ({format}, {bytes} bytes) in {seconds:.2} s",
            out.display()
        );
        Ok(())
    }
}

pub(crate) fn write_stdout(s: &str) -> CliResult {
    use std::io::Write;
    std::io::stdout()
        .lock()
        .write_all(s.as_bytes())
        .map_err(|e| Failure::Run(format!("<stdout>: {e}")))
}

/// A bar over the total rows, shown only when stderr is a terminal and the row counts are
/// cheap to learn (Parquet and IPC file footers; streams would need a pass of their own).
fn progress_bar(inputs: &[PathBuf]) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let total: u64 = inputs
        .iter()
        .map(|p| arrowfeed::info(p).ok().and_then(|i| i.rows).unwrap_or(0))
        .sum();
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {human_pos}/{human_len} rows ({per_sec}, eta {eta})",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}
