//! The one error type every arrowfeed crate returns, and its lossless bridge to `ArrowError`.

use std::fmt;
use std::path::{Path, PathBuf};

use arrow_schema::ArrowError;

/// A boxed error from another library (Parquet, a hash crate, an object store, ...).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result with [`enum@Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a problem was found: a file, a shard, a byte source. Rendered as the prefix of an
/// error message (`data/shard-03.arrow: ...`), so the user knows what to look at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location(Option<String>);

impl Location {
    /// No location known.
    pub const fn none() -> Self {
        Self(None)
    }

    /// A location with the given description (a path, `shard 3 (shard-03.arrow)`, ...).
    pub fn new(what: impl Into<String>) -> Self {
        Self(Some(what.into()))
    }

    /// The description, if one is known.
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl From<&Path> for Location {
    fn from(p: &Path) -> Self {
        Self::new(p.display().to_string())
    }
}

impl From<&PathBuf> for Location {
    fn from(p: &PathBuf) -> Self {
        Self::from(p.as_path())
    }
}

impl From<&str> for Location {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for Location {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl fmt::Display for Location {
    /// Writes `"<location>: "`, or nothing when no location is known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(s) => write!(f, "{s}: "),
            None => Ok(()),
        }
    }
}

/// The error returned at every arrowfeed crate boundary.
///
/// Each variant says *what* went wrong and, where it applies, *where*: the file, shard or
/// byte source concerned is part of the message. Causes from other libraries stay reachable
/// through [`std::error::Error::source`] with their concrete types.
///
/// Converting to [`ArrowError`] (for APIs that hand batches out through arrow's own traits,
/// such as `RecordBatchReader`) and back is lossless: see [`Error::into_arrow`] and
/// [`Error::from_arrow`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on `path` failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory the operation concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// Arrow rejected data or a schema.
    #[error("{location}{source}")]
    Arrow {
        /// Where the data came from, if known.
        location: Location,
        /// Arrow's error.
        #[source]
        source: ArrowError,
    },

    /// Another library failed (Parquet, a codec, a hash crate, a runtime, ...).
    #[error("{location}{source}")]
    External {
        /// Where the data came from, if known.
        location: Location,
        /// The other library's error, downcastable to its concrete type.
        #[source]
        source: BoxError,
    },

    /// A caller passed a setting or argument that cannot work.
    #[error("invalid argument: {message}")]
    InvalidArgument {
        /// What is wrong and, where possible, what would be accepted.
        message: String,
    },

    /// Data read from storage is malformed: wrong magic, truncated, lengths pointing outside the
    /// file, checksum mismatch, a manifest that disagrees with its shards.
    #[error("{location}{message}")]
    Corrupt {
        /// Where the damage was found.
        location: Location,
        /// What is wrong.
        message: String,
        /// The lower-level error that revealed the damage, if any.
        #[source]
        source: Option<BoxError>,
    },

    /// A row index is not below the number of rows.
    #[error("{location}row index {index} is out of range for {len} rows")]
    IndexOutOfRange {
        /// The dataset concerned, if known.
        location: Location,
        /// The offending index (or the end of an offending range).
        index: u64,
        /// The number of rows.
        len: u64,
    },

    /// The operation was cancelled (its consumer went away, or it was stopped on purpose).
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::InvalidArgument`].
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            message: message.into(),
        }
    }

    /// An [`Error::Corrupt`] without a lower-level cause.
    pub fn corrupt(location: impl Into<Location>, message: impl Into<String>) -> Self {
        Self::Corrupt {
            location: location.into(),
            message: message.into(),
            source: None,
        }
    }

    /// An [`Error::Corrupt`] caused by `source`.
    pub fn corrupt_with(
        location: impl Into<Location>,
        message: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Self::Corrupt {
            location: location.into(),
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// An [`Error::External`] at `location`.
    pub fn external(location: impl Into<Location>, source: impl Into<BoxError>) -> Self {
        Self::External {
            location: location.into(),
            source: source.into(),
        }
    }

    /// An [`Error::IndexOutOfRange`] without a location.
    pub fn index_out_of_range(index: u64, len: u64) -> Self {
        Self::IndexOutOfRange {
            location: Location::none(),
            index,
            len,
        }
    }

    /// Converts an [`ArrowError`] found while reading `location`.
    ///
    /// An `ArrowError::ExternalError` that wraps an arrowfeed [`enum@Error`] is unwrapped
    /// (see [`Error::from_arrow`]) and given the location if it has none.
    pub fn arrow_at(location: impl Into<Location>, source: ArrowError) -> Self {
        let location = location.into();
        match Self::from_arrow(source) {
            Self::Arrow {
                location: Location(None),
                source,
            } => Self::Arrow { location, source },
            other => other.or_location(location),
        }
    }

    /// Sets the location of a variant that has one and none is known yet.
    #[must_use]
    pub fn or_location(mut self, new: impl Into<Location>) -> Self {
        match &mut self {
            Self::Arrow { location, .. }
            | Self::External { location, .. }
            | Self::Corrupt { location, .. }
            | Self::IndexOutOfRange { location, .. }
                if location.0.is_none() =>
            {
                *location = new.into();
            }
            _ => {}
        }
        self
    }

    /// Converts to an [`ArrowError`] without losing information.
    ///
    /// An [`Error::Arrow`] without a location gives back the original `ArrowError`; every
    /// other error is wrapped in `ArrowError::ExternalError`, from which [`Error::from_arrow`]
    /// (or a downcast of the boxed source) recovers it.
    pub fn into_arrow(self) -> ArrowError {
        match self {
            Self::Arrow {
                location: Location(None),
                source,
            } => source,
            other => ArrowError::ExternalError(Box::new(other)),
        }
    }

    /// Converts from an [`ArrowError`], the inverse of [`Error::into_arrow`]: an
    /// `ExternalError` that wraps an arrowfeed error gives it back; anything else becomes
    /// [`Error::Arrow`] without a location.
    pub fn from_arrow(e: ArrowError) -> Self {
        match e {
            ArrowError::ExternalError(boxed) => match boxed.downcast::<Error>() {
                Ok(ours) => *ours,
                Err(other) => Self::Arrow {
                    location: Location::none(),
                    source: ArrowError::ExternalError(other),
                },
            },
            other => Self::Arrow {
                location: Location::none(),
                source: other,
            },
        }
    }

    /// True for [`Error::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Cancelled)
    }
}

