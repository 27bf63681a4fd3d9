//! The `arrowfeed` command: inspect, print, convert and benchmark Parquet and Arrow IPC files.
//!
//! Errors print as one line, `error: <path>: <what went wrong>`, and exit with code 1; usage
//! errors exit with code 2.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its place in `mi_option_e`, the same in v2 and v3).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// Keeps freed memory for 10 s before giving it back to the OS. A scan frees decoded batches
/// on the consumer's thread while decode threads allocate the next ones; with mimalloc's 1 s
/// default the memory went back mid-scan and came back as fresh, zeroed pages.
fn keep_freed_memory() {
    return_freed_memory_after(arrowfeed::decode_sched::freed_memory_delay_ms(
        arrowfeed::decode_sched::DEFAULT_MEMORY_BUDGET,
    ));
}

/// Sets how long mimalloc keeps freed memory before giving it back to the OS, in
/// milliseconds.
fn return_freed_memory_after(ms: u64) {
    let ms = std::ffi::c_long::try_from(ms).unwrap_or(std::ffi::c_long::MAX);
    // SAFETY: mi_option_set stores a number in mimalloc's option table; any value is valid.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ms) };
}

mod bench;
mod cat;
mod convert;
mod demo;
mod info;
mod input;
mod take;
mod touch;
mod units;
mod verify;

