//! From a URL to an object_store client and the path inside it: the scheme picks the client,
//! the standard environment configures it, explicit options override the environment.

use std::sync::{Arc, Once};

use arrowfeed_traits::{Error, Location, Result};
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;

use crate::RemoteOptions;

/// The URL schemes [`is_url`] recognises (and the sources of this crate serve, but `file`,
/// which is a local path).
pub const SCHEMES: [&str; 11] = [
    "s3", "s3a", "gs", "az", "adl", "azure", "abfs", "abfss", "http", "https", "file",
];

/// True when `s` is a URL of a scheme arrowfeed reads (`s3://`, `gs://`, `az://`, `abfs://`,
/// `http(s)://`, `file://`), rather than a local path.
///
/// ```
/// use arrowfeed_object_store::is_url;
/// assert!(is_url("s3://bucket/train.parquet"));
/// assert!(is_url("file:///data/train.parquet"));
/// assert!(!is_url("data/train.parquet"));
/// assert!(!is_url("C:\\data\\train.parquet"));
/// ```
pub fn is_url(s: &str) -> bool {
    s.split_once("://")
        .is_some_and(|(scheme, _)| SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()))
}

/// The local path a `file://` URL names (percent-decoded), or `None` for any other string.
///
/// ```
/// use arrowfeed_object_store::local_path;
/// assert_eq!(local_path("file:///data/my%20set.parquet"), Some("/data/my set.parquet".into()));
/// assert_eq!(local_path("s3://bucket/key"), None);
/// ```
pub fn local_path(url: &str) -> Option<std::path::PathBuf> {
    let (scheme, _) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("file") {
        return None;
    }
    url::Url::parse(url).ok()?.to_file_path().ok()
}

/// A client for the store behind a URL, and the object path the URL names inside it.
pub(crate) struct Connected {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) path: ObjectPath,
}

/// Installs rustls's ring provider once per process: reqwest is built without a provider of its
/// own (see the workspace manifest for why ring).
fn install_tls_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only when some other part of the process installed a provider first, which
        // then serves us as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Parses `url` and builds the client for it.
pub(crate) fn connect(url: &str, options: &RemoteOptions) -> Result<Connected> {
    options.check()?;
    install_tls_provider();
    let parsed = url::Url::parse(url).map_err(|e| {
        Error::invalid_argument(format!("{url}: not a URL arrowfeed can read ({e})"))
    })?;
    let (scheme, path) = object_store::ObjectStoreScheme::parse(&parsed).map_err(|e| {
        Error::invalid_argument(format!(
            "{url}: not a URL arrowfeed can read ({e}); use s3://, gs://, az://, abfs://, http(s):// or file://"
        ))
    })?;
    let mut config = options.client_config();
    config.extend(options.config.iter().cloned());
    let retry = options.retry();
    let built = |e: object_store::Error| {
        Error::invalid_argument(format!("{url}: cannot configure the client: {e}"))
    };
    use object_store::ObjectStoreScheme as S;
    let store: Arc<dyn ObjectStore> = match scheme {
        S::AmazonS3 => {
            // from_env reads every `AWS_*` variable object_store knows: the credentials,
            // `AWS_REGION` (else `AWS_DEFAULT_REGION`), `AWS_ENDPOINT_URL` (the AWS SDKs'
            // name) as well as `AWS_ENDPOINT`, and `AWS_ALLOW_HTTP`.
            let mut b = object_store::aws::AmazonS3Builder::from_env().with_url(url);
            for (k, v) in &config {
                b = b.with_config(key(url, k)?, v);
            }
            Arc::new(b.with_retry(retry).build().map_err(built)?)
        }
        S::GoogleCloudStorage => {
            let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(url);
            for (k, v) in &config {
                b = b.with_config(key(url, k)?, v);
            }
            Arc::new(b.with_retry(retry).build().map_err(built)?)
        }
        S::MicrosoftAzure => {
            let mut b = object_store::azure::MicrosoftAzureBuilder::from_env().with_url(url);
            for (k, v) in &config {
                b = b.with_config(key(url, k)?, v);
            }
            Arc::new(b.with_retry(retry).build().map_err(built)?)
        }
        S::Http => {
            let base = &parsed[..url::Position::BeforePath];
            let mut b = object_store::http::HttpBuilder::new().with_url(base);
            if parsed.scheme() == "http" {
                b = b.with_config(object_store::ClientConfigKey::AllowHttp, "true");
            }
            for (k, v) in &config {
                b = b.with_config(key(url, k)?, v);
            }
            Arc::new(b.with_retry(retry).build().map_err(built)?)
        }
        S::Local => {
            return Err(Error::invalid_argument(format!(
                "{url}: file:// URLs are local paths; open the path ({})",
                local_path(url).map_or_else(|| "?".into(), |p| p.display().to_string())
            )));
        }
        other => {
            return Err(Error::invalid_argument(format!(
                "{url}: {other:?} URLs are not supported"
            )));
        }
    };
    let store: Arc<dyn ObjectStore> = Arc::new(object_store::limit::LimitStore::new(
        store,
        options.max_requests_in_flight,
    ));
    Ok(Connected { store, path })
}

/// A configuration key for the client behind `url`, with an error naming it when unknown.
fn key<K: std::str::FromStr>(url: &str, k: &str) -> Result<K> {
    k.to_ascii_lowercase()
        .parse()
        .map_err(|_| Error::invalid_argument(format!("{url}: unknown configuration key {k:?}")))
}

/// Turns an object_store error about the object at `url` into ours: a missing object is
/// `NotFound`, refused credentials `PermissionDenied`, both naming the URL; anything else keeps
/// object_store's error as its source.
pub(crate) fn error(url: &str, e: object_store::Error) -> Error {
    use std::io::ErrorKind;
    match e {
        object_store::Error::NotFound { .. } => arrowfeed_traits::not_found(url),
        object_store::Error::PermissionDenied { source, .. }
        | object_store::Error::Unauthenticated { source, .. } => Error::io(
            url,
            std::io::Error::new(
                ErrorKind::PermissionDenied,
                format!("the server refused the credentials ({source})"),
            ),
        ),
        other => Error::external(Location::new(url.to_string()), other),
    }
}
