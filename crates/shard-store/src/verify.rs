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
    /// Each bad shard's file name and what is wrong with it.
    pub bad: Vec<(String, String)>,
    /// Hidden directories beside a local store that killed writes of it left (no writer
    /// holds them): the next write of the store removes them. They do not make the store bad.
    pub leftovers: Vec<std::path::PathBuf>,
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
                    .map(|e| e.to_string()),
            };
            if let Some(p) = problem {
                report.bad.push((meta.file.clone(), p));
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
) -> Option<String> {
    use futures::executor::block_on;
    let source = match block_on(objects.open(name)) {
        Ok(s) => s,
        Err(e) => return Some(format!("cannot open: {e}")),
    };
    let size = match block_on(source.size()) {
        Ok(s) => s,
        Err(e) => return Some(format!("cannot open: {e}")),
    };
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let step = 8u64 << 20;
    let mut at = 0;
    while at < size {
        let end = (at + step).min(size);
        match block_on(source.read(at..end)) {
            Ok(b) => hasher.update(&b),
            Err(e) => return Some(format!("read failed: {e}")),
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
) -> Option<String> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return Some(format!("cannot open: {e}")),
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
            Err(e) => return Some(format!("read failed: {e}")),
        }
    }
    *read += n;
    compare(n, hasher.digest(), bytes, xxh3)
}

/// What is wrong with a shard of `n` bytes and checksum `got`, if anything.
fn compare(n: u64, got: u64, bytes: Option<u64>, xxh3: Option<u64>) -> Option<String> {
    if let Some(want) = bytes
        && n != want
    {
        return Some(format!("{n} bytes, the manifest says {want}"));
    }
    match xxh3 {
        Some(want) if want != got => Some(format!(
            "checksum mismatch: xxh3 {got:016x}, the manifest says {want:016x}"
        )),
        _ => None,
    }
}
