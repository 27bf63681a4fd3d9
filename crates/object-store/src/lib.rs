//! Remote storage for arrowfeed: a [`ByteSource`](arrowfeed_traits::ByteSource) per remote
//! object and an [`ObjectDir`](arrowfeed_traits::ObjectDir) per prefix, over the
//! [`object_store`](https://crates.io/crates/object_store) crate — S3 and S3-compatible
//! servers, Google Cloud Storage, Azure Blob Storage and plain HTTP(S).
//!
//! Part of [arrowfeed](https://crates.io/crates/arrowfeed); depends only on `arrowfeed-traits`
//! among the arrowfeed crates. It is the one crate that carries an HTTP stack: the scan engine,
//! the sources and the shard store read remote data through the traits, and the facade
//! (`arrowfeed::open("s3://…")`) puts them together.
//!
//! | item | what it is |
//! |---|---|
//! | [`RemoteFile`] | one object as a `ByteSource`: range requests, merged and parallel in `read_many` |
//! | [`RemoteDir`] | the objects under a prefix as an `ObjectDir`: open by name, upload (multipart when large) |
//! | [`RemoteOptions`] | explicit configuration, retries, timeouts, requests in flight |
//! | [`is_url`], [`local_path`] | telling URLs from paths |
//!
//! # URLs and configuration
//! `s3://bucket/key` (and `s3a://`), `gs://bucket/key`, `az://container/key`,
//! `abfs[s]://container@account.dfs.core.windows.net/key`, `https://…` and `http://…`.
//! Credentials and endpoints come from the standard environment, as object_store reads it:
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` or
//! `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL` or `AWS_ENDPOINT` (an S3-compatible server),
//! `AWS_ALLOW_HTTP`; `GOOGLE_SERVICE_ACCOUNT`, `GOOGLE_SERVICE_ACCOUNT_KEY`, `GOOGLE_BUCKET`;
//! `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_STORAGE_SAS_KEY` and the
//! others object_store documents. [`RemoteOptions::config`] sets the same keys
//! explicitly, over the environment.
//!
//! # The runtime
//! object_store's HTTP stack needs a tokio runtime. This crate starts one for the process on
//! first use (two worker threads) and runs every request on it, handing back futures that
//! resolve from any executor or from `futures::executor::block_on`, which is how the scan
//! engine's I/O threads drive them. Callers never see it; a child process made by `fork` gets
//! a runtime of its own on first use.
//!
//! # Faults
//! A request that fails transiently (5xx, a dropped connection, a timeout) is retried with
//! exponential backoff, at most [`RemoteOptions::max_retries`] times and not after
//! [`RemoteOptions::retry_timeout`]; then it is an error naming the URL. A missing object is
//! an `Error::Io` of kind `NotFound`, refused credentials one of kind `PermissionDenied`.
//!
//! # Example
//! ```no_run
//! use arrowfeed_object_store::{RemoteFile, RemoteOptions};
//! use arrowfeed_traits::ByteSource;
//!
//! let options = RemoteOptions::default().config("aws_endpoint", "http://127.0.0.1:8333");
//! let file = RemoteFile::open("s3://bucket/train.parquet", &options)?;
//! let tail = futures::executor::block_on(file.read(file.len() - 8..file.len()))?;
//! assert_eq!(&tail[4..], b"PAR1");
//! # Ok::<(), arrowfeed_traits::Error>(())
//! ```

mod options;
mod remote;
mod runtime;
mod store;

pub use options::RemoteOptions;
pub use remote::{RemoteDir, RemoteFile};
pub use store::{SCHEMES, is_url, local_path};
