//! What the fuzz targets in `fuzz/` run, and the tests that replay their seeds and findings.

use arrowfeed_traits::RandomAccess;

use crate::ShardStore;

/// The kind of directory [`store`] writes its input into.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// An arrowfeed store: `manifest.json` and the shard `shard-00000.arrow`.
    Arrowfeed,
    /// A Hugging Face `save_to_disk` directory: `state.json` and `data-00000-of-00001.arrow`.
    HuggingFace,
}

/// Splits `data` into a metadata file (its length in the first two bytes, little-endian) and
/// one shard, writes them into a directory of this process as `kind` names them, opens it as
/// a store and reads every row: by `take` (in reverse, and projected), by `slice` and shard by
/// shard. True if it opened and every read succeeded.
pub fn store(kind: Kind, data: &[u8]) -> bool {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return false;
    };
    let (meta, shard) = rest.split_at(usize::from(u16::from_le_bytes(*len)).min(rest.len()));
    let (meta_name, shard_name, tag) = match kind {
        Kind::Arrowfeed => (crate::MANIFEST_FILE, "shard-00000.arrow", "store"),
        Kind::HuggingFace => ("state.json", "data-00000-of-00001.arrow", "hf"),
    };
    let dir = std::env::temp_dir().join(format!("arrowfeed-fuzz-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory for the fuzz input");
    std::fs::write(dir.join(meta_name), meta).expect("write the metadata");
    std::fs::write(dir.join(shard_name), shard).expect("write the shard");
    ShardStore::open(&dir).is_ok_and(|store| read_all(&store))
}

fn read_all(store: &ShardStore) -> bool {
    let rows = store.num_rows().min(4096);
    let reverse: Vec<u64> = (0..rows).rev().collect();
    store.take(&reverse, None).is_ok()
        && (store.schema().fields().is_empty() || store.take(&reverse, Some(&[0])).is_ok())
        && store.slice(0, rows, None).is_ok()
        && store.iter_shards(None).all(|b| b.is_ok())
}
