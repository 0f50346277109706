//! A small fault-injecting HTTP/1.1 proxy on loopback, in std threads.
//!
//! Every request is forwarded to the upstream with `Connection: close` (one request per
//! connection keeps the relay trivial). Rules match on method and a substring of the request
//! target and fire on the Nth matching request or on all of them:
//! - `Status(code)`: answer `code` without forwarding;
//! - `DropMidBody`: forward, relay the headers and half the body, then close the connection
//!   (the client sees a body shorter than its Content-Length: a transport error);
//! - `Truncate`: forward, rewrite Content-Length to half and send that half (a clean, short,
//!   well-framed response);
//! - and a global rate limit in bytes/s on response bodies, for benchmarks.
//!
//! All sockets have 30 s timeouts; the accept loop polls a stop flag every 10 ms and is joined
//! on drop, so nothing outlives the test.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Status(u16),
    DropMidBody,
    /// `DropMidBody` on a response whose ETag header is removed: object_store cannot resume it
    /// (it resumes only ETag'd bodies), so the caller's own retry must.
    DropMidBodyNoEtag,
    Truncate,
}

/// Something to do when a rule fires, before the faulty response ends (e.g. replace the object).
pub type Hook = Arc<dyn Fn() + Send + Sync>;

#[derive(Clone)]
pub struct Rule {
    pub method: Option<&'static str>,
    pub target_contains: String,
    /// Fire on the Nth matching request (1-based); `None`: on every one.
    pub nth: Option<usize>,
    pub action: Action,
    hook: Option<Hook>,
    seen: usize,
}

impl Rule {
    pub fn new(
        method: Option<&'static str>,
        target_contains: &str,
        nth: Option<usize>,
        action: Action,
    ) -> Rule {
        Rule {
            method,
            target_contains: target_contains.to_string(),
            nth,
            action,
            hook: None,
            seen: 0,
        }
    }

    /// Runs `hook` when the rule fires: after the part of the response that is sent, before the
    /// connection is closed.
    pub fn with_hook(mut self, hook: impl Fn() + Send + Sync + 'static) -> Rule {
        self.hook = Some(Arc::new(hook));
        self
    }
}

#[derive(Default)]
struct Shared {
    rules: Mutex<Vec<Rule>>,
    /// "METHOD target -> outcome" per request, with " (signed)" when it carried an
    /// `Authorization` header.
    log: Mutex<Vec<String>>,
    /// Bytes per second for response bodies (0: unlimited), and the pacing state.
    rate: Mutex<(u64, Option<Instant>, u64)>,
}

pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

const IO_TIMEOUT: Duration = Duration::from_secs(30);

