//! The one way arrowfeed maps a file into memory (feature `mmap`): [`map_file`].
//!
//! # The contract of a map
//! A map shows the file's pages as they are *now*, not as they were when it was made:
//! - **Truncation** by another process: touching a page past the new end raises `SIGBUS`,
//!   which kills the process. The length is checked against the file when the map is made;
//!   nothing can check it afterwards.
//! - **A rewrite in place** by another process: the bytes under a batch change without any
//!   signal. Arrow validated the offsets and lengths of that batch when it was decoded and
//!   reads them unchecked afterwards, so changed bytes give wrong values at best, and reads
//!   outside the arrays (undefined behaviour) at worst.
//!
//! Batches decoded from a map may point into it (IPC buffers, uncompressed Parquet values), so
//! the hazard lasts as long as such a batch does. Map only files that nothing else truncates or
//! rewrites while they are in use: arrowfeed's own shard stores (written once, replaced by
//! renaming a new directory in), its private spill files, files you own. For any other file,
//! read it into memory instead (`LoadMode::Read` of the shard store, `LocalFile` of
//! core-source), or have the store check each shard's checksum as it loads it.

use std::fs::File;
use std::path::Path;

use bytes::Bytes;

use crate::{Error, Result};

/// A map and the file it maps: the owner of mapped bytes, which keeps the file (and any lock
/// it holds) open for as long as the map lives.
struct Mapped {
    map: memmap2::Mmap,
    _file: File,
}

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

/// Maps the first `len` bytes of `file` (opened from `path`, which errors name) read-only, and
/// returns them as [`Bytes`] that own the map and the file: slices are zero-copy, and
/// `arrow_buffer::Buffer::from` turns them into an arrow buffer without a copy. `populate`
/// faults every page in now rather than on first touch.
///
/// Read the [module's contract](self) before mapping a file something else may change.
///
/// # Errors
/// [`Error::Corrupt`] naming `path` if the file is shorter than `len` (truncated?) or `len`
/// exceeds the address space; [`Error::Io`] if the map fails.
pub fn map_file(file: File, path: &Path, len: u64, populate: bool) -> Result<Bytes> {
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if size < len {
        return Err(Error::corrupt(
            path,
            format!("the file is {size} bytes, {len} expected (truncated?)"),
        ));
    }
    if len == 0 {
        return Ok(Bytes::new());
    }
    let n =
        usize::try_from(len).map_err(|_| Error::corrupt(path, "larger than the address space"))?;
    let mut options = memmap2::MmapOptions::new();
    options.len(n);
    if populate {
        options.populate();
    }
    // SAFETY: the map is read-only, of `n` bytes that the file held just above, and lives in
    // the returned `Bytes` with the file. What another process may still do to the file while
    // it is mapped, and what that costs, is the module's documented contract: truncation
    // raises SIGBUS, a rewrite changes the bytes under batches already validated. Callers map
    // only files that contract covers (their documentation says which).
    let map = unsafe { options.map(&file) }.map_err(|e| Error::io(path, e))?;
    Ok(Bytes::from_owner(Mapped { map, _file: file }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_holds_the_bytes_asked_for_and_refuses_more_than_the_file() {
        let dir = std::env::temp_dir().join(format!("arrowfeed-mmap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("f.bin");
        std::fs::write(&path, b"hello, world").expect("write");
        let open = || File::open(&path).expect("open");
        let all = map_file(open(), &path, 12, false).expect("map");
        assert_eq!(&all[..], b"hello, world");
        assert_eq!(
            &map_file(open(), &path, 5, true).expect("prefix")[..],
            b"hello"
        );
        assert!(map_file(open(), &path, 0, false).expect("empty").is_empty());
        let e = map_file(open(), &path, 13, false).expect_err("past the end");
        assert!(
            e.to_string().contains("f.bin") && e.to_string().contains("12 bytes"),
            "{e}"
        );
        // The map outlives the file's name: its owner keeps the file open.
        std::fs::remove_dir_all(&dir).expect("remove");
        assert_eq!(&all.slice(7..)[..], b"world");
    }
}
