//! `RemoteFile` (a `ByteSource`) and `RemoteDir` (an `ObjectDir`) over object_store clients;
//! every request runs on this crate's runtime.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use arrowfeed_traits::{ByteSource, Error, ObjectDir, Result, check_range};
use bytes::Bytes;
use futures::future::BoxFuture;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::RemoteOptions;
use crate::runtime::{block_on, spawn};
use crate::store::{connect, error};

/// Objects of at most this size are uploaded in one request; larger ones in parts of this size.
const PART_BYTES: usize = 8 << 20;
/// Parts of one upload in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

/// One remote object, as a [`ByteSource`]: every read is a range request.
///
/// Its size is taken when it is opened (one `HEAD` request); a read past it is an
/// [`Error::Corrupt`] naming the URL, as the `ByteSource` contract asks. Reads run on this
/// crate's runtime, so the futures can be awaited from any executor or blocked on from any
/// thread; dropping one cancels its request. [`ByteSource::read_many`] lets object_store merge
/// nearby ranges and run them in parallel.
#[derive(Debug, Clone)]
pub struct RemoteFile {
    inner: Arc<FileInner>,
}

#[derive(Debug)]
struct FileInner {
    url: String,
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    size: u64,
}

impl RemoteFile {
    /// Opens the object at `url`, blocking this thread for the `HEAD` request.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a URL that is not of a supported scheme or a bad option;
    /// [`Error::Io`] of kind `NotFound` or `PermissionDenied` naming the URL; other failures
    /// of the request as [`Error::External`] naming the URL.
    pub fn open(url: &str, options: &RemoteOptions) -> Result<Self> {
        let c = connect(url, options)?;
        block_on(Self::head(url.to_string(), c.store, c.path))
    }

    fn head(
        url: String,
        store: Arc<dyn ObjectStore>,
        path: ObjectPath,
    ) -> crate::runtime::Spawned<Self> {
        let at = url.clone();
        spawn(&at, async move {
            let meta = store.head(&path).await.map_err(|e| error(&url, e))?;
            Ok(Self {
                inner: Arc::new(FileInner {
                    url,
                    store,
                    path,
                    size: meta.size,
                }),
            })
        })
    }

    /// The URL this was opened from.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The size of the object when it was opened.
    pub fn len(&self) -> u64 {
        self.inner.size
    }

    /// True for an empty object.
    pub fn is_empty(&self) -> bool {
        self.inner.size == 0
    }
}

impl ByteSource for RemoteFile {
    fn name(&self) -> &str {
        &self.inner.url
    }

    fn size(&self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(futures::future::ready(Ok(self.inner.size)))
    }

    fn read(&self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes>> {
        if let Err(e) = check_range(&self.inner.url, &range, self.inner.size) {
            return Box::pin(futures::future::ready(Err(e)));
        }
        if range.is_empty() {
            return Box::pin(futures::future::ready(Ok(Bytes::new())));
        }
        let inner = self.inner.clone();
        let want = range.end - range.start;
        Box::pin(spawn(&self.inner.url, async move {
            let got = inner
                .store
                .get_range(&inner.path, range)
                .await
                .map_err(|e| error(&inner.url, e))?;
            short_read(&inner.url, want, got.len() as u64)?;
            Ok(got)
        }))
    }

    fn read_many(&self, ranges: Vec<Range<u64>>) -> BoxFuture<'_, Result<Vec<Bytes>>> {
        for r in &ranges {
            if let Err(e) = check_range(&self.inner.url, r, self.inner.size) {
                return Box::pin(futures::future::ready(Err(e)));
            }
        }
        let inner = self.inner.clone();
        Box::pin(spawn(&self.inner.url, async move {
            let got = inner
                .store
                .get_ranges(&inner.path, &ranges)
                .await
                .map_err(|e| error(&inner.url, e))?;
            for (r, b) in ranges.iter().zip(&got) {
                short_read(&inner.url, r.end - r.start, b.len() as u64)?;
            }
            Ok(got)
        }))
    }
}

/// A response shorter than asked means the object changed (or the server misbehaved): an
/// error rather than a short buffer the caller would misread.
fn short_read(url: &str, want: u64, got: u64) -> Result<()> {
    if got == want {
        return Ok(());
    }
    Err(Error::corrupt(
        url,
        format!("asked for {want} bytes, the server sent {got} (did the object change?)"),
    ))
}

