//! `cargo xtask tidy`: the layering and manifest rules of docs/architecture.md, read from
//! `cargo metadata` and the sources, each failure saying which rule broke and where.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::Result;

/// The crates that may depend only on the vocabulary, never on each other.
const FEATURE_CRATES: [&str; 6] = [
    "arrowfeed-core-source",
    "arrowfeed-prefetch",
    "arrowfeed-spill",
    "arrowfeed-shard-store",
    "arrowfeed-decode-sched",
    "arrowfeed-object-store",
];
/// The one crate that carries the HTTP stack; every other reaches remote bytes through the
/// traits (`ByteSource`, `ObjectDir`).
const OBJECT_STORE: &str = "arrowfeed-object-store";
/// Crates that are the HTTP stack.
const HTTP_STACK: [&str; 4] = ["object_store", "reqwest", "hyper", "rustls"];
const TRAITS: &str = "arrowfeed-traits";
const FACADE: &str = "arrowfeed";
const CLI: &str = "arrowfeed-cli";
/// Lines past which a source file under `src/` must give its reason here: a file that long
/// usually holds more than one concern.
const MAX_LINES: usize = 800;
/// The files allowed past [`MAX_LINES`], each with why it is one concern or what splitting it
/// waits for. An entry for a file back under the limit is itself a violation, so the list
/// stays true.
const LONG_FILES: [(&str, &str); 3] = [
    (
        "crates/core-source/src/flat.rs",
        "one decoder (fixed-width Parquet pages) whose unsafe fast paths and their property tests belong together",
    ),
    (
        "crates/traits/src/ipc.rs",
        "the one checked IPC layer (footer, stream walk, buffer checks) and the tests of each check",
    ),
    (
        "crates/shard-store/src/cache.rs",
        "the shard cache: locks, reservations, downloads and eviction share one on-disk protocol",
    ),
];
/// Crates that would make the vocabulary carry an async runtime.
const RUNTIMES: [&str; 4] = ["tokio", "async-std", "smol", "async-executor"];

