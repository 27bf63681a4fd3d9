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
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        for meta in self.shard_metas() {
            report.checked += 1;
            let problem = match self.format() {
                StoreFormat::Arrowfeed => {
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
        Ok(report)
    }
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
    if let Some(want) = bytes
        && n != want
    {
        return Some(format!("{n} bytes, the manifest says {want}"));
    }
    let got = hasher.digest();
    match xxh3 {
        Some(want) if want != got => Some(format!(
            "checksum mismatch: xxh3 {got:016x}, the manifest says {want:016x}"
        )),
        _ => None,
    }
}
