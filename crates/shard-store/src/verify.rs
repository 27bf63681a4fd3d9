//! `verify`: recompute every checksum and report each bad shard by name.

use std::io::Read;

use arrowfeed_traits::Result;

use crate::shard::{LoadMode, ShardKind, decode, load_bytes};
use crate::store::{ShardStore, StoreFormat};

/// What [`ShardStore::verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Shards checked.
    pub checked: usize,
    /// Bytes read.
    pub bytes: u64,
    /// Each bad shard, with what is wrong with it.
    pub bad: Vec<BadShard>,
    /// Hidden directories beside a local store that killed writes of it left (no writer
    /// holds them): the next write of the store removes them. They do not make the store bad.
    pub leftovers: Vec<std::path::PathBuf>,
}

/// A shard [`ShardStore::verify`] found bad.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BadShard {
    /// Its file name.
    pub file: String,
    /// What is wrong with it.
    pub problem: ShardProblem,
}

/// What is wrong with a shard. `Display` gives the sentence `arrowfeed verify` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShardProblem {
    /// It could not be opened or read: the error, as text.
    Unreadable(String),
    /// Its size is not the manifest's.
    Size {
        /// Bytes found.
        found: u64,
        /// Bytes the manifest records.
        recorded: u64,
    },
    /// Its xxh3 checksum is not the manifest's.
    Checksum {
        /// The checksum of the bytes found.
        found: u64,
        /// The checksum the manifest records.
        recorded: u64,
    },
    /// It does not decode (Hugging Face directories, which record no checksums): the error,
    /// as text.
    Undecodable(String),
}

impl std::fmt::Display for ShardProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreadable(e) | Self::Undecodable(e) => f.write_str(e),
            Self::Size { found, recorded } => {
                write!(f, "{found} bytes, the manifest says {recorded}")
            }
            Self::Checksum { found, recorded } => write!(
                f,
                "checksum mismatch: xxh3 {found:016x}, the manifest says {recorded:016x}"
            ),
        }
    }
}

impl VerifyReport {
    /// True when every shard checked out.
    pub fn is_ok(&self) -> bool {
        self.bad.is_empty()
    }
}

impl ShardStore {
    /// Reads every shard and checks it: size and xxh3 checksum against the manifest for
    /// arrowfeed stores; a full decode for Hugging Face directories, which record no checksums.
    /// Problems are collected per shard, not returned as the first error.
    ///
    /// # Errors
    /// None for damaged shards (they are in the report); reserved for failures to run at all.
    ///
    /// A remote store's shards are read from object storage (not from the cache), so what is
    /// checked is what every later download gets.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let objects = self.objects();
        for meta in self.shard_metas() {
            report.checked += 1;
            let problem = match (self.format(), &objects) {
                (StoreFormat::Arrowfeed, Some(objects)) => check_remote(
                    objects.as_ref(),
                    &meta.file,
                    meta.bytes,
                    meta.xxh3,
                    &mut report.bytes,
                ),
                (StoreFormat::Arrowfeed, None) => {
                    check_checksum(&meta.path, meta.bytes, meta.xxh3, &mut report.bytes)
                }
                _ => load_bytes(&meta.path, None, LoadMode::Read, false)
                    .and_then(|b| {
                        report.bytes += b.len() as u64;
                        decode(
                            &meta.path,
                            &b,
                            ShardKind::Stream,
                            &arrowfeed_traits::RandomAccess::schema(self),
                        )
                    })
                    .err()
                    .map(|e| ShardProblem::Undecodable(e.to_string())),
            };
            if let Some(problem) = problem {
                report.bad.push(BadShard {
                    file: meta.file.clone(),
                    problem,
                });
            }
        }
        if objects.is_none()
            && let (Some(parent), Some(name)) = (self.dir().parent(), self.dir().file_name())
        {
            let parent = if parent.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                parent
            };
            report.leftovers = crate::writer::abandoned(parent, &name.to_string_lossy());
        }
        Ok(report)
    }
}

/// [`check_checksum`] of the object `name` under `objects`, read in 8 MiB requests.
fn check_remote(
    objects: &dyn arrowfeed_traits::ObjectDir,
    name: &str,
    bytes: Option<u64>,
    xxh3: Option<u64>,
    read: &mut u64,
) -> Option<ShardProblem> {
    use futures::executor::block_on;
    let source = match block_on(objects.open(name)) {
        Ok(s) => s,
        Err(e) => return Some(ShardProblem::Unreadable(format!("cannot open: {e}"))),
    };
    let size = match block_on(source.size()) {
        Ok(s) => s,
        Err(e) => return Some(ShardProblem::Unreadable(format!("cannot open: {e}"))),
    };
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let step = 8u64 << 20;
    let mut at = 0;
    while at < size {
        let end = (at + step).min(size);
        match block_on(source.read(at..end)) {
            Ok(b) => hasher.update(&b),
            Err(e) => return Some(ShardProblem::Unreadable(format!("read failed: {e}"))),
        }
        at = end;
    }
    *read += size;
    compare(size, hasher.digest(), bytes, xxh3)
}

fn check_checksum(
    path: &std::path::Path,
    bytes: Option<u64>,
    xxh3: Option<u64>,
    read: &mut u64,
) -> Option<ShardProblem> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return Some(ShardProblem::Unreadable(format!("cannot open: {e}"))),
    };
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => {
                hasher.update(&buf[..k]);
                n += k as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Some(ShardProblem::Unreadable(format!("read failed: {e}"))),
        }
    }
    *read += n;
    compare(n, hasher.digest(), bytes, xxh3)
}

/// What is wrong with a shard of `n` bytes and checksum `got`, if anything.
fn compare(n: u64, got: u64, bytes: Option<u64>, xxh3: Option<u64>) -> Option<ShardProblem> {
    if let Some(want) = bytes
        && n != want
    {
        return Some(ShardProblem::Size {
            found: n,
            recorded: want,
        });
    }
    match xxh3 {
        Some(want) if want != got => Some(ShardProblem::Checksum {
            found: got,
            recorded: want,
        }),
        _ => None,
    }
}
