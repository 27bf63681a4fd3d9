//! `cargo xtask fuzz` and `cargo xtask asan`: libFuzzer over the untrusted-input readers, and
//! AddressSanitizer over the tests that drive the unsafe code. Both need nightly-only compiler
//! flags, which the pinned stable toolchain accepts under `RUSTC_BOOTSTRAP=1`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::{Result, cargo, ensure_cargo_tool, run};

const TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// The fuzz targets, as `fuzz/Cargo.toml` names them.
const TARGETS: [&str; 6] = [
    "parquet",
    "ipc",
    "snappy",
    "store",
    "hf_store",
    "loader_state",
];

/// What one target's run came to.
struct Outcome {
    target: &'static str,
    executions: u64,
    per_second: u64,
    corpus: usize,
    crashes: Vec<PathBuf>,
    dependency_panics: Vec<String>,
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.flatten().count())
}

fn stat(log: &str, name: &str) -> u64 {
    log.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}

/// `cargo xtask fuzz [--seconds N] [--jobs J] [TARGET...]`: builds every target, then runs each
/// for N seconds (default 600), J at a time (default 1), over its corpus in `fuzz/corpus`
/// seeded from `fuzz/seeds`. Prints executions and findings per target; fails if any target
/// crashed (the input is saved in `fuzz/artifacts/TARGET`; commit it to
/// `fuzz/findings/TARGET`, where the crates' tests replay it, once fixed).
pub(crate) fn fuzz(root: &Path, args: &[String]) -> Result {
    let (mut seconds, mut jobs, mut targets) = (600u64, 1usize, Vec::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |what: &str| {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{a} wants a {what}"))
        };
        match a.as_str() {
            "--seconds" => seconds = value("number of seconds")?,
            "--jobs" => jobs = value("number of parallel runs")?.max(1) as usize,
            t => targets.push(
                *TARGETS
                    .iter()
                    .find(|&&k| k == t)
                    .ok_or(format!("unknown fuzz target {t:?}; targets: {TARGETS:?}"))?,
            ),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    ensure_cargo_tool(root, "fuzz")?;
    run(
        root,
        cargo()
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "build", "--codegen-units", "16"]),
    )?;
    let fuzz = root.join("fuzz");
    let mut outcomes = Vec::new();
    for group in targets.chunks(jobs) {
        let running: Vec<(&'static str, Child)> = group
            .iter()
            .map(|&t| Ok((t, start(&fuzz, t, seconds)?)))
            .collect::<Result<_>>()?;
        for (t, mut child) in running {
            child.wait().map_err(|e| format!("fuzz target {t}: {e}"))?;
            let log_path = log_path(&fuzz, t);
            let log = std::fs::read_to_string(&log_path)
                .map_err(|e| format!("{}: {e}", log_path.display()))?;
            let artifacts = fuzz.join("artifacts").join(t);
            let crashes = std::fs::read_dir(&artifacts)
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            outcomes.push(Outcome {
                target: t,
                executions: stat(&log, "stat::number_of_executed_units:"),
                per_second: stat(&log, "stat::average_exec_per_sec:"),
                corpus: count_files(&fuzz.join("corpus").join(t)),
                crashes,
                dependency_panics: log
                    .lines()
                    .filter_map(|l| l.strip_prefix("guarded dependency panic at "))
                    .map(str::to_owned)
                    .collect(),
            });
        }
    }
    println!(
        "{:<14}{:>8}{:>14}{:>10}{:>9}{:>9}",
        "target", "seconds", "executions", "exec/s", "corpus", "crashes"
    );
    for o in &outcomes {
        println!(
            "{:<14}{seconds:>8}{:>14}{:>10}{:>9}{:>9}",
            o.target,
            o.executions,
            o.per_second,
            o.corpus,
            o.crashes.len()
        );
    }
    for o in &outcomes {
        for p in &o.dependency_panics {
            println!(
                "{}: a dependency panicked (our guard made it an error) at {p}",
                o.target
            );
        }
        for c in &o.crashes {
            println!("{}: CRASH {}", o.target, c.display());
        }
    }
    let crashed: Vec<_> = outcomes
        .iter()
        .filter(|o| !o.crashes.is_empty())
        .map(|o| o.target)
        .collect();
    if crashed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fuzz targets crashed: {crashed:?} (logs in fuzz/artifacts)"
        ))
    }
}

/// Where target `t`'s run writes libFuzzer's output.
fn log_path(fuzz: &Path, t: &str) -> PathBuf {
    fuzz.join("artifacts").join(format!("{t}.log"))
}

/// Starts target `t` for `seconds` over its corpus and seeds, its output to its log (a file,
/// not a pipe: a pipe nobody reads while another target runs fills up and stalls it).
fn start(fuzz: &Path, t: &str, seconds: u64) -> Result<Child> {
    let corpus = fuzz.join("corpus").join(t);
    let artifacts = fuzz.join("artifacts").join(t);
    for d in [&corpus, &artifacts] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let bin = fuzz.join("target").join(TRIPLE).join("release").join(t);
    let mut prefix = artifacts.into_os_string();
    prefix.push("/");
    let mut cmd = Command::new(&bin);
    cmd.arg(&corpus)
        .arg(fuzz.join("seeds").join(t))
        .arg(format!("-max_total_time={seconds}"))
        .arg("-print_final_stats=1")
        .arg("-rss_limit_mb=2048")
        .arg("-timeout=10")
        .arg({
            let mut a = std::ffi::OsString::from("-artifact_prefix=");
            a.push(prefix);
            a
        })
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log_path(fuzz, t)).map_err(|e| format!("{t} log: {e}"))?);
    eprintln!("$ {}", format!("{cmd:?}").replace('"', ""));
    cmd.spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))
}

/// `cargo xtask asan`: the tests of the crates with unsafe code (the snappy and flat Parquet
/// decoders and the memory maps of core-source, the shard store's maps and spill's replay)
/// built with AddressSanitizer, in `target/asan`. The standard library is not rebuilt, so
/// ASan sees our code and our dependencies.
pub(crate) fn asan(root: &Path) -> Result {
    run(
        root,
        cargo()
            .env("RUSTC_BOOTSTRAP", "1")
            .env("RUSTFLAGS", "-Zsanitizer=address")
            .env("RUSTDOCFLAGS", "-Zsanitizer=address")
            // Leaks are not what this looks for; proptest's and the engines' threads outlive
            // some tests by design.
            .env("ASAN_OPTIONS", "detect_leaks=0")
            .args(["test", "--target", TRIPLE, "--target-dir"])
            .arg(root.join("target/asan"))
            .args([
                "-p",
                "arrowfeed-core-source",
                "-p",
                "arrowfeed-shard-store",
                "-p",
                "arrowfeed-spill",
                "--lib",
                "--test",
                "it",
            ]),
    )
}
