//! Project automation, run as `cargo xtask <command>`: needs nothing but cargo, rustc and (for
//! `interop`) python3.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

mod fuzz;
mod services;
mod tidy;

use services::S3Server;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  ci               everything CI runs, in order: fmt, tidy, clippy, test, doc, interop, deny, package
  fmt              cargo fmt --check
  tidy             layering and manifest rules (see docs/architecture.md)
  clippy           clippy on all targets and features, warnings denied
  test             the workspace's tests (starts an S3 server on loopback for them)
  doc              rustdoc with warnings denied
  interop          pyarrow-written files through the arrowfeed CLI, from disk and from S3
                   (makes a venv under target/, starts an S3 server)
  python           pip install ./crates/python into that venv, then its pytest suite
  deny             cargo deny check bans licenses sources (installs cargo-deny if missing)
  deny-advisories  cargo deny check advisories (needs the advisory database from the network)
  package          publish dry-run of every crate, in dependency order
  fuzz             libFuzzer over every fuzz target in fuzz/ [--seconds N] [--jobs J] [TARGET...]
                   (installs cargo-fuzz if missing; RUSTC_BOOTSTRAP=1)
  asan             the tests driving unsafe code under AddressSanitizer (RUSTC_BOOTSTRAP=1)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let root = project_root();
    let mut ctx = Ctx::default();
    let result = match cmd.as_str() {
        "ci" => ci(&root),
        "fmt" => fmt(&root),
        "tidy" => tidy::run(&root),
        "clippy" => clippy(&root),
        "test" => test(&root, &mut ctx),
        "doc" => doc(&root),
        "interop" => interop(&root, &mut ctx),
        "python" => python(&root, &mut ctx),
        "deny" => deny(&root, &["bans", "licenses", "sources"]),
        "deny-advisories" => deny(&root, &["advisories"]),
        "package" => package(&root),
        "fuzz" => fuzz::fuzz(&root, &args[1..]),
        "asan" => fuzz::asan(&root),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => {
            eprintln!("unknown command {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(s3) = &ctx.s3 {
                eprintln!("\n{}", s3.diagnose());
            }
            eprintln!("xtask {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, String>;

/// What steps share: the S3 server, started by the first step that needs it and stopped when
/// the run ends (or fails).
#[derive(Default)]
struct Ctx {
    s3: Option<S3Server>,
}

impl Ctx {
    fn s3(&mut self, root: &Path) -> Result<&S3Server> {
        if self.s3.is_none() {
            self.s3 = Some(S3Server::start(root)?);
        }
        Ok(self.s3.as_ref().expect("started above"))
    }
}

/// One step of `ci`.
type Step = fn(&Path, &mut Ctx) -> Result;

fn project_root() -> PathBuf {
    // `cargo run` sets CARGO_MANIFEST_DIR for the running binary; prefer it over the path baked
    // in at compile time, which is another checkout's when two share a target directory.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(root: &Path, cmd: &mut Command) -> Result {
    cmd.current_dir(root);
    eprintln!("$ {}", format!("{cmd:?}").replace('"', ""));
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

fn ci(root: &Path) -> Result {
    let steps: [(&str, Step); 9] = [
        ("fmt", |r, _| fmt(r)),
        ("tidy", |r, _| tidy::run(r)),
        ("clippy", |r, _| clippy(r)),
        ("test", test),
        ("doc", |r, _| doc(r)),
        ("interop", interop),
        ("python", python),
        ("deny", |r, _| deny(r, &["bans", "licenses", "sources"])),
        ("package", |r, _| package(r)),
    ];
    let all = Instant::now();
    let mut times = Vec::new();
    let mut ctx = Ctx::default();
    for (name, step) in steps {
        eprintln!("\n==> {name}");
        let t = Instant::now();
        if let Err(e) = step(root, &mut ctx) {
            if let Some(s3) = &ctx.s3 {
                eprintln!("\n{}", s3.diagnose());
            }
            return Err(format!("step {name}: {e}"));
        }
        times.push((name, t.elapsed().as_secs_f64()));
    }
    drop(ctx);
    eprintln!("\nci passed in {:.0} s:", all.elapsed().as_secs_f64());
    for (name, s) in times {
        eprintln!("  {name:<8} {s:>6.0} s");
    }
    Ok(())
}

fn fmt(root: &Path) -> Result {
    run(root, cargo().args(["fmt", "--all", "--", "--check"]))
}

fn clippy(root: &Path) -> Result {
    run(
        root,
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
    )
}

/// The workspace's tests, with an S3 server on loopback for those that read object storage
/// (they fail, rather than pass, without it: `ARROWFEED_REQUIRE_S3=1`).
fn test(root: &Path, ctx: &mut Ctx) -> Result {
    let s3 = ctx.s3(root)?;
    run(
        root,
        s3.apply(&mut cargo())
            .args(["test", "--workspace", "--all-features"]),
    )
}

fn doc(root: &Path) -> Result {
    run(
        root,
        cargo()
            .args(["doc", "--workspace", "--no-deps", "--all-features"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )
}

/// Builds the CLI, makes a Python venv with pyarrow under `target/`, and runs
/// `xtask/interop.py`, which writes files of every type pyarrow can write and checks what the
/// CLI does with them.
fn interop(root: &Path, ctx: &mut Ctx) -> Result {
    // The same features as the test build, so the binary it made is reused.
    run(
        root,
        cargo().args(["build", "--package", "arrowfeed-cli", "--all-features"]),
    )?;
    let target = services::target_dir(root);
    let python = services::venv(root)?;
    let s3 = ctx.s3(root)?;
    let bin = target.join("debug/arrowfeed");
    run(
        root,
        s3.apply(&mut Command::new(&python))
            .arg(root.join("xtask/interop.py"))
            .arg(bin),
    )?;
    shared_bench_data(root, &target, &python)
}

/// Generates a small set of the shared benchmark data (`../shared/bench/gen_data.py`, the
/// generator the peer figures use) and runs the tests that compare the scan engine with the
/// parquet and arrow-ipc readers on it.
fn shared_bench_data(root: &Path, target: &Path, python: &Path) -> Result {
    let generator = root.join("../shared/bench/gen_data.py");
    if !generator.exists() {
        eprintln!(
            "note: {} not found; the shared-data equality test ran only on the in-repository sample",
            generator.display()
        );
        return Ok(());
    }
    let out = target.join("bench-small");
    if !out.join("manifest.json").exists() {
        run(
            root,
            Command::new(python)
                .arg(&generator)
                .args(["--out"])
                .arg(&out)
                .args([
                    "--rows",
                    "16000",
                    "--tpch-rows",
                    "100000",
                    "--only",
                    "parquet,ipc,tpch",
                ]),
        )?;
    }
    run(
        root,
        cargo()
            .args([
                "test",
                "--workspace",
                "--all-features",
                "--test",
                "it",
                "--",
                "--ignored",
                "shared_bench",
            ])
            .env("ARROWFEED_BENCH_DATA", &out),
    )
}

/// `pip install ./crates/python` into the venv, as a user installs the package (maturin as
/// the PEP 517 backend), then the package's pytest suite against the S3 server. The wheel is
/// built with the dev profile, whose dependencies the test step has already compiled
/// (`[profile.dev.package."*"]` optimises them); a user's `pip install` builds release.
fn python(root: &Path, ctx: &mut Ctx) -> Result {
    let python = services::venv(root)?;
    run(
        root,
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--force-reinstall",
                "--no-deps",
            ])
            .arg(root.join("crates/python"))
            .env("MATURIN_PEP517_ARGS", "--profile dev"),
    )?;
    let s3 = ctx.s3(root)?;
    run(
        root,
        s3.apply(&mut Command::new(&python))
            .args(["-m", "pytest", "-q", "-rs"])
            .arg(root.join("crates/python/tests")),
    )
}

/// Installs the cargo subcommand `sub` (the crate `cargo-SUB`) unless it is there already.
fn ensure_cargo_tool(root: &Path, sub: &str) -> Result {
    let have = cargo()
        .args([sub, "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if have {
        return Ok(());
    }
    run(
        root,
        cargo().args(["install", "--locked", &format!("cargo-{sub}")]),
    )
}

fn deny(root: &Path, checks: &[&str]) -> Result {
    ensure_cargo_tool(root, "deny")?;
    run(
        root,
        cargo()
            .args(["deny", "--all-features", "check"])
            .args(checks),
    )
}

/// Cargo unpacks the packages it verifies against into `$CARGO_HOME/registry/src/<overlay>/`
/// and reuses an unpacked crate of the same name and version on the next run, even when its
/// contents changed. Our crates are not on crates.io, so every unpacked `arrowfeed*` source
/// there is a stale copy from an earlier dry run: remove them.
fn forget_packaged_sources() -> Result {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let Ok(registries) = std::fs::read_dir(home.join("registry/src")) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        let Ok(crates) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for c in crates.flatten() {
            if c.file_name().to_string_lossy().starts_with("arrowfeed") {
                std::fs::remove_dir_all(c.path())
                    .map_err(|e| format!("cannot remove stale {}: {e}", c.path().display()))?;
            }
        }
    }
    Ok(())
}

/// Cargo treats registry crates as immutable, so a dependency packaged again under the same
/// version is not rebuilt: the verify step would link a stale build from an earlier dry run in
/// the same target directory. Removing the fingerprints of our crates makes cargo rebuild them
/// (only them; the heavy dependencies stay cached).
fn forget_packaged_builds(root: &Path) -> Result {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let Ok(entries) = std::fs::read_dir(target.join("debug/.fingerprint")) else {
        return Ok(());
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with("arrowfeed") {
            std::fs::remove_dir_all(e.path())
                .map_err(|err| format!("cannot remove {}: {err}", e.path().display()))?;
        }
    }
    Ok(())
}

/// `cargo publish --dry-run` of the whole workspace: cargo packages the crates in dependency
/// order and builds each from its package, resolving the internal ones against the packages
/// it just made, so this needs only the crates.io index.
fn package(root: &Path) -> Result {
    forget_packaged_sources()?;
    forget_packaged_builds(root)?;
    run(
        root,
        cargo().args([
            "publish",
            "--dry-run",
            "--workspace",
            "--exclude",
            "xtask",
            "--allow-dirty",
        ]),
    )
}
