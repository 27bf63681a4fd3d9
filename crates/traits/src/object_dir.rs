//! `ObjectDir`: named objects under one prefix — a local directory or an object-store prefix —
//! so a crate that needs "the file `manifest.json` next to this one" asks for it by name,
//! without knowing whether it lives on disk or behind an HTTP stack.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::{ByteSource, Error, Result};

/// Objects named by plain names under one prefix: `s3://bucket/train/` + `shard-00003.arrow`.
///
/// The shard store opens remote stores through this trait (the object-store crate implements
/// it over `object_store`), so no feature crate depends on an HTTP stack.
///
/// # Contract
/// - Names are plain object names under the prefix (no `/` at the start, no `..`); callers
///   check names they read from data before passing them.
/// - [`open`](Self::open) of a name that does not exist is an [`Error::Io`] of kind
///   `NotFound` whose path is the object's URL; refused credentials are kind
///   `PermissionDenied`. Every error names the object's URL.
/// - [`put_file`](Self::put_file) replaces the object atomically: a reader sees the old object
///   or the whole new one, never a part.
/// - Futures are `Send` and need no particular executor: an implementation that needs a
///   runtime brings its own.
pub trait ObjectDir: Send + Sync + fmt::Debug {
    /// The prefix as a user writes it (`s3://bucket/train`, `/data/train`): for messages, and
    /// as the identity of the objects under it.
    fn url(&self) -> &str;

    /// The URL of the object `name`, as errors name it.
    fn url_of(&self, name: &str) -> String {
        format!("{}/{name}", self.url().trim_end_matches('/'))
    }

    /// Opens the object `name` for range reads (its size is known once this resolves).
    fn open<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Arc<dyn ByteSource>>>;

    /// Writes the local file `from` as the object `name`, replacing any object of that name.
    fn put_file<'a>(&'a self, name: &'a str, from: &'a Path) -> BoxFuture<'a, Result<()>>;

    /// Reads the whole object `name`: for small objects such as manifests.
    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Bytes>> {
        Box::pin(async move {
            let source = self.open(name).await?;
            let size = source.size().await?;
            source.read(0..size).await
        })
    }
}

impl<T: ObjectDir + ?Sized> ObjectDir for Arc<T> {
    fn url(&self) -> &str {
        (**self).url()
    }
    fn url_of(&self, name: &str) -> String {
        (**self).url_of(name)
    }
    fn open<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Arc<dyn ByteSource>>> {
        (**self).open(name)
    }
    fn put_file<'a>(&'a self, name: &'a str, from: &'a Path) -> BoxFuture<'a, Result<()>> {
        (**self).put_file(name, from)
    }
    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Bytes>> {
        (**self).get(name)
    }
}

/// Objects in memory, as an [`ObjectDir`]: for tests and examples, and for the fault-injecting
/// wrappers tests build around it.
#[derive(Debug, Default)]
pub struct MemoryDir {
    url: String,
    objects: std::sync::Mutex<std::collections::BTreeMap<String, Bytes>>,
}

impl MemoryDir {
    /// An empty directory called `url` in messages.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            objects: Default::default(),
        }
    }

    /// Puts `data` as the object `name`.
    pub fn insert(&self, name: impl Into<String>, data: impl Into<Bytes>) {
        self.lock().insert(name.into(), data.into());
    }

    /// The names of the objects, sorted.
    pub fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, Bytes>> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ObjectDir for MemoryDir {
    fn url(&self) -> &str {
        &self.url
    }

    fn open<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Arc<dyn ByteSource>>> {
        let url = self.url_of(name);
        let found = self.lock().get(name).cloned();
        Box::pin(futures::future::ready(match found {
            Some(data) => Ok(Arc::new(crate::MemorySource::new(url, data)) as Arc<dyn ByteSource>),
            None => Err(not_found(url)),
        }))
    }

    fn put_file<'a>(&'a self, name: &'a str, from: &'a Path) -> BoxFuture<'a, Result<()>> {
        let r = std::fs::read(from)
            .map_err(|e| Error::io(from, e))
            .map(|data| self.insert(name, data));
        Box::pin(futures::future::ready(r))
    }
}

/// The [`Error::Io`] of kind `NotFound` an [`ObjectDir`] returns for a missing object.
pub fn not_found(url: impl Into<PathBuf>) -> Error {
    Error::io(
        url,
        std::io::Error::new(std::io::ErrorKind::NotFound, "no such object"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_dir_reads_what_was_put_and_names_what_is_missing() {
        let dir = MemoryDir::new("mem://x/");
        dir.insert("a", &b"hello"[..]);
        let got = futures::executor::block_on(dir.get("a")).expect("present");
        assert_eq!(&got[..], b"hello");
        let err = futures::executor::block_on(dir.open("b")).expect_err("missing");
        assert_eq!(err.to_string(), "mem://x/b: no such object");
        assert!(
            matches!(&err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
        );
    }
}
