//! Paths and URLs as one kind of argument: every entry point of the facade takes either, and
//! this is where a URL becomes a remote `ByteSource` or `ObjectDir` (with the `object-store`
//! feature) and a `file://` URL a path.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrowfeed_traits::{ByteSource, Error, ObjectDir, Result};

/// A path or URL, sorted out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Where {
    /// A local path (a `file://` URL is one too).
    Local(PathBuf),
    /// A URL of an object store or web server.
    Remote(String),
}

/// True when `s` names a remote object or prefix by URL (`s3://`, `gs://`, `az://`, `abfs://`,
/// `http(s)://`), rather than a local path. `file://` URLs are local paths.
///
/// ```
/// assert!(arrowfeed::is_url("s3://bucket/train.parquet"));
/// assert!(!arrowfeed::is_url("data/train.parquet"));
/// assert!(!arrowfeed::is_url("file:///data/train.parquet"));
/// ```
pub fn is_url(s: &str) -> bool {
    matches!(classify(Path::new(s)), Where::Remote(_))
}

pub(crate) fn classify(p: &Path) -> Where {
    let Some(s) = p.to_str() else {
        return Where::Local(p.to_path_buf());
    };
    let Some((scheme, rest)) = s.split_once("://") else {
        return Where::Local(p.to_path_buf());
    };
    let plausible = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.');
    if !plausible {
        return Where::Local(p.to_path_buf());
    }
    if scheme.eq_ignore_ascii_case("file") {
        #[cfg(feature = "object-store")]
        if let Some(path) = arrowfeed_object_store::local_path(s) {
            return Where::Local(path);
        }
        return Where::Local(PathBuf::from(format!("/{}", rest.trim_start_matches('/'))));
    }
    Where::Remote(s.to_string())
}

/// The error for a URL in a build without the `object-store` feature.
#[cfg(not(feature = "object-store"))]
fn no_remote(url: &str) -> Error {
    Error::invalid_argument(format!(
        "{url}: reading URLs needs arrowfeed's `object-store` feature, which this build lacks"
    ))
}

/// The remote object at `url`, opened with the environment's configuration.
pub(crate) fn remote_file(url: &str) -> Result<Arc<dyn ByteSource>> {
    #[cfg(feature = "object-store")]
    {
        let f = arrowfeed_object_store::RemoteFile::open(
            url,
            &arrowfeed_object_store::RemoteOptions::default(),
        )?;
        Ok(Arc::new(f))
    }
    #[cfg(not(feature = "object-store"))]
    Err(no_remote(url))
}

/// The objects under the prefix `url`, with the environment's configuration.
///
/// # Errors
/// [`Error::InvalidArgument`] for a URL of an unsupported scheme, bad configuration, or a
/// build without the `object-store` feature.
pub fn objects(url: &str) -> Result<Arc<dyn ObjectDir>> {
    #[cfg(feature = "object-store")]
    {
        let d = arrowfeed_object_store::RemoteDir::new(
            url,
            &arrowfeed_object_store::RemoteOptions::default(),
        )?;
        Ok(Arc::new(d))
    }
    #[cfg(not(feature = "object-store"))]
    Err(no_remote(url))
}

/// `path_or_url` as an input of [`open_inputs`](arrowfeed_core_source::open_inputs): a local
/// path, or a remote object opened now (one `HEAD` request) with the environment's
/// configuration.
///
/// # Errors
/// For a URL: as [`arrowfeed_object_store::RemoteFile::open`] (`NotFound` and
/// `PermissionDenied` name it).
#[cfg(feature = "core-source")]
pub fn input(path_or_url: impl AsRef<Path>) -> Result<arrowfeed_core_source::Input> {
    Ok(match classify(path_or_url.as_ref()) {
        Where::Local(p) => arrowfeed_core_source::Input::Path(p),
        Where::Remote(url) => arrowfeed_core_source::Input::Source(remote_file(&url)?),
    })
}

/// Opens the file at `path_or_url` (a local path, or an `s3://`, `gs://`, `az://`,
/// `http(s)://` or `file://` URL) and reads every column; see
/// [`open_with`].
///
/// # Errors
/// As [`arrowfeed_core_source::open`]; for a URL also the remote errors of [`input`].
#[cfg(feature = "core-source")]
pub fn open(path_or_url: impl AsRef<Path>) -> Result<arrowfeed_core_source::Source> {
    open_with(path_or_url, &arrowfeed_core_source::ReadOptions::default())
}

/// Opens the file at `path_or_url` with `options` (columns, row groups, batch size). A remote
/// file is never downloaded whole: its footer comes from one read of its tail and its data by
/// ranges (Parquet: a row group's projected column chunks at a time).
///
/// # Errors
/// As [`open`].
#[cfg(feature = "core-source")]
pub fn open_with(
    path_or_url: impl AsRef<Path>,
    options: &arrowfeed_core_source::ReadOptions,
) -> Result<arrowfeed_core_source::Source> {
    open_many([path_or_url], options)
}

