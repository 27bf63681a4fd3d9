//! `arrowfeed convert`: any supported input(s) to Arrow IPC file, IPC stream or Parquet.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrowfeed::shard_store::{ShardCompression, StoreWriter};
use arrowfeed::source::{BatchWriter, Format, WriteCompression};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::{CliResult, CompressionArg, Failure, ToArg};

/// The file format OUT is written in, or `None` for a shard store: `--to` when given; else a
/// store for an existing directory, a URL ending in `/`, or a name whose extension is no file
/// format's (`train.store`, `data/train`); else the format its extension names.
fn output_format(out: &Path, to: Option<ToArg>) -> Option<Format> {
    match to {
        Some(ToArg::Store) => None,
        Some(ToArg::Arrow) => Some(Format::ArrowFile),
        Some(ToArg::Arrows) => Some(Format::ArrowStream),
        Some(ToArg::Parquet) => Some(Format::Parquet),
        None => {
            let s = out.to_string_lossy();
            let dir = if arrowfeed::is_url(&s) {
                s.ends_with('/')
            } else {
                out.is_dir()
            };
            if dir {
                None
            } else {
                BatchWriter::format_for(out).ok()
            }
        }
    }
}

/// Where a file output is written: OUT itself, or for a URL a local file next to the system's
/// temporary files, uploaded when complete.
struct FileTarget {
    local: PathBuf,
    url: Option<String>,
    _staging: Option<tempfile::TempDir>,
}

impl FileTarget {
    fn new(out: &Path) -> CliResult<Self> {
        let s = out.to_string_lossy();
        if !arrowfeed::is_url(&s) {
            return Ok(Self {
                local: out.to_path_buf(),
                url: None,
                _staging: None,
            });
        }
        let staging = tempfile::Builder::new()
            .prefix(".arrowfeed-upload-")
            .tempdir()
            .map_err(|e| Failure::Run(format!("<temporary directory>: {e}")))?;
        let name = s.rsplit('/').next().unwrap_or("out");
        Ok(Self {
            local: staging.path().join(name),
            url: Some(s.into_owned()),
            _staging: Some(staging),
        })
    }

    /// Uploads the finished file when OUT is a URL.
    fn publish(&self, out: &Path) -> CliResult {
        if let Some(url) = &self.url {
            arrowfeed::upload(&self.local, url).map_err(|e| Failure::at(out, e))?;
        }
        Ok(())
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one argument per command-line option"
)]
pub(crate) fn run(
    inputs: &[PathBuf],
    out: &Path,
    to: Option<ToArg>,
    compression: Option<CompressionArg>,
    shard_size: u64,
    overwrite: bool,
    columns: Option<Vec<String>>,
    as_json: bool,
) -> CliResult {
    let Some(format) = output_format(out, to) else {
        return to_store(
            inputs,
            out,
            compression,
            shard_size,
            overwrite,
            columns,
            as_json,
        );
    };
    let compression = match compression {
        None => WriteCompression::Default,
        Some(CompressionArg::None) => WriteCompression::None,
        Some(CompressionArg::Lz4) => WriteCompression::Lz4,
        Some(CompressionArg::Zstd) => WriteCompression::Zstd,
    };
    let first = &inputs[0];
    let source = crate::input::sequential(inputs, columns)?;
    let schema = source.schema();

    let progress = progress_bar(inputs);
    let started = Instant::now();
    let target = FileTarget::new(out)?;
    let mut writer = BatchWriter::create(&target.local, format, schema, compression)
        .map_err(|e| Failure::at(out, e))?;
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
    let bytes = std::fs::metadata(&target.local)
        .map(|m| m.len())
        .unwrap_or(0);
    target.publish(out)?;
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    let seconds = started.elapsed().as_secs_f64();
    if as_json {
        let v = json!({"out": out.display().to_string(), "format": format.name(), "rows": rows,
                       "batches": batches, "file_bytes": bytes, "seconds": seconds});
        write_stdout(&format!("{v}\n"))
    } else {
        eprintln!(
            "wrote {} rows in {} batches to {} ({format}, {}) in {seconds:.2} s",
            crate::units::count(rows),
            crate::units::count(batches),
            out.display(),
            crate::units::bytes(bytes)
        );
        Ok(())
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one argument per command-line option"
)]
fn to_store(
    inputs: &[PathBuf],
    out: &Path,
    compression: Option<CompressionArg>,
    shard_size: u64,
    overwrite: bool,
    columns: Option<Vec<String>>,
    as_json: bool,
) -> CliResult {
    let first = &inputs[0];
    let source = crate::input::sequential(inputs, columns)?;
    let writer = StoreWriter::new()
        .shard_bytes(shard_size)
        .overwrite(overwrite)
        .compression(match compression {
            None | Some(CompressionArg::None) => ShardCompression::None,
            Some(CompressionArg::Lz4) => ShardCompression::Lz4,
            Some(CompressionArg::Zstd) => ShardCompression::Zstd,
        });
    let progress = progress_bar(inputs);
    let started = Instant::now();
    let manifest = arrowfeed::write_store(out, source, &writer, |rows| {
        if let Some(p) = &progress {
            p.set_position(rows);
        }
    })
    .map_err(|e| match e {
        arrowfeed::Error::InvalidArgument { .. } | arrowfeed::Error::Io { .. } => {
            Failure::at(out, e)
        }
        e => Failure::at(first, e),
    })?;
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    let seconds = started.elapsed().as_secs_f64();
    let bytes: u64 = manifest.shards.iter().map(|s| s.bytes).sum();
    if as_json {
        let v = json!({"out": out.display().to_string(), "format": arrowfeed::shard_store::FORMAT_NAME, "rows": manifest.rows(),
                       "shards": manifest.shards.len(), "file_bytes": bytes, "seconds": seconds});
        write_stdout(&format!("{v}\n"))
    } else {
        eprintln!(
            "wrote {} rows in {} shards to {} ({}) in {seconds:.2} s",
            crate::units::count(manifest.rows()),
            manifest.shards.len(),
            out.display(),
            crate::units::bytes(bytes)
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
        .map(|p| {
            if crate::input::is_store(p).unwrap_or(false) {
                crate::input::open_store(p)
                    .map(|s| arrowfeed::traits::RandomAccess::num_rows(&s))
                    .unwrap_or(0)
            } else {
                arrowfeed::info(p).ok().and_then(|i| i.rows).unwrap_or(0)
            }
        })
        .sum();
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {human_pos}/{human_len} rows ({rate} rows/s, eta {eta})",
        )
        .expect("the template is valid")
        .with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&crate::units::si(state.per_sec()));
            },
        )
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}
