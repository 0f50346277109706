//! An HTTP connector that counts the requests a store really sends (retries included).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use object_store::ClientOptions;

/// Request counters shared by every HTTP client of one store.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    failures: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// HTTP requests sent (each retry is one more).
    pub requests: u64,
    /// Of those, the ones answered 5xx/429/408 or that failed in transport.
    pub failures: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> RequestCounts {
        RequestCounts {
            requests: self.requests.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug)]
pub(crate) struct CountingConnector {
    pub(crate) counters: Arc<Counters>,
}

impl HttpConnector for CountingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(Counting {
            inner,
            counters: Arc::clone(&self.counters),
        }))
    }
}

#[derive(Debug)]
struct Counting {
    inner: HttpClient,
    counters: Arc<Counters>,
}

#[async_trait::async_trait]
impl HttpService for Counting {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let res = self.inner.execute(req).await;
        let failed = match &res {
            Ok(r) => {
                let s = r.status();
                s.is_server_error() || s.as_u16() == 429 || s.as_u16() == 408
            }
            Err(_) => true,
        };
        if failed {
            self.counters.failures.fetch_add(1, Ordering::Relaxed);
        }
        res
    }
}