impl Proxy {
    pub fn start(upstream_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, st) = (Arc::clone(&shared), Arc::clone(&stop));
        let accept = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let sh = Arc::clone(&sh);
                        std::thread::spawn(move || {
                            let _ = serve(client, upstream_port, &sh);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Proxy {
            port,
            shared,
            stop,
            accept: Some(accept),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn add_rule(&self, rule: Rule) {
        self.shared.rules.lock().unwrap().push(rule);
    }

    pub fn clear_rules(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    /// Limits response bodies to `bytes_per_sec` in all (0: unlimited).
    pub fn set_rate(&self, bytes_per_sec: u64) {
        *self.shared.rate.lock().unwrap() = (bytes_per_sec, None, 0);
    }

    pub fn log(&self) -> Vec<String> {
        self.shared.log.lock().unwrap().clone()
    }

    pub fn clear_log(&self) {
        self.shared.log.lock().unwrap().clear();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn read_head(s: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(p + 4);
            return Ok((buf, rest));
        }
        if buf.len() > 1 << 20 {
            return Err(std::io::Error::other("head too large"));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed in head",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn content_length(head: &str) -> Option<u64> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

/// The head with `Connection` replaced by `close` and optionally a new Content-Length.
fn rewrite_head(head: &str, new_len: Option<u64>) -> String {
    rewrite_head_strip(head, new_len, false)
}

fn rewrite_head_strip(head: &str, new_len: Option<u64>, strip_etag: bool) -> String {
    let mut out = String::new();
    for (i, line) in head.trim_end_matches("\r\n").split("\r\n").enumerate() {
        let name = line.split(':').next().unwrap_or("").trim();
        if i > 0
            && (name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive"))
        {
            continue;
        }
        if i > 0 && new_len.is_some() && name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        if i > 0 && strip_etag && name.eq_ignore_ascii_case("etag") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    if let Some(n) = new_len {
        out.push_str(&format!("Content-Length: {n}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

fn pick(shared: &Shared, method: &str, target: &str) -> Option<(Action, Option<Hook>)> {
    // Every matching rule counts the request; the first that fires acts.
    let mut rules = shared.rules.lock().unwrap();
    let mut fired = None;
    for r in rules.iter_mut() {
        if r.method.is_some_and(|m| m != method) || !target.contains(&r.target_contains) {
            continue;
        }
        r.seen += 1;
        if fired.is_none() && r.nth.is_none_or(|n| n == r.seen) {
            fired = Some((r.action, r.hook.clone()));
        }
    }
    fired
}

fn pace(shared: &Shared, n: usize) {
    let wait = {
        let mut g = shared.rate.lock().unwrap();
        let (rate, start, sent) = &mut *g;
        if *rate == 0 {
            return;
        }
        let t0 = *start.get_or_insert_with(Instant::now);
        *sent += n as u64;
        let due = t0 + Duration::from_secs_f64(*sent as f64 / *rate as f64);
        due.saturating_duration_since(Instant::now())
    };
    std::thread::sleep(wait);
}

fn serve(mut client: TcpStream, upstream_port: u16, shared: &Shared) -> std::io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_write_timeout(Some(IO_TIMEOUT))?;
    let (head, mut body) = read_head(&mut client)?;
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut first = head.split(' ');
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("").to_string();
    let want = content_length(&head).unwrap_or(0) as usize;
    while body.len() < want {
        let mut chunk = vec![0u8; (want - body.len()).min(1 << 16)];
        let n = client.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let (action, hook) = match pick(shared, &method, &target) {
        Some((a, h)) => (Some(a), h),
        None => (None, None),
    };
    // Whether the request was signed: `--anonymous` must never send credentials.
    let signed = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("authorization:"));
    let note = |s: &str| {
        shared.log.lock().unwrap().push(format!(
            "{method} {target} -> {s}{}",
            if signed { " (signed)" } else { "" }
        ))
    };
    if let Some(Action::Status(code)) = action {
        note(&format!("injected {code}"));
        if let Some(h) = &hook {
            h();
        }
        let msg = format!("injected fault {code}");
        let resp = format!(
            "HTTP/1.1 {code} Injected\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
            msg.len()
        );
        client.write_all(resp.as_bytes())?;
        return Ok(());
    }

    let mut up = TcpStream::connect(("127.0.0.1", upstream_port))?;
    up.set_read_timeout(Some(IO_TIMEOUT))?;
    up.set_write_timeout(Some(IO_TIMEOUT))?;
    up.write_all(rewrite_head(&head, None).as_bytes())?;
    up.write_all(&body)?;
    let (rhead, mut rest) = read_head(&mut up)?;
    let rhead = String::from_utf8_lossy(&rhead).into_owned();
    let status = rhead.split(' ').nth(1).unwrap_or("?").to_string();
    let has_body = method != "HEAD";
    let len = content_length(&rhead).filter(|_| has_body);
    // How many body bytes to pass on, and what the client is told.
    let (limit, new_len, outcome) = match (action, len) {
        (Some(Action::Truncate), Some(n)) if n > 1 => (n / 2, Some(n / 2), "truncated"),
        (Some(Action::DropMidBody | Action::DropMidBodyNoEtag), Some(n)) if n > 1 => {
            (n / 2, None, "dropped mid-body")
        }
        _ => (u64::MAX, None, "forwarded"),
    };
    note(&format!("{status} {outcome}"));
    let strip = action == Some(Action::DropMidBodyNoEtag);
    client.write_all(rewrite_head_strip(&rhead, new_len, strip).as_bytes())?;
    let mut sent = 0u64;
    let mut chunk = vec![0u8; 16 << 10];
    loop {
        if rest.is_empty() {
            if len.is_some_and(|n| sent >= n) || !has_body {
                break;
            }
            let n = up.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            rest.extend_from_slice(&chunk[..n]);
        }
        let take = (rest.len() as u64).min(limit - sent) as usize;
        pace(shared, take);
        client.write_all(&rest[..take])?;
        sent += take as u64;
        rest.drain(..take);
        if sent >= limit {
            break;
        }
    }
    client.flush()?;
    if let Some(h) = &hook {
        h();
    }
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}
