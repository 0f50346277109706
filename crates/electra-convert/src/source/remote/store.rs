//! Building a store for a URL from the environment, the way each cloud's own tools do, and
//! refusing within seconds when there are no credentials.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GcpCredential, GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, RetryConfig, StaticCredentialProvider,
};

use super::counting::{Counters, CountingConnector, RequestCounts};
use super::error::{RemoteError, Result};
use super::location::{RemoteUrl, Scheme};

/// The documented, public account of the Azurite emulator (not a secret).
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A snapshot of environment variables. Stores are configured from this, not from the process
/// environment directly, so tests can be hermetic.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The process environment (non-UTF-8 variables are skipped).
    pub fn from_process() -> Self {
        Self::from_pairs(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// An environment from explicit name/value pairs (tests, or a caller that builds its own).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Adds or replaces one variable.
    pub fn set(&mut self, key: &str, value: &str) -> &mut Self {
        self.vars.insert(key.to_string(), value.to_string());
        self
    }

    /// A variable's value; empty values count as unset.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn truthy(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
    }

    fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.vars
            .iter()
            .filter(move |(k, v)| k.starts_with(prefix) && !v.is_empty())
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn home_file(&self, rel: &str) -> Option<PathBuf> {
        let p = PathBuf::from(self.get("HOME")?).join(rel);
        p.is_file().then_some(p)
    }
}

/// How to build stores: credentials source, anonymity, timeouts and retries.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Skip credentials and request signing (public buckets). Reads and listings only.
    pub anonymous: bool,
    /// Where credentials and endpoints come from.
    pub env: Env,
    /// Timeout of one HTTP request, body included. Pieces are at most a few MiB, so this is
    /// generous; a stalled connection fails over to a retry after it.
    pub request_timeout: Duration,
    /// Timeout of one TCP/TLS connect.
    pub connect_timeout: Duration,
    /// Retries of one request by the store (5xx, 429, connect errors, timeouts, cut bodies).
    pub max_retries: usize,
    /// No retry starts later than this after the first attempt.
    pub retry_timeout: Duration,
    /// First backoff; doubles up to `max_backoff`.
    pub init_backoff: Duration,
    /// The longest wait between retries.
    pub max_backoff: Duration,
    /// How long to try reaching a cloud metadata server before saying there are no credentials.
    pub metadata_probe_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            anonymous: false,
            env: Env::from_process(),
            request_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(5),
            max_retries: 6,
            retry_timeout: Duration::from_secs(90),
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(8),
            metadata_probe_timeout: Duration::from_secs(1),
        }
    }
}

impl StoreOptions {
    fn client_options(&self) -> ClientOptions {
        ClientOptions::new()
            .with_timeout(self.request_timeout)
            .with_connect_timeout(self.connect_timeout)
    }

    fn retry(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: self.init_backoff,
                max_backoff: self.max_backoff,
                base: 2.0,
            },
            max_retries: self.max_retries,
            retry_timeout: self.retry_timeout,
        }
    }
}

/// A connection to one bucket, container or web host. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Remote {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) root: RemoteUrl,
    pub(crate) counters: Arc<Counters>,
    pub(crate) anonymous: bool,
}

impl Remote {
    /// Builds the store for `url`'s bucket from `opts`. Fails without sending a request when the
    /// store needs credentials and none are configured (at most one short metadata-server probe).
    pub fn connect(url: &RemoteUrl, opts: &StoreOptions) -> Result<Remote> {
        let counters = Arc::new(Counters::default());
        let conn = CountingConnector {
            counters: Arc::clone(&counters),
        };
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            Scheme::Gcs => Arc::new(
                gcs(url, opts, conn)?
                    .build()
                    .map_err(|e| build_err(url, e))?,
            ),
            Scheme::S3 => Arc::new(
                s3(url, opts, conn)?
                    .build()
                    .map_err(|e| build_err(url, e))?,
            ),
            Scheme::Azure => Arc::new(
                azure(url, opts, conn)?
                    .build()
                    .map_err(|e| build_err(url, e))?,
            ),
            Scheme::Http => {
                let root = url.store_root();
                let http = root.starts_with("http://");
                Arc::new(
                    HttpBuilder::new()
                        .with_url(root)
                        .with_client_options(opts.client_options().with_allow_http(http))
                        .with_retry(opts.retry())
                        .with_http_connector(conn)
                        .build()
                        .map_err(|e| build_err(url, e))?,
                )
            }
        };
        Ok(Remote {
            store,
            root: url.with_key(""),
            counters,
            anonymous: opts.anonymous,
        })
    }

    /// HTTP requests this store has sent so far (retries included).
    pub fn request_counts(&self) -> RequestCounts {
        self.counters.snapshot()
    }

    pub(crate) fn check_same_store(&self, url: &RemoteUrl) -> Result<()> {
        if url.same_store(&self.root) {
            Ok(())
        } else {
            Err(RemoteError::InvalidUrl {
                url: url.to_string(),
                reason: format!(
                    "not in the store this connection was made for ({})",
                    self.root
                ),
            })
        }
    }
}