/// Opens several files (paths and URLs, mixed) as one source; see
/// [`arrowfeed_core_source::open_many`].
///
/// # Errors
/// As [`open`], and as [`arrowfeed_core_source::open_many`] for mismatched schemas.
#[cfg(feature = "core-source")]
pub fn open_many<P: AsRef<Path>>(
    paths_or_urls: impl IntoIterator<Item = P>,
    options: &arrowfeed_core_source::ReadOptions,
) -> Result<arrowfeed_core_source::Source> {
    let inputs = paths_or_urls
        .into_iter()
        .map(input)
        .collect::<Result<Vec<_>>>()?;
    arrowfeed_core_source::open_inputs(inputs, options)
}

/// What `arrowfeed info` shows about the file at `path_or_url`, without reading its data.
///
/// # Errors
/// As [`open`].
#[cfg(feature = "core-source")]
pub fn info(path_or_url: impl AsRef<Path>) -> Result<arrowfeed_core_source::SourceInfo> {
    match input(path_or_url)? {
        arrowfeed_core_source::Input::Path(p) => arrowfeed_core_source::info(p),
        arrowfeed_core_source::Input::Source(s) => arrowfeed_core_source::info_source(s),
        other => Err(Error::invalid_argument(format!(
            "{}: not an input `info` knows",
            other.name().display()
        ))),
    }
}

/// The shard store (or, local only, Hugging Face `save_to_disk` directory) at `path_or_url`.
/// A remote store reads its manifest now and its shards through the local shard cache
/// (`ARROWFEED_CACHE_DIR`, `ARROWFEED_CACHE_LIMIT`; see
/// [`CacheOptions`](arrowfeed_shard_store::CacheOptions)).
///
/// # Errors
/// As [`ShardStore::open`](arrowfeed_shard_store::ShardStore::open) and
/// [`ShardStore::open_remote`](arrowfeed_shard_store::ShardStore::open_remote).
#[cfg(feature = "shard-store")]
pub fn store(path_or_url: impl AsRef<Path>) -> Result<arrowfeed_shard_store::ShardStore> {
    store_with(
        path_or_url,
        arrowfeed_shard_store::OpenOptions::default(),
        &arrowfeed_shard_store::CacheOptions::default(),
    )
}

/// [`store`] with open options and, for a remote store, cache options.
///
/// # Errors
/// As [`store`].
#[cfg(feature = "shard-store")]
pub fn store_with(
    path_or_url: impl AsRef<Path>,
    options: arrowfeed_shard_store::OpenOptions,
    cache: &arrowfeed_shard_store::CacheOptions,
) -> Result<arrowfeed_shard_store::ShardStore> {
    match classify(path_or_url.as_ref()) {
        Where::Local(p) => arrowfeed_shard_store::ShardStore::open_with(p, options),
        Where::Remote(url) => {
            arrowfeed_shard_store::ShardStore::open_remote(objects(&url)?, options, cache)
        }
    }
}

/// True when `path_or_url` names a shard store or Hugging Face directory rather than a file:
/// a local directory, or a remote prefix holding a `manifest.json`.
///
/// # Errors
/// For a URL, the remote errors of looking (other than the object not being there).
pub fn is_store(path_or_url: impl AsRef<Path>) -> Result<bool> {
    match classify(path_or_url.as_ref()) {
        Where::Local(p) => Ok(p.is_dir()),
        Where::Remote(url) => {
            let objects = objects(&url)?;
            match futures::executor::block_on(objects.open("manifest.json")) {
                Ok(_) => Ok(true),
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        }
    }
}

/// Writes `input` as a shard store at `path_or_url`: atomically published on local disk, or
/// uploaded shard by shard with the manifest last to object storage (see
/// [`StoreWriter::write_to`](arrowfeed_shard_store::StoreWriter::write_to)).
///
/// # Errors
/// As [`StoreWriter::write`](arrowfeed_shard_store::StoreWriter::write) and
/// [`StoreWriter::write_to`](arrowfeed_shard_store::StoreWriter::write_to).
#[cfg(feature = "shard-store")]
pub fn write_store(
    path_or_url: impl AsRef<Path>,
    input: impl arrow_array::RecordBatchReader,
    writer: &arrowfeed_shard_store::StoreWriter,
    progress: impl FnMut(u64),
) -> Result<arrowfeed_shard_store::Manifest> {
    match classify(path_or_url.as_ref()) {
        Where::Local(p) => writer.write_with_progress(p, input, progress),
        Where::Remote(url) => writer.write_to(objects(&url)?.as_ref(), input, progress),
    }
}

/// Uploads the local file `from` as the object at `url` (multipart when large).
///
/// # Errors
/// As [`ObjectDir::put_file`].
pub fn upload(from: &Path, url: &str) -> Result<()> {
    let (prefix, name) = url
        .rsplit_once('/')
        .filter(|(p, n)| !n.is_empty() && p.contains("://") && !p.ends_with(':'))
        .ok_or_else(|| Error::invalid_argument(format!("{url}: not the URL of an object")))?;
    let objects = objects(prefix)?;
    futures::executor::block_on(objects.put_file(name, from))
}