pub(crate) fn run(root: &Path) -> Result {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let meta: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))?;
    let mut problems = Vec::new();
    check_packages(&meta, &mut problems);
    check_sources(root, &mut problems);
    if problems.is_empty() {
        eprintln!("tidy: all rules hold");
        Ok(())
    } else {
        for p in &problems {
            eprintln!("tidy: {p}");
        }
        Err(format!("{} rule violation(s)", problems.len()))
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn check_packages(meta: &Value, problems: &mut Vec<String>) {
    let empty = Vec::new();
    let packages = meta
        .get("packages")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let internal: Vec<&str> = packages
        .iter()
        .map(|p| str_of(p, "name"))
        .filter(|n| n.starts_with("arrowfeed"))
        .collect();
    for p in packages {
        let name = str_of(p, "name");
        if name == "xtask" {
            continue;
        }
        let manifest = str_of(p, "manifest_path");
        let dir = Path::new(manifest)
            .parent()
            .and_then(Path::file_name)
            .and_then(|d| d.to_str())
            .unwrap_or_default();
        let expected = match dir {
            "arrowfeed" => FACADE.to_string(),
            d => format!("arrowfeed-{d}"),
        };
        if name != expected {
            problems.push(format!(
                "[naming] crates/{dir} must publish as {expected}, not {name}"
            ));
        }
        if !name.starts_with("arrowfeed") {
            continue;
        }
        let deps = p
            .get("dependencies")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        for d in deps {
            let dep = str_of(d, "name");
            let kind = d.get("kind").and_then(Value::as_str); // null = normal, "dev", "build"
            let is_internal = internal.contains(&dep);
            let req = str_of(d, "req");
            if is_internal && kind != Some("dev") && (req == "*" || req.is_empty()) {
                problems.push(format!("[versioned] {name} depends on {dep} without a version; every internal dependency needs one so each crate publishes on its own"));
            }
            if is_internal && kind == Some("dev") && req != "*" {
                problems.push(format!("[versioned] {name}'s dev-dependency on {dep} carries a version ({req}); internal dev-dependencies are path-only so publishing does not need them"));
            }
            if kind == Some("dev") {
                continue;
            }
            if name == TRAITS && is_internal {
                problems.push(format!("[layering] {TRAITS} must depend on no other arrowfeed crate, but depends on {dep}"));
            }
            if name == TRAITS && RUNTIMES.contains(&dep) {
                problems.push(format!(
                    "[layering] {TRAITS} must not pull in an async runtime, but depends on {dep}"
                ));
            }
            if FEATURE_CRATES.contains(&name) && is_internal && dep != TRAITS {
                problems.push(format!("[layering] feature crate {name} may depend only on {TRAITS} among the arrowfeed crates, but depends on {dep}; composition belongs in the facade or the CLI"));
            }
            if name != OBJECT_STORE && HTTP_STACK.contains(&dep) {
                problems.push(format!("[layering] {name} depends on {dep}; only {OBJECT_STORE} carries the HTTP stack, the others read remote bytes through ByteSource and ObjectDir"));
            }
            if name == FACADE && (dep == CLI || dep == FACADE) {
                problems.push(format!("[layering] the facade must not depend on {dep}"));
            }
        }
        if FEATURE_CRATES.contains(&name)
            && !deps
                .iter()
                .any(|d| str_of(d, "name") == TRAITS && d.get("kind").is_some_and(Value::is_null))
        {
            problems.push(format!(
                "[layering] feature crate {name} must depend on {TRAITS}"
            ));
        }
        check_manifest(name, Path::new(manifest), problems);
    }
}

/// Manifest habits: inherited lints, and a `##` doc comment above every feature.
fn check_manifest(name: &str, path: &Path, problems: &mut Vec<String>) {
    let Ok(text) = std::fs::read_to_string(path) else {
        problems.push(format!("[manifest] cannot read {}", path.display()));
        return;
    };
    if !text.contains("[lints]\nworkspace = true") {
        problems.push(format!("[manifest] {name} ({}) must inherit the workspace lints with `[lints] workspace = true`", path.display()));
    }
    let mut in_features = false;
    let mut prev = "";
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_features = t == "[features]";
        } else if in_features && !t.is_empty() && !t.starts_with('#') {
            let feature = t.split('=').next().unwrap_or_default().trim();
            if feature != "default" && !prev.starts_with("##") {
                problems.push(format!("[manifest] feature `{feature}` of {name} needs a `##` comment above it saying what it enables"));
            }
        }
        if !t.is_empty() {
            prev = t;
        }
    }
}

/// Every Rust file opens with a `//!` comment saying what lives there.
fn check_sources(root: &Path, problems: &mut Vec<String>) {
    let mut long: Vec<String> = Vec::new();
    let mut stack = vec![root.join("crates"), root.join("xtask")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "target") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let first = text
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .unwrap_or_default();
                if !first.starts_with("//!") {
                    problems.push(format!(
                        "[module-docs] {} must open with a `//!` line saying what lives there",
                        p.strip_prefix(root).unwrap_or(&p).display()
                    ));
                }
                let rel = p
                    .strip_prefix(root)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .replace('\\', "/");
                let lines = text.lines().count();
                if rel.contains("/src/") && lines > MAX_LINES {
                    if LONG_FILES.iter().any(|(f, _)| *f == rel) {
                        long.push(rel.clone());
                    } else {
                        problems.push(format!(
                            "[file-size] {rel} has {lines} lines (more than {MAX_LINES}): split it by concern, or give the reason in tidy's LONG_FILES"
                        ));
                    }
                }
                if p.file_name().is_some_and(|n| n == "mod.rs") {
                    problems.push(format!(
                        "[module-docs] {}: no mod.rs files; name the module file after the module",
                        p.display()
                    ));
                }
            }
        }
    }
    for (f, _) in LONG_FILES {
        if !long.iter().any(|l| l == f) {
            problems.push(format!(
                "[file-size] {f} is in LONG_FILES but is not over {MAX_LINES} lines (or is gone): remove its entry"
            ));
        }
    }
}