/// The message a caught panic carried (the text of `panic!("...")`), or `unknown panic`: for
/// turning a panic in a decoder, a source or a plan into an error that says what happened.
///
/// ```
/// let payload = std::panic::catch_unwind(|| panic!("bad offset {}", 7)).expect_err("panicked");
/// assert_eq!(arrowfeed_traits::panic_message(payload.as_ref()), "bad offset 7");
/// ```
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

impl From<ArrowError> for Error {
    fn from(e: ArrowError) -> Self {
        Self::from_arrow(e)
    }
}

impl From<Error> for ArrowError {
    fn from(e: Error) -> Self {
        e.into_arrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_error() -> impl Strategy<Value = Error> {
        let loc = proptest::option::of("[a-z/._-]{1,12}").prop_map(Location);
        prop_oneof![
            ("[a-z/]{1,10}", "[a-z ]{0,10}").prop_map(|(p, m)| Error::io(
                p,
                std::io::Error::new(std::io::ErrorKind::NotFound, m)
            )),
            (loc.clone(), "[a-z ]{0,10}").prop_map(|(location, m)| Error::Arrow {
                location,
                source: ArrowError::InvalidArgumentError(m)
            }),
            (loc.clone(), "[a-z ]{0,10}").prop_map(|(l, m)| Error::external(l, m)),
            "[a-z ]{0,10}".prop_map(Error::invalid_argument),
            (loc.clone(), "[a-z ]{0,10}").prop_map(|(l, m)| Error::corrupt(l, m)),
            (loc, any::<u64>(), any::<u64>()).prop_map(|(location, index, len)| {
                Error::IndexOutOfRange {
                    location,
                    index,
                    len,
                }
            }),
            Just(()).prop_map(|()| Error::Cancelled),
        ]
    }

    proptest! {
        /// Error -> ArrowError -> Error keeps the message and the variant.
        #[test]
        fn arrow_round_trip_is_lossless(e in arb_error()) {
            let before = e.to_string();
            let kind = std::mem::discriminant(&e);
            let back = Error::from_arrow(e.into_arrow());
            prop_assert_eq!(back.to_string(), before);
            prop_assert_eq!(std::mem::discriminant(&back), kind);
        }
    }

    #[test]
    fn plain_arrow_errors_pass_through_unchanged() {
        let e = Error::from(ArrowError::ParseError("bad".into()));
        let a: ArrowError = e.into();
        assert!(matches!(a, ArrowError::ParseError(m) if m == "bad"));
    }

    #[test]
    fn location_prefixes_the_message() {
        let e = Error::arrow_at(
            Path::new("x/y.arrow"),
            ArrowError::IpcError("no footer".into()),
        );
        assert_eq!(e.to_string(), "x/y.arrow: Ipc error: no footer");
        let e = Error::corrupt("s.parquet", "bad magic").or_location("ignored");
        assert_eq!(e.to_string(), "s.parquet: bad magic");
    }

    #[test]
    fn arrow_at_unwraps_our_own_errors() {
        let inner = Error::corrupt(Location::none(), "checksum mismatch");
        let e = Error::arrow_at("shard-1.arrow", inner.into_arrow());
        assert!(matches!(e, Error::Corrupt { .. }));
        assert_eq!(e.to_string(), "shard-1.arrow: checksum mismatch");
    }
}
