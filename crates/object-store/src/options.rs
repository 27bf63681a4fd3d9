//! `RemoteOptions`: credentials and endpoints beyond the environment, retries, timeouts and
//! the limit on requests in flight.

use std::time::Duration;

use arrowfeed_traits::{Error, Result};

/// How remote objects are reached. `Default` reads credentials and endpoints from the
/// standard environment only (see the crate docs) with the limits below.
///
/// | setting | default |
/// |---|---|
/// | [`max_retries`](Self::max_retries) | 4 |
/// | [`retry_timeout`](Self::retry_timeout) | 30 s |
/// | [`request_timeout`](Self::request_timeout) | 60 s |
/// | [`connect_timeout`](Self::connect_timeout) | 5 s |
/// | [`max_requests_in_flight`](Self::max_requests_in_flight) | 32 |
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteOptions {
    /// Settings by object_store's key names (`aws_endpoint`, `aws_region`,
    /// `google_service_account`, `azure_storage_account_name`, `allow_http`, ...), applied
    /// after the environment so they win over it.
    pub config: Vec<(String, String)>,
    /// Retries of a request that failed transiently (a 5xx, a dropped connection, a timeout),
    /// with exponential backoff.
    pub max_retries: usize,
    /// No retry starts later than this after the first attempt.
    pub retry_timeout: Duration,
    /// A request that takes longer fails (and may be retried).
    pub request_timeout: Duration,
    /// Connecting to the server takes at most this long.
    pub connect_timeout: Duration,
    /// Requests in flight at once to one store, at most.
    pub max_requests_in_flight: usize,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            config: Vec::new(),
            max_retries: 4,
            retry_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            max_requests_in_flight: 32,
        }
    }
}

impl RemoteOptions {
    /// Sets `key` (an object_store configuration key, e.g. `aws_endpoint`) to `value`.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.push((key.into(), value.into()));
        self
    }

    /// Sets the retries of a transiently failed request.
    pub fn max_retries(mut self, n: usize) -> Self {
        self.max_retries = n;
        self
    }

    /// Sets the time after the first attempt past which no retry starts.
    pub fn retry_timeout(mut self, t: Duration) -> Self {
        self.retry_timeout = t;
        self
    }

    /// Sets the time a request may take.
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = t;
        self
    }

    /// Sets the time connecting may take.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Sets the limit on requests in flight to one store.
    pub fn max_requests_in_flight(mut self, n: usize) -> Self {
        self.max_requests_in_flight = n;
        self
    }

    /// Checks the settings.
    pub(crate) fn check(&self) -> Result<()> {
        let zero = |what: &str| {
            Err(Error::invalid_argument(format!(
                "remote {what} must be more than zero"
            )))
        };
        if self.max_requests_in_flight == 0 {
            return zero("max_requests_in_flight");
        }
        if self.request_timeout.is_zero() {
            return zero("request_timeout");
        }
        if self.connect_timeout.is_zero() {
            return zero("connect_timeout");
        }
        Ok(())
    }

    /// The retry policy object_store applies.
    pub(crate) fn retry(&self) -> object_store::RetryConfig {
        object_store::RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: self.max_retries,
            retry_timeout: self.retry_timeout,
        }
    }

    /// The HTTP client settings, as object_store configuration pairs (set through the same
    /// keys as the environment, so `*_ALLOW_HTTP` and the like keep working).
    pub(crate) fn client_config(&self) -> Vec<(String, String)> {
        vec![
            (
                "timeout".into(),
                format!("{}ms", self.request_timeout.as_millis()),
            ),
            (
                "connect_timeout".into(),
                format!("{}ms", self.connect_timeout.as_millis()),
            ),
        ]
    }
}
