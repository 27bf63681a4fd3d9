//! A local file as a `ByteSource`, read with positioned reads (`pread`).

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrowfeed_traits::{ByteSource, Error, Result, check_range};
use bytes::Bytes;
use futures::future::BoxFuture;

use crate::detect::open_regular_file;

/// A local file read with positioned reads, as a [`ByteSource`].
///
/// Positioned reads (`pread` on Unix, `seek_read` on Windows) need no shared cursor, so one
/// `LocalFile` serves concurrent reads from many threads. The size is taken when the file is
/// opened; reads past it are errors even if the file has grown since.
///
/// Its futures do the read when first polled, so [`ByteSource::is_blocking`] is true: drive it
/// from threads that may block (the decode scheduler's I/O threads, or `block_on`), not from an
/// async executor's worker threads.
///
/// ```
/// use arrowfeed_core_source::LocalFile;
/// use arrowfeed_traits::ByteSource;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("hello.bin");
/// std::fs::write(&path, b"hello, world")?;
/// let file = LocalFile::open(&path)?;
/// let bytes = futures::executor::block_on(file.read(7..12))?;
/// assert_eq!(&bytes[..], b"world");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct LocalFile {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: File,
    path: PathBuf,
    name: String,
    size: u64,
}

impl LocalFile {
    /// Opens `path`.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path if it cannot be opened or is a directory.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let (file, size) = open_regular_file(path)?;
        Ok(Self {
            inner: Arc::new(Inner {
                file,
                path: path.to_path_buf(),
                name: path.display().to_string(),
                size,
            }),
        })
    }

    /// The path this was opened from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The size when opened.
    pub fn len(&self) -> u64 {
        self.inner.size
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.inner.size == 0
    }

    /// Reads `range` synchronously into a new buffer.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a range outside the file, [`Error::Io`] if the read fails (also when
    /// the file was truncated since it was opened).
    pub fn read_blocking(&self, range: Range<u64>) -> Result<Bytes> {
        let len = self.checked_len(&range)?;
        #[cfg(unix)]
        {
            // Straight into fresh memory: zeroing it first cost as much as a memcpy of
            // everything read (a tpch scan over positioned reads).
            let mut buf = Vec::with_capacity(len);
            pread_uninit(&self.inner.file, &mut buf, len, range.start)
                .map_err(|e| Error::io(&self.inner.path, e))?;
            Ok(Bytes::from(buf))
        }
        #[cfg(not(unix))]
        {
            let mut buf = vec![0u8; len];
            self.read_into(range.start, &mut buf)?;
            Ok(Bytes::from(buf))
        }
    }

    /// Reads `buf.len()` bytes at `offset` into `buf`.
    ///
    /// # Errors
    /// As [`read_blocking`](Self::read_blocking).
    pub fn read_into(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = offset.saturating_add(buf.len() as u64);
        self.checked_len(&(offset..end))?;
        read_exact_at(&self.inner.file, buf, offset).map_err(|e| Error::io(&self.inner.path, e))
    }

    fn checked_len(&self, range: &Range<u64>) -> Result<usize> {
        let r = check_range(&self.inner.name, range, self.inner.size)?;
        usize::try_from(r.end - r.start).map_err(|_| {
            Error::corrupt(
                self.inner.name.as_str(),
                "byte range larger than the address space",
            )
        })
    }
}

/// Reads `len` bytes at `offset` into the spare capacity of `buf` (empty, with at least `len`
/// capacity), setting its length only once all are read.
#[cfg(unix)]
fn pread_uninit(file: &File, buf: &mut Vec<u8>, len: usize, offset: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    debug_assert!(buf.is_empty() && buf.capacity() >= len);
    let mut done = 0usize;
    while done < len {
        let at = offset
            .checked_add(done as u64)
            .and_then(|o| libc::off_t::try_from(o).ok())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: the kernel writes at most `len - done` bytes into the spare capacity from
        // `done`, which is `len` bytes long; nothing reads them before `set_len`.
        let n = unsafe {
            libc::pread(
                file.as_raw_fd(),
                buf.as_mut_ptr().add(done).cast(),
                len - done,
                at,
            )
        };
        match n {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n if n > 0 => done += n as usize,
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    // SAFETY: all `len` bytes were written by pread above.
    unsafe { buf.set_len(len) };
    Ok(())
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl ByteSource for LocalFile {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn size(&self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(futures::future::ready(Ok(self.inner.size)))
    }

    fn read(&self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes>> {
        Box::pin(async move { self.read_blocking(range) })
    }

    fn is_blocking(&self) -> bool {
        true
    }
}

/// A local file mapped into memory, as a [`ByteSource`]: reads are zero-copy slices of the map.
///
/// The whole file is mapped when opened; its pages are mapped in as they are touched, by the
/// threads that touch them, and only those. (Populating every page when opening took 0.21 s
/// for a 2.6 GB file, before the first byte of a scan that may read a few of its columns; a
/// scan of all of it was also faster without: 1.10-1.24 s against 1.32-1.37 s when each read
/// populated its range first.) A map has the contract of
/// [`arrowfeed_traits::mmap`]: if another process truncates the file while it is mapped,
/// reading the lost pages raises `SIGBUS`; if it rewrites the file in place, the bytes under
/// batches already decoded change silently. Use [`LocalFile`] (positioned reads into memory)
/// for files that may change. Batches decoded from a map may point into it (IPC buffers,
/// values of uncompressed Parquet pages), so the hazard lasts as long as such a batch, not
/// only while it is decoded.
///
/// [`ByteSource::is_blocking`] is true: touching a page that is not in memory waits for the
/// disk.
///
/// ```
/// use arrowfeed_core_source::MmapFile;
/// use arrowfeed_traits::ByteSource;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("hello.bin");
/// std::fs::write(&path, b"hello, world")?;
/// let file = MmapFile::open(&path)?;
/// let bytes = futures::executor::block_on(file.read(7..12))?;
/// assert_eq!(&bytes[..], b"world");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct MmapFile {
    name: Arc<str>,
    path: Arc<Path>,
    data: Bytes,
}

impl MmapFile {
    /// Maps the file at `path`.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path if it cannot be opened or mapped, or is a directory.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let (file, size) = open_regular_file(path)?;
        let data = arrowfeed_traits::mmap::map_file(file, path, size, false)?;
        Ok(Self {
            name: path.display().to_string().into(),
            path: path.into(),
            data,
        })
    }

    /// The path this was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The size of the mapped file.
    pub fn len(&self) -> u64 {
        self.data.len() as u64
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

impl ByteSource for MmapFile {
    fn name(&self) -> &str {
        &self.name
    }

    fn size(&self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(futures::future::ready(Ok(self.len())))
    }

    fn read(&self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes>> {
        let r = check_range(&self.name, &range, self.len())
            .map(|r| self.data.slice(r.start as usize..r.end as usize));
        Box::pin(futures::future::ready(r))
    }

    fn is_blocking(&self) -> bool {
        true
    }

    fn reads_are_views(&self) -> bool {
        true
    }
}
