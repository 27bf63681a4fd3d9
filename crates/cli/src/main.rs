//! The `arrowfeed` command: inspect, print, convert and benchmark Parquet and Arrow IPC files.
//!
//! Errors print as one line, `error: <path>: <what went wrong>`, and exit with code 1; usage
//! errors exit with code 2.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod bench;
mod cat;
mod convert;
mod info;
mod touch;

/// Keeps Arrow data flowing: inspect, print, convert and benchmark Parquet and Arrow IPC files.
#[derive(Debug, Parser)]
#[command(name = "arrowfeed", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show a file's format, rows, columns, row groups or batches, size and compression.
    Info {
        /// A Parquet, Arrow IPC file or Arrow IPC stream file (detected from its bytes).
        path: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print rows as a table, CSV or JSON lines.
    Cat {
        /// The file to print.
        path: PathBuf,
        /// Print at most this many rows.
        #[arg(long)]
        limit: Option<u64>,
        /// Skip this many rows first.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Only these columns, in this order (comma-separated names).
        #[arg(long, value_delimiter = ',')]
        columns: Option<Vec<String>>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = CatFormat::Table)]
        format: CatFormat,
    },
    /// Convert one or more files (same schema) to Arrow IPC or Parquet; OUT's extension picks
    /// the format: .arrow (IPC file), .arrows (IPC stream), .parquet.
    Convert {
        /// Input files, read one after another.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// The output file.
        #[arg(long, short)]
        out: PathBuf,
        /// Compression of the output (default: none for IPC, snappy for Parquet).
        #[arg(long, value_enum)]
        compression: Option<CompressionArg>,
        /// Only these columns, in this order (comma-separated names).
        #[arg(long, value_delimiter = ',')]
        columns: Option<Vec<String>>,
        /// Print a JSON summary when done.
        #[arg(long)]
        json: bool,
    },
    /// Measure reading a file; every value byte is touched, so lazy decoding cannot fake it.
    Bench {
        /// The file to read.
        path: PathBuf,
        /// What to measure.
        #[arg(long, value_enum, default_value_t = BenchMode::Scan)]
        mode: BenchMode,
        /// Rows per batch (Parquet decodes in this size; longer IPC batches are split).
        #[arg(long)]
        batch_size: Option<usize>,
        /// Only these columns (comma-separated names).
        #[arg(long, value_delimiter = ',')]
        columns: Option<Vec<String>>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CatFormat {
    Table,
    Csv,
    Jsonl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CompressionArg {
    None,
    Lz4,
    Zstd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BenchMode {
    /// Read every batch in order.
    Scan,
}

/// A failure, with the exit code it maps to.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad input or an I/O problem: exit 1.
    Run(String),
    /// Bad usage: exit 2.
    Usage(String),
}

impl Failure {
    /// A runtime failure about `path`; the path is added unless the message already has it.
    pub(crate) fn at(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        let msg = e.to_string();
        let p = path.display().to_string();
        if msg.contains(&p) {
            Self::Run(msg)
        } else {
            Self::Run(format!("{p}: {msg}"))
        }
    }
}

pub(crate) type CliResult<T = ()> = Result<T, Failure>;

fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Info { path, json } => info::run(&path, json),
        Command::Cat {
            path,
            limit,
            offset,
            columns,
            format,
        } => cat::run(&path, limit, offset, columns, format),
        Command::Convert {
            inputs,
            out,
            compression,
            columns,
            json,
        } => convert::run(&inputs, &out, compression, columns, json),
        Command::Bench {
            path,
            mode: BenchMode::Scan,
            batch_size,
            columns,
            json,
        } => bench::scan(&path, batch_size, columns, json),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Run(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}