fn build_err(url: &RemoteUrl, e: object_store::Error) -> RemoteError {
    let text = e.to_string();
    if text.contains("redential") || text.contains("service account") || text.contains("Missing") {
        RemoteError::BadCredentials {
            url: url.to_string(),
            detail: text,
        }
    } else {
        RemoteError::Store {
            op: "configure store for",
            url: url.to_string(),
            source: e,
        }
    }
}

fn no_creds(url: &RemoteUrl, looked_for: &[&str], hint: Option<String>) -> RemoteError {
    RemoteError::NoCredentials {
        url: url.to_string(),
        looked_for: looked_for.join(", "),
        hint,
    }
}

const ANON_HINT: &str = "for a public bucket pass --anonymous";

fn gcs(
    url: &RemoteUrl,
    opts: &StoreOptions,
    conn: CountingConnector,
) -> Result<GoogleCloudStorageBuilder> {
    let env = &opts.env;
    let mut b = GoogleCloudStorageBuilder::new()
        .with_client_options(opts.client_options().with_allow_http(true))
        .with_retry(opts.retry())
        .with_http_connector(conn)
        .with_bucket_name(url.bucket());

    // Google's client libraries send everything to STORAGE_EMULATOR_HOST, unauthenticated.
    if let Some(host) = env.get("STORAGE_EMULATOR_HOST") {
        let base = if host.contains("://") {
            host.to_string()
        } else {
            format!("http://{host}")
        };
        let none = StaticCredentialProvider::new(GcpCredential {
            bearer: String::new(),
        });
        return Ok(b
            .with_base_url(base.trim_end_matches('/'))
            .with_credentials(Arc::new(none)));
    }
    for (k, v) in env.with_prefix("GOOGLE_") {
        if let Ok(key) = k.to_ascii_lowercase().parse::<GoogleConfigKey>() {
            b = b.with_config(key, v);
        }
    }
    if let Some(p) = env.get("SERVICE_ACCOUNT") {
        b = b.with_service_account_path(p);
    }
    if opts.anonymous {
        return Ok(b.with_skip_signature(true));
    }
    let url_s = url.to_string();
    for var in [
        "GOOGLE_SERVICE_ACCOUNT",
        "GOOGLE_SERVICE_ACCOUNT_PATH",
        "SERVICE_ACCOUNT",
    ] {
        if let Some(p) = env.get(var) {
            check_readable(&url_s, var, p)?;
            return Ok(b);
        }
    }
    if env.get("GOOGLE_SERVICE_ACCOUNT_KEY").is_some() || env.get("GOOGLE_BEARER_TOKEN").is_some() {
        return Ok(b);
    }
    if let Some(p) = env.get("GOOGLE_APPLICATION_CREDENTIALS") {
        check_adc(&url_s, "GOOGLE_APPLICATION_CREDENTIALS", p)?;
        return Ok(b);
    }
    if let Some(p) = env.home_file(".config/gcloud/application_default_credentials.json") {
        let p = p.to_string_lossy().into_owned();
        check_adc(&url_s, "the gcloud application-default credentials", &p)?;
        return Ok(b.with_application_credentials(p));
    }
    let host = env
        .get("GCE_METADATA_HOST")
        .or(env.get("GCE_METADATA_ROOT"))
        .unwrap_or("metadata.google.internal");
    let ip = env.get("GCE_METADATA_IP").unwrap_or("169.254.169.254");
    if probe_any(&[host, ip], 80, opts.metadata_probe_timeout, Ping::Google) {
        return Ok(b);
    }
    Err(no_creds(
        url,
        &[
            "STORAGE_EMULATOR_HOST",
            "GOOGLE_SERVICE_ACCOUNT(_PATH)",
            "GOOGLE_SERVICE_ACCOUNT_KEY",
            "GOOGLE_BEARER_TOKEN",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "~/.config/gcloud/application_default_credentials.json (gcloud auth application-default login)",
            &format!("a GCE/TPU metadata server at {host} or {ip} (no answer within {:?})", opts.metadata_probe_timeout),
        ],
        Some(ANON_HINT.to_string()),
    ))
}

