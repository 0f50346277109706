//! Real object-store servers on free loopback ports for the bucket tests: moto (S3),
//! fake-gcs-server (GCS) and Azurite (Azure), from the binaries the `ELECTRA_TEST_*` variables
//! name or, when unset, that the project's own `scripts/test-servers.sh` installs (pinned, into
//! `.test-servers/`); killed by PID on drop (and by the kernel if the test process dies). Raw
//! HTTP for setting them up.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Moto,
    Gcs,
    Azurite,
}

impl Kind {
    fn var(self) -> &'static str {
        match self {
            Kind::Moto => "ELECTRA_TEST_MOTO_SERVER",
            Kind::Gcs => "ELECTRA_TEST_FAKE_GCS_SERVER",
            Kind::Azurite => "ELECTRA_TEST_AZURITE_BLOB",
        }
    }

    fn ready_path(self) -> &'static str {
        match self {
            Kind::Moto => "/",
            Kind::Gcs => "/storage/v1/b",
            Kind::Azurite => "/devstoreaccount1?comp=list",
        }
    }

    fn command(self, bin: &str, port: u16) -> Command {
        let mut c = Command::new(bin);
        let p = port.to_string();
        match self {
            Kind::Moto => c.args(["-H", "127.0.0.1", "-p", &p]),
            Kind::Gcs => c.args([
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-port",
                &p,
                "-backend",
                "memory",
                "-public-host",
                &format!("127.0.0.1:{port}"),
                "-external-url",
                &format!("http://127.0.0.1:{port}"),
                "-log-level",
                "warn",
            ]),
            Kind::Azurite => c.args([
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &p,
                "--inMemoryPersistence",
                "--disableTelemetry",
                "--skipApiVersionCheck",
                "--loose",
                "--silent",
            ]),
        };
        c
    }
}

/// A server process on 127.0.0.1:`port`, killed (by PID) when dropped.
pub struct Server {
    pub kind: Kind,
    pub port: u16,
    child: Child,
    log: PathBuf,
}

/// How long a server may take to answer on a busy machine.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

impl Server {
    /// Starts `kind` from the binary its `ELECTRA_TEST_*` variable names. Without the variable:
    /// `None` (the caller skips, saying so) on a developer machine; under `CI`, a failure.
    pub fn start(kind: Kind) -> Option<Server> {
        let from_env = std::env::var(kind.var()).ok().filter(|s| !s.is_empty());
        let bin = match from_env {
            Some(bin) => bin,
            None => match installed() {
                Ok(vars) if vars.contains_key(kind.var()) => vars[kind.var()].clone(),
                Ok(_) => panic!(
                    "{} is not printed by `scripts/test-servers.sh env`",
                    kind.var()
                ),
                Err(why) => {
                    if std::env::var_os("CI").is_some() {
                        panic!("{kind:?}: the test servers could not be installed: {why}");
                    }
                    eprintln!("skipped: the test servers could not be installed: {why}");
                    return None;
                }
            },
        };
        let mut last = String::new();
        for _attempt in 0..3 {
            match Server::try_start(kind, &bin) {
                Ok(s) => return Some(s),
                Err(e) => last = e,
            }
        }
        panic!("{kind:?} ({bin}) did not start: {last}");
    }

    fn try_start(kind: Kind, bin: &str) -> Result<Server, String> {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("electra-remote-test-{kind:?}-{port}.log"));
        let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = kind.command(bin, port);
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        // If the test process dies without dropping us, the kernel kills the server.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let t0 = Instant::now();
        let child = cmd.spawn().map_err(|e| format!("spawn: {e}"))?;
        let mut server = Server {
            kind,
            port,
            child,
            log,
        };
        while t0.elapsed() < READY_TIMEOUT {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("exited with {status}: {}", server.log_text()));
            }
            if http(port, "GET", kind.ready_path(), &[], b"").is_ok() {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "no answer within {READY_TIMEOUT:?}: {}",
            server.log_text()
        ))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// How long the project's installer may take (pip and npm downloads on a slow link).
const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);