/// The objects under one prefix of a store, as an [`ObjectDir`]: what a remote shard store is
/// opened and written through.
#[derive(Debug, Clone)]
pub struct RemoteDir {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

impl RemoteDir {
    /// The prefix `url` (`s3://bucket/train`); nothing is requested yet.
    ///
    /// # Errors
    /// As [`RemoteFile::open`], for the URL and options alone.
    pub fn new(url: &str, options: &RemoteOptions) -> Result<Self> {
        let c = connect(url, options)?;
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            store: c.store,
            prefix: c.path,
        })
    }

    fn path_of(&self, name: &str) -> Result<ObjectPath> {
        let mut path = self.prefix.clone();
        for part in name.split('/') {
            if part.is_empty() || part == "." || part == ".." {
                return Err(Error::invalid_argument(format!(
                    "{}: {name:?} is not an object name under the prefix",
                    self.url
                )));
            }
            path = path.join(part);
        }
        Ok(path)
    }

    /// Opens `name` under the prefix, blocking this thread for the `HEAD` request.
    ///
    /// # Errors
    /// As [`RemoteFile::open`].
    pub fn open_blocking(&self, name: &str) -> Result<RemoteFile> {
        let path = self.path_of(name)?;
        block_on(RemoteFile::head(
            self.url_of(name),
            self.store.clone(),
            path,
        ))
    }
}

impl ObjectDir for RemoteDir {
    fn url(&self) -> &str {
        &self.url
    }

    fn open<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Arc<dyn ByteSource>>> {
        let path = match self.path_of(name) {
            Ok(p) => p,
            Err(e) => return Box::pin(futures::future::ready(Err(e))),
        };
        let head = RemoteFile::head(self.url_of(name), self.store.clone(), path);
        Box::pin(async move { Ok(Arc::new(head.await?) as Arc<dyn ByteSource>) })
    }

    fn put_file<'a>(&'a self, name: &'a str, from: &'a Path) -> BoxFuture<'a, Result<()>> {
        let path = match self.path_of(name) {
            Ok(p) => p,
            Err(e) => return Box::pin(futures::future::ready(Err(e))),
        };
        let url = self.url_of(name);
        let store = self.store.clone();
        let from = from.to_path_buf();
        Box::pin(spawn(&url.clone(), async move {
            upload(&store, &path, &from, &url).await
        }))
    }

    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Bytes>> {
        let path = match self.path_of(name) {
            Ok(p) => p,
            Err(e) => return Box::pin(futures::future::ready(Err(e))),
        };
        let url = self.url_of(name);
        let store = self.store.clone();
        Box::pin(spawn(&url.clone(), async move {
            let got = store.get(&path).await.map_err(|e| error(&url, e))?;
            got.bytes().await.map_err(|e| error(&url, e))
        }))
    }
}

/// Uploads the file at `from` to `path`: one request when small, a multipart upload (parts in
/// parallel, completed only when all are in, so readers never see a part) when large.
async fn upload(
    store: &Arc<dyn ObjectStore>,
    path: &ObjectPath,
    from: &Path,
    url: &str,
) -> Result<()> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(from)
        .await
        .map_err(|e| Error::io(from, e))?;
    let len = file.metadata().await.map_err(|e| Error::io(from, e))?.len();
    if len <= PART_BYTES as u64 {
        let mut buf = Vec::with_capacity(len as usize);
        file.read_to_end(&mut buf)
            .await
            .map_err(|e| Error::io(from, e))?;
        store
            .put(path, buf.into())
            .await
            .map_err(|e| error(url, e))?;
        return Ok(());
    }
    let upload = store.put_multipart(path).await.map_err(|e| error(url, e))?;
    let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
    let mut buf = vec![0u8; PART_BYTES];
    loop {
        let n = match file.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(Error::io(from, e));
            }
        };
        if n == 0 {
            break;
        }
        if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
            return Err(error(url, e));
        }
        writer.write(&buf[..n]);
    }
    writer.finish().await.map_err(|e| error(url, e))?;
    Ok(())
}