fn s3(url: &RemoteUrl, opts: &StoreOptions, conn: CountingConnector) -> Result<AmazonS3Builder> {
    let env = &opts.env;
    let mut b = AmazonS3Builder::new()
        .with_client_options(opts.client_options())
        .with_retry(opts.retry())
        .with_http_connector(conn);
    for (k, v) in env.with_prefix("AWS_") {
        if let Ok(key) = k.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
            b = b.with_config(key, v);
        }
    }
    // The AWS SDKs' name for the IMDS endpoint.
    let imds = env
        .get("AWS_METADATA_ENDPOINT")
        .or(env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT"));
    if let Some(e) = imds {
        b = b.with_metadata_endpoint(e);
    }
    b = b.with_bucket_name(url.bucket());
    if opts.anonymous {
        return Ok(b.with_skip_signature(true));
    }
    let url_s = url.to_string();
    match (
        env.get("AWS_ACCESS_KEY_ID"),
        env.get("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(_), Some(_)) => return Ok(b),
        (Some(_), None) | (None, Some(_)) => {
            return Err(RemoteError::BadCredentials {
                url: url_s,
                detail: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together".into(),
            })
        }
        (None, None) => {}
    }
    if let (Some(f), Some(_)) = (
        env.get("AWS_WEB_IDENTITY_TOKEN_FILE"),
        env.get("AWS_ROLE_ARN"),
    ) {
        check_readable(&url_s, "AWS_WEB_IDENTITY_TOKEN_FILE", f)?;
        return Ok(b);
    }
    if env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
        || (env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
            && env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").is_some())
    {
        return Ok(b);
    }
    let endpoint = imds.unwrap_or("http://169.254.169.254");
    let host = endpoint
        .split("://")
        .last()
        .unwrap_or(endpoint)
        .trim_end_matches('/');
    if probe_any(&[host], 80, opts.metadata_probe_timeout, Ping::AnyHttp) {
        return Ok(b);
    }
    let hint = if env.get("AWS_PROFILE").is_some() || env.home_file(".aws/credentials").is_some() {
        "AWS profiles (~/.aws/credentials, AWS_PROFILE) are not read: export them with \
         `eval \"$(aws configure export-credentials --format env)\"`; "
    } else {
        ""
    };
    Err(no_creds(
        url,
        &[
            "AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN)",
            "AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI",
            &format!(
                "an EC2 instance metadata server at {host} (no answer within {:?})",
                opts.metadata_probe_timeout
            ),
        ],
        Some(format!("{hint}{ANON_HINT}")),
    ))
}

fn azure(
    url: &RemoteUrl,
    opts: &StoreOptions,
    conn: CountingConnector,
) -> Result<MicrosoftAzureBuilder> {
    let env = &opts.env;
    let mut b = MicrosoftAzureBuilder::new()
        .with_client_options(opts.client_options())
        .with_retry(opts.retry())
        .with_http_connector(conn)
        .with_container_name(url.bucket());
    if env.truthy("AZURE_STORAGE_USE_EMULATOR") {
        // Azurite: path-style URLs under the account, the documented key unless another is given.
        // object_store's own emulator switch reads AZURITE_BLOB_STORAGE_URL from the process
        // environment; this reads it from `env` and sets the endpoint instead.
        let base = env
            .get("AZURITE_BLOB_STORAGE_URL")
            .unwrap_or("http://127.0.0.1:10000");
        let account = env
            .get("AZURE_STORAGE_ACCOUNT_NAME")
            .unwrap_or(AZURITE_ACCOUNT);
        let key = env.get("AZURE_STORAGE_ACCOUNT_KEY").unwrap_or(AZURITE_KEY);
        return Ok(b
            .with_endpoint(format!("{}/{account}", base.trim_end_matches('/')))
            .with_account(account)
            .with_access_key(key)
            .with_allow_http(true)
            .with_skip_signature(opts.anonymous));
    }
    for (k, v) in env.with_prefix("AZURE_") {
        if let Ok(key) = k.to_ascii_lowercase().parse::<AzureConfigKey>() {
            b = b.with_config(key, v);
        }
    }
    if let Some(e) = env.get("IDENTITY_ENDPOINT") {
        b = b.with_msi_endpoint(e);
    }
    if env.get("AZURE_STORAGE_ACCOUNT_NAME").is_none() {
        return Err(no_creds(
            url,
            &["AZURE_STORAGE_ACCOUNT_NAME (the storage account of the container)"],
            None,
        ));
    }
    if opts.anonymous {
        return Ok(b.with_skip_signature(true));
    }
    let has = |k: &str| env.get(k).is_some();
    let any = |ks: &[&str]| ks.iter().any(|k| has(k));
    if any(&[
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_ACCESS_KEY",
        "AZURE_STORAGE_MASTER_KEY",
    ]) || any(&[
        "AZURE_STORAGE_SAS_KEY",
        "AZURE_STORAGE_SAS_TOKEN",
        "AZURE_STORAGE_TOKEN",
    ]) || (any(&["AZURE_CLIENT_ID", "AZURE_STORAGE_CLIENT_ID"])
        && any(&["AZURE_TENANT_ID", "AZURE_STORAGE_TENANT_ID"])
        && any(&[
            "AZURE_CLIENT_SECRET",
            "AZURE_STORAGE_CLIENT_SECRET",
            "AZURE_FEDERATED_TOKEN_FILE",
        ]))
        || env.truthy("AZURE_USE_AZURE_CLI")
    {
        return Ok(b);
    }
    let msi = env
        .get("AZURE_MSI_ENDPOINT")
        .or(env.get("IDENTITY_ENDPOINT"))
        .unwrap_or("http://169.254.169.254");
    let host = msi
        .split("://")
        .last()
        .unwrap_or(msi)
        .split('/')
        .next()
        .unwrap_or_default();
    if probe_any(&[host], 80, opts.metadata_probe_timeout, Ping::AnyHttp) {
        return Ok(b);
    }
    Err(no_creds(
        url,
        &[
            "AZURE_STORAGE_ACCOUNT_KEY",
            "AZURE_STORAGE_SAS_TOKEN",
            "AZURE_STORAGE_TOKEN",
            "AZURE_CLIENT_ID + AZURE_TENANT_ID + AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE",
            "AZURE_USE_AZURE_CLI=true",
            "AZURE_STORAGE_USE_EMULATOR=true (Azurite)",
            &format!(
                "a managed-identity endpoint at {host} (no answer within {:?})",
                opts.metadata_probe_timeout
            ),
        ],
        Some(ANON_HINT.to_string()),
    ))
}

fn check_readable(url: &str, what: &str, path: &str) -> Result<()> {
    std::fs::metadata(path)
        .map(|_| ())
        .map_err(|e| RemoteError::BadCredentials {
            url: url.to_string(),
            detail: format!("{what} names {path}, which cannot be read: {e}"),
        })
}

/// An application-default-credentials file must be one of the two types object_store reads.
fn check_adc(url: &str, what: &str, path: &str) -> Result<()> {
    let bad = |detail: String| RemoteError::BadCredentials {
        url: url.to_string(),
        detail,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad(format!("{what} names {path}, which cannot be read: {e}")))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| bad(format!("{what} ({path}) is not JSON: {e}")))?;
    match json.get("type").and_then(|t| t.as_str()) {
        Some("service_account" | "authorized_user") => Ok(()),
        Some("external_account") => Err(bad(format!(
            "{what} ({path}) is an external_account (workload identity federation) file, which is not \
             supported; export a token instead: GOOGLE_BEARER_TOKEN=\"$(gcloud auth print-access-token)\""
        ))),
        other => Err(bad(format!(
            "{what} ({path}) has type {other:?}; only service_account and authorized_user are supported"
        ))),
    }
}

/// What a metadata endpoint must answer to count as present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ping {
    /// Any HTTP response (AWS IMDS, Azure IMDS).
    AnyHttp,
    /// A response carrying `Metadata-Flavor: Google`, as Google's own libraries check.
    Google,
}