/// Keeps Arrow data flowing: inspect, print, convert and benchmark Parquet and Arrow IPC files
/// and shard stores, and feed training loops. Start with `arrowfeed demo`.
///
/// Every path may be a URL: s3://bucket/key, gs://, az://, abfs://, https://, file://
/// (credentials and endpoints from the environment: AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, ...).
#[derive(Debug, Parser)]
#[command(name = "arrowfeed", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Where remote stores' shards are cached (default: $ARROWFEED_CACHE_DIR, else
    /// ~/.cache/arrowfeed).
    #[arg(long, global = true)]
    cache_dir: Option<PathBuf>,
    /// Bytes the shard cache may hold on disk, e.g. 20GiB (default: $ARROWFEED_CACHE_LIMIT,
    /// else 16GiB).
    #[arg(long, global = true, value_parser = parse_size)]
    cache_limit: Option<u64>,
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
        /// The file, shard store or Hugging Face directory to print (local or a URL).
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
    /// Convert files (same schema), a shard store or a Hugging Face directory to Arrow IPC,
    /// Parquet or a shard store. `--to` picks the format, or else OUT's extension: .arrow (IPC
    /// file), .arrows (IPC stream), .parquet; a directory or any other name makes a shard store.
    Convert {
        /// Input files, or one store / Hugging Face directory.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// The output file or store directory.
        #[arg(long, short)]
        out: PathBuf,
        /// The output format; without it, OUT's extension decides (.arrow, .arrows, .parquet),
        /// and a directory or any other name (train.store, data/train) makes a shard store.
        #[arg(long, value_enum)]
        to: Option<ToArg>,
        /// Compression of the output (default: none for IPC and stores, snappy for Parquet).
        #[arg(long, value_enum)]
        compression: Option<CompressionArg>,
        /// Target shard size for a store output, e.g. 256MiB, 1GB, 500000000.
        #[arg(long, value_parser = parse_size, default_value = "256MiB")]
        shard_size: u64,
        /// Replace an existing store at OUT.
        #[arg(long)]
        overwrite: bool,
        /// Only these columns, in this order (comma-separated names).
        #[arg(long, value_delimiter = ',')]
        columns: Option<Vec<String>>,
        /// Print a JSON summary when done.
        #[arg(long)]
        json: bool,
    },
    /// Gather rows by index from a store, a Hugging Face directory or a file, into a file.
    Take {
        /// A store or Hugging Face directory, or a Parquet / Arrow IPC file (read into memory).
        path: PathBuf,
        /// Row indices, comma-separated, in the output order (duplicates allowed).
        #[arg(
            long,
            value_delimiter = ',',
            conflicts_with = "random",
            required_unless_present = "random"
        )]
        indices: Option<Vec<u64>>,
        /// Take this many uniformly random rows instead.
        #[arg(long)]
        random: Option<u64>,
        /// Seed for --random.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Only these columns, in this order (comma-separated names).
        #[arg(long, value_delimiter = ',')]
        columns: Option<Vec<String>>,
        /// The output file: .arrow, .arrows or .parquet.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Check every shard of a store against its checksum; exit 1 naming the bad shards.
    Verify {
        /// A store or Hugging Face directory.
        path: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The first run: generate an ML-shaped dataset, write it as Parquet, convert it to a shard
    /// store, and train two shuffled epochs through the Loader with a simulated step.
    Demo {
        /// Where to put the files (default: a new temporary directory, removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Rows to generate.
        #[arg(long, default_value_t = 100_000)]
        rows: u64,
        /// Print one JSON object instead of the report.
        #[arg(long)]
        json: bool,
    },
    /// Measure reading; every value byte is touched, so lazy decoding cannot fake it.
    Bench {
        /// The file, store or Hugging Face directory to read.
        path: PathBuf,
        /// What to measure: scan (read everything in order) or take (random gathers).
        #[arg(long, value_enum, default_value_t = BenchMode::Scan)]
        mode: BenchMode,
        /// Rows per batch (scan: default 8192, or fewer when that many would take more than
        /// an eighth of the memory budget; Parquet decodes in this size, longer IPC batches are
        /// split; take: rows per gather, default 256).
        #[arg(long)]
        batch_size: Option<usize>,
        /// take: gathers to run.
        #[arg(long, default_value_t = 2000)]
        batches: usize,
        /// take: seed of the random indices; epoch: the shuffle seed.
        #[arg(long, default_value_t = 12345)]
        seed: u64,
        /// epoch: which epoch.
        #[arg(long, default_value_t = 0)]
        epoch: u64,
        /// epoch: worker threads gathering batches.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// epoch: the order of the rows.
        #[arg(long, value_enum, default_value_t = ShuffleArg::Global)]
        shuffle: ShuffleArg,
        /// epoch: partitions per window of the local shuffle.
        #[arg(long, default_value_t = 4)]
        window: usize,
        /// epoch: this rank (with --world-size).
        #[arg(long, default_value_t = 0)]
        rank: u64,
        /// epoch: number of ranks.
        #[arg(long, default_value_t = 1)]
        world_size: u64,
        /// Only these columns (comma-separated names).
        #[arg(long, value_delimiter = ',')]
        columns: Option<Vec<String>>,
        /// scan: how Parquet and Arrow IPC files are read: the scan engine (parallel I/O and
        /// decode), or one reader on this thread.
        #[arg(long, value_enum, default_value_t = EngineArg::Sched)]
        engine: EngineArg,
        /// scan (engine): requests in flight.
        #[arg(long, default_value_t = 8)]
        io_parallelism: usize,
        /// scan (engine): decode threads (default: the number of CPUs).
        #[arg(long)]
        decode_parallelism: Option<usize>,
        /// scan (engine): MiB the scan may hold (decoded batches waiting, decoding, and
        /// fetched bytes unless the file is memory-mapped). Below 256, the process also gives
        /// up transparent huge pages, so that its memory is counted in small pages.
        #[arg(long, default_value_t = 256)]
        memory_budget_mib: usize,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EngineArg {
    /// The scan engine (arrowfeed-decode-sched).
    Sched,
    /// One reader, decoding on the calling thread.
    Reader,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CatFormat {
    Table,
    Csv,
    Jsonl,
}

/// `convert --to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ToArg {
    /// Arrow IPC file.
    Arrow,
    /// Arrow IPC stream.
    Arrows,
    /// Apache Parquet.
    Parquet,
    /// A shard store directory.
    Store,
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
    /// Gather batches of uniformly random rows.
    Take,
    /// One epoch through the Loader.
    Epoch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ShuffleArg {
    /// Storage order.
    None,
    /// Exact global shuffle.
    Global,
    /// Shuffled shards, rows shuffled within windows of --window shards.
    Local,
}

/// Parses sizes such as `256MiB`, `1GB`, `64k` or `1000`.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as 256MiB or 1GB"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("unknown size unit {other:?} in {s:?}")),
    };
    let v = n * mult;
    if !(1.0..=1e15).contains(&v) {
        return Err(format!("size {s:?} is out of range"));
    }
    Ok(v as u64)
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
    input::set_cache(cli.cache_dir, cli.cache_limit);
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
            to,
            compression,
            shard_size,
            overwrite,
            columns,
            json,
        } => convert::run(
            &inputs,
            &out,
            to,
            compression,
            shard_size,
            overwrite,
            columns,
            json,
        ),
        Command::Take {
            path,
            indices,
            random,
            seed,
            columns,
            out,
        } => take::run(&path, indices, random, seed, columns, &out),
        Command::Verify { path, json } => verify::run(&path, json),
        Command::Bench {
            path,
            mode: BenchMode::Scan,
            batch_size,
            columns,
            engine,
            io_parallelism,
            decode_parallelism,
            memory_budget_mib,
            json,
            ..
        } => {
            let args = bench::ScanArgs {
                batch_size,
                columns,
                engine: (engine == EngineArg::Sched).then_some(bench::EngineSettings {
                    io_parallelism,
                    decode_parallelism,
                    memory_budget: memory_budget_mib.saturating_mul(1 << 20),
                }),
            };
            bench::scan(&path, args, json)
        }
        Command::Bench {
            path,
            mode: BenchMode::Take,
            batch_size,
            batches,
            seed,
            columns,
            json,
            ..
        } => bench::take(
            &path,
            batch_size.unwrap_or(256),
            batches,
            seed,
            columns,
            json,
        ),
        Command::Bench {
            path,
            mode: BenchMode::Epoch,
            batch_size,
            seed,
            epoch,
            workers,
            shuffle,
            window,
            rank,
            world_size,
            columns,
            json,
            ..
        } => {
            let shuffle = match shuffle {
                ShuffleArg::None => arrowfeed::prefetch::Shuffle::None,
                ShuffleArg::Global => arrowfeed::prefetch::Shuffle::Global,
                ShuffleArg::Local => arrowfeed::prefetch::Shuffle::Local { window },
            };
            let args = bench::EpochArgs {
                batch_size: batch_size.unwrap_or(256),
                seed,
                epoch,
                workers,
                shuffle,
                rank,
                world_size,
                columns,
            };
            bench::epoch(&path, args, json)
        }
        Command::Demo { dir, rows, json } => demo::run(dir, rows, json),
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    // A decoder that panics on a damaged file prints nothing: the `error:` line names the
    // file and what failed. Any other panic reports as usual.
    arrowfeed::traits::quiet_guarded_panics();
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