/// The `ELECTRA_TEST_*` variables of `scripts/test-servers.sh env`, after running
/// `scripts/test-servers.sh install` (a no-op when up to date) once per test process, so that
/// `cargo test` on a fresh machine installs the pinned servers into `.test-servers/` itself.
/// `ELECTRA_TEST_NO_INSTALL=1` turns this off (then only the variables already set are used).
fn installed() -> &'static Result<std::collections::BTreeMap<String, String>, String> {
    static INSTALLED: std::sync::OnceLock<
        Result<std::collections::BTreeMap<String, String>, String>,
    > = std::sync::OnceLock::new();
    INSTALLED.get_or_init(|| {
        if std::env::var_os("ELECTRA_TEST_NO_INSTALL").is_some() {
            return Err("ELECTRA_TEST_NO_INSTALL is set".into());
        }
        let script = crate::repo_root().join("scripts/test-servers.sh");
        let log = std::env::temp_dir().join(format!(
            "electra-test-servers-install-{}.log",
            std::process::id()
        ));
        let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut child = Command::new("bash")
            .arg(&script)
            .arg("install")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("running {}: {e}", script.display()))?;
        let t0 = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            if t0.elapsed() > INSTALL_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{} install` took over {INSTALL_TIMEOUT:?}",
                    script.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        if !status.success() {
            return Err(format!(
                "`{} install` failed ({status}): {text}",
                script.display()
            ));
        }
        let env = Command::new("bash")
            .arg(&script)
            .arg("env")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if !env.status.success() {
            return Err(String::from_utf8_lossy(&env.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&env.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect())
    })
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A response of [`http`].
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    /// A response header's value (the first of that name, case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request to 127.0.0.1:`port` (Connection: close), bounded by 10 s timeouts.
pub fn http(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut req =
        format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no response head"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split("\r\n")
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let body = raw[split + 4..].to_vec();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(&body)?
    } else {
        body
    };
    Ok(Response { status, head, body })
}

/// The body of a `Transfer-Encoding: chunked` response.
fn dechunk(mut raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let bad = || std::io::Error::other("bad chunked body");
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad())?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if raw.len() < size + 2 {
            return Err(bad());
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

fn expect_ok(r: std::io::Result<Response>, what: &str) {
    let r = r.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        (200..300).contains(&r.status),
        "{what}: HTTP {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
}

/// A SigV4-shaped header that moto takes as "some user" (it checks no signature). Without any
/// Authorization, moto answers 403 to a PUT that overwrites an existing key.
const MOTO_AUTH: (&str, &str) = (
    "Authorization",
    "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
);

pub fn moto_bucket(port: u16, bucket: &str) {
    expect_ok(
        http(port, "PUT", &format!("/{bucket}"), &[], b""),
        "create bucket",
    );
}

pub fn moto_put(port: u16, bucket: &str, key: &str, body: &[u8]) {
    expect_ok(
        http(port, "PUT", &format!("/{bucket}/{key}"), &[MOTO_AUTH], body),
        "put object",
    );
}

/// moto: an object anyone may read (`x-amz-acl: public-read`), as in a public bucket.
pub fn moto_put_public(port: u16, bucket: &str, key: &str, body: &[u8]) {
    expect_ok(
        http(
            port,
            "PUT",
            &format!("/{bucket}/{key}"),
            &[MOTO_AUTH, ("x-amz-acl", "public-read")],
            body,
        ),
        "put public object",
    );
}

pub fn gcs_bucket(port: u16, bucket: &str) {
    let body = format!("{{\"name\":\"{bucket}\"}}");
    expect_ok(
        http(
            port,
            "POST",
            "/storage/v1/b",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        ),
        "create bucket",
    );
}

/// fake-gcs-server accepts JSON-API media uploads (not object_store's XML-API ones).
pub fn gcs_put(port: u16, bucket: &str, key: &str, body: &[u8]) {
    let target = format!(
        "/upload/storage/v1/b/{bucket}/o?uploadType=media&name={}",
        key.replace('/', "%2F")
    );
    expect_ok(
        http(
            port,
            "POST",
            &target,
            &[("Content-Type", "application/octet-stream")],
            body,
        ),
        "upload object",
    );
}

/// moto: the keys under `prefix` in `bucket` (ListObjectsV2, up to 1000).
pub fn moto_list(port: u16, bucket: &str, prefix: &str) -> Vec<String> {
    let r = http(
        port,
        "GET",
        &format!("/{bucket}?list-type=2&prefix={prefix}"),
        &[MOTO_AUTH],
        b"",
    )
    .expect("list objects");
    assert_eq!(r.status, 200, "list: {}", r.text());
    xml_values(&r.text(), "Key")
}

/// moto: an object's bytes.
pub fn moto_get(port: u16, bucket: &str, key: &str) -> Vec<u8> {
    let r = http(port, "GET", &format!("/{bucket}/{key}"), &[MOTO_AUTH], b"").expect("get");
    assert_eq!(r.status, 200, "get {key}: {}", r.text());
    r.body
}

/// moto: the multipart uploads in progress in `bucket` (their keys).
pub fn moto_multipart_uploads(port: u16, bucket: &str) -> Vec<String> {
    let r = http(
        port,
        "GET",
        &format!("/{bucket}?uploads"),
        &[MOTO_AUTH],
        b"",
    )
    .expect("list multipart uploads");
    assert_eq!(r.status, 200, "list uploads: {}", r.text());
    // Each <Upload> names its <Key>; the document's own <Bucket>/<KeyMarker> are not uploads.
    r.text()
        .split("<Upload>")
        .skip(1)
        .flat_map(|u| xml_values(u, "Key"))
        .collect()
}

/// The texts of every `<tag>…</tag>` in `xml`.
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|s| s.split_once(&close).map(|(v, _)| v.to_string()))
        .collect()
}

/// Creates an Azurite container with a SharedKey-signed request (Azurite's documented
/// development account and key).
pub fn azurite_container(port: u16, container: &str) {
    use base64::Engine;
    const ACCOUNT: &str = "devstoreaccount1";
    const KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    // The server's own clock (SharedKey wants a date within 15 minutes of it).
    let probe =
        http(port, "GET", "/devstoreaccount1?comp=list", &[], b"").expect("azurite answers");
    let date = probe.header("Date").expect("a Date header").to_string();
    let version = "2021-08-06";
    // The verb, eleven standard headers (empty; an empty body's Content-Length counts as
    // empty), the canonical x-ms headers, the canonical resource.
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{ACCOUNT}/{ACCOUNT}/{container}\nrestype:container"
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &b64.decode(KEY).unwrap());
    let sig = b64.encode(aws_lc_rs::hmac::sign(&key, to_sign.as_bytes()).as_ref());
    let auth = format!("SharedKey {ACCOUNT}:{sig}");
    expect_ok(
        http(
            port,
            "PUT",
            &format!("/{ACCOUNT}/{container}?restype=container"),
            &[
                ("x-ms-date", date.as_str()),
                ("x-ms-version", version),
                ("Authorization", auth.as_str()),
            ],
            b"",
        ),
        "create container",
    );
}