/// Whether any of `hosts` (`host`, `host:port`, `ip`) answers an HTTP GET within `timeout` in
/// all. DNS resolution runs on a helper thread, so nothing here can take longer than `timeout`.
fn probe_any(hosts: &[&str], default_port: u16, timeout: Duration, ping: Ping) -> bool {
    let deadline = Instant::now() + timeout;
    hosts.iter().any(|h| {
        let has_port = h.parse::<SocketAddr>().is_ok()
            || h.rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
        let target = if has_port {
            h.to_string()
        } else {
            format!("{h}:{default_port}")
        };
        let host_header = h.to_string();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(target.to_socket_addrs().map(|a| a.collect::<Vec<_>>()));
        });
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Ok(addrs)) = rx.recv_timeout(left) else {
            return false;
        };
        addrs
            .iter()
            .any(|a| http_ping(a, &host_header, deadline, ping))
    })
}

fn http_ping(addr: &SocketAddr, host: &str, deadline: Instant, ping: Ping) -> bool {
    use std::io::{Read, Write};
    let left = || deadline.saturating_duration_since(Instant::now());
    if left().is_zero() {
        return false;
    }
    let Ok(mut s) = TcpStream::connect_timeout(addr, left()) else {
        return false;
    };
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nMetadata-Flavor: Google\r\nConnection: close\r\n\r\n"
    );
    if s.set_write_timeout(Some(left().max(Duration::from_millis(1))))
        .is_err()
        || s.write_all(req.as_bytes()).is_err()
    {
        return false;
    }
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 << 10 {
        if left().is_zero() || s.set_read_timeout(Some(left())).is_err() {
            return false;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    text.starts_with("http/")
        && match ping {
            Ping::AnyHttp => true,
            Ping::Google => text.contains("\r\nmetadata-flavor: google"),
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An environment whose metadata endpoints are closed loopback ports (never a real address).
    pub(crate) fn bare_env() -> Env {
        Env::from_pairs([
            ("HOME", "/nonexistent-home"),
            ("GCE_METADATA_HOST", "127.0.0.1:9"),
            ("GCE_METADATA_IP", "127.0.0.1:9"),
            ("AWS_METADATA_ENDPOINT", "http://127.0.0.1:9"),
            ("AZURE_MSI_ENDPOINT", "http://127.0.0.1:9/metadata"),
        ])
    }

    fn opts(env: Env) -> StoreOptions {
        StoreOptions {
            env,
            ..StoreOptions::default()
        }
    }

    #[test]
    fn no_credentials_fail_fast_for_each_cloud() {
        for (u, needle) in [
            ("gs://b/x", "GOOGLE_APPLICATION_CREDENTIALS"),
            ("s3://b/x", "AWS_ACCESS_KEY_ID"),
            ("az://c/x", "AZURE_STORAGE_ACCOUNT_NAME"),
        ] {
            let t = Instant::now();
            let e = Remote::connect(&RemoteUrl::parse(u).unwrap(), &opts(bare_env())).unwrap_err();
            assert!(matches!(e, RemoteError::NoCredentials { .. }), "{e}");
            assert!(e.to_string().contains(needle), "{e}");
            assert!(
                t.elapsed() < Duration::from_secs(3),
                "{u}: {:?}",
                t.elapsed()
            );
        }
        let mut env = bare_env();
        env.set("AZURE_STORAGE_ACCOUNT_NAME", "acct");
        let e = Remote::connect(&RemoteUrl::parse("az://c/x").unwrap(), &opts(env)).unwrap_err();
        assert!(e.to_string().contains("AZURE_STORAGE_SAS_TOKEN"), "{e}");
    }

    #[test]
    fn anonymous_and_env_credentials_build_without_requests() {
        let mut o = opts(bare_env());
        o.anonymous = true;
        for u in ["gs://b/x", "s3://b/x", "https://example.invalid/x"] {
            Remote::connect(&RemoteUrl::parse(u).unwrap(), &o).unwrap();
        }
        let mut env = bare_env();
        env.set("AWS_ACCESS_KEY_ID", "k")
            .set("AWS_SECRET_ACCESS_KEY", "s");
        Remote::connect(&RemoteUrl::parse("s3://b/x").unwrap(), &opts(env)).unwrap();
        let mut env = bare_env();
        env.set("AWS_ACCESS_KEY_ID", "k");
        let e = Remote::connect(&RemoteUrl::parse("s3://b/x").unwrap(), &opts(env)).unwrap_err();
        assert!(matches!(e, RemoteError::BadCredentials { .. }), "{e}");
        let mut env = bare_env();
        env.set("STORAGE_EMULATOR_HOST", "127.0.0.1:4443");
        Remote::connect(&RemoteUrl::parse("gs://b/x").unwrap(), &opts(env)).unwrap();
    }

    #[test]
    fn adc_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let wif = dir.path().join("wif.json");
        std::fs::write(&wif, r#"{"type":"external_account","audience":"x"}"#).unwrap();
        let mut env = bare_env();
        env.set("GOOGLE_APPLICATION_CREDENTIALS", wif.to_str().unwrap());
        let e = Remote::connect(&RemoteUrl::parse("gs://b/x").unwrap(), &opts(env)).unwrap_err();
        assert!(e.to_string().contains("GOOGLE_BEARER_TOKEN"), "{e}");
        let mut env = bare_env();
        env.set("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/adc.json");
        let e = Remote::connect(&RemoteUrl::parse("gs://b/x").unwrap(), &opts(env)).unwrap_err();
        assert!(matches!(e, RemoteError::BadCredentials { .. }), "{e}");
    }

    #[test]
    fn aws_profiles_get_a_hint() {
        let mut env = bare_env();
        env.set("AWS_PROFILE", "dev");
        let e = Remote::connect(&RemoteUrl::parse("s3://b/x").unwrap(), &opts(env)).unwrap_err();
        assert!(e.to_string().contains("export-credentials"), "{e}");
    }

    /// A fake metadata server on loopback: answers `n` connections with `response`.
    fn fake_metadata(response: &'static str, n: usize) -> String {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for _ in 0..n {
                let Ok((mut s, _)) = l.accept() else { return };
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.read(&mut [0u8; 4096]);
                let _ = s.write_all(response.as_bytes());
            }
        });
        addr
    }

    #[test]
    fn metadata_probe_wants_a_real_answer() {
        // A server that accepts and never answers is no metadata server: refused within the probe time.
        let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let hole_addr = hole.local_addr().unwrap().to_string();
        let t = Instant::now();
        assert!(!probe_any(
            &[&hole_addr],
            80,
            Duration::from_millis(500),
            Ping::AnyHttp
        ));
        assert!(t.elapsed() < Duration::from_secs(2));
        // GCE needs the Metadata-Flavor header; AWS/Azure any HTTP answer.
        let plain = fake_metadata("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 2);
        assert!(!probe_any(
            &[&plain],
            80,
            Duration::from_secs(1),
            Ping::Google
        ));
        assert!(probe_any(
            &[&plain],
            80,
            Duration::from_secs(1),
            Ping::AnyHttp
        ));
        let gce = fake_metadata(
            "HTTP/1.1 200 OK\r\nMetadata-Flavor: Google\r\nContent-Length: 0\r\n\r\n",
            1,
        );
        let mut env = bare_env();
        env.set("GCE_METADATA_HOST", &gce);
        Remote::connect(&RemoteUrl::parse("gs://b/x").unwrap(), &opts(env)).unwrap();
        drop(hole);
    }
}
