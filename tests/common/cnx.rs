//! Test helpers for the QCM tests (helper name `cnx`, ports 21000–22999).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use zkfle::cnx::{Qcm, QcmConfig};
use zkfle::wire::{Notification, ServerState};

/// Hands out ports from a per-test-binary window of the `cnx` range, skipping
/// ports something else holds. Each test binary passes its own window so
/// binaries running side by side never collide.
pub struct PortPool {
    next: AtomicU16,
    end: u16,
}

impl PortPool {
    pub const fn new(start: u16, end: u16) -> Self {
        PortPool {
            next: AtomicU16::new(start),
            end,
        }
    }

    /// `n` ports that were free a moment ago.
    pub fn take(&self, n: usize) -> Vec<u16> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let p = self.next.fetch_add(1, Ordering::Relaxed);
            assert!(p < self.end, "test port window exhausted");
            if TcpListener::bind(("127.0.0.1", p)).is_ok() {
                out.push(p);
            }
        }
        out
    }
}

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Polls `cond` every 10 ms until it holds; panics with `what` after
/// `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// QcmConfig for `sid` in an ensemble whose sid `i+1` listens on `ports[i]`.
pub fn ensemble_config(sid: i64, ports: &[u16]) -> QcmConfig {
    let peers: BTreeMap<i64, Vec<SocketAddr>> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| (i as i64 + 1, vec![addr(*p)]))
        .filter(|(s, _)| *s != sid)
        .collect();
    let mut cfg = QcmConfig::new(sid, vec![addr(ports[(sid - 1) as usize])], peers);
    cfg.cnx_timeout = Duration::from_secs(2);
    cfg.handshake_timeout = Duration::from_secs(2);
    cfg.bind_retry = 5;
    cfg
}

/// A LOOKING notification tagged with `leader` and `round`.
pub fn note(leader: i64, round: i64) -> Notification {
    Notification {
        state: ServerState::Looking,
        leader,
        zxid: 0x1_0000_0000 + round,
        election_epoch: round,
        peer_epoch: 1,
        version: 0,
    }
}

/// Established TCP connections (state 01) in /proc/net/tcp whose local port
/// is one of `ports`: on loopback, one per connection accepted by a listener
/// on those ports.
pub fn established_on(ports: &[u16]) -> usize {
    sockets_on(ports, "01")
}

/// Sockets in state `st` (hex, as /proc/net/tcp prints it) whose local port
/// is one of `ports`, IPv4 and IPv6 (a JVM's sockets are IPv6 ones carrying
/// IPv4-mapped addresses).
pub fn sockets_on(ports: &[u16], st: &str) -> usize {
    let mut text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.push_str(&std::fs::read_to_string("/proc/net/tcp6").unwrap_or_default());
    text.lines()
        .filter(|line| !line.trim_start().starts_with("sl"))
        .filter(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 4 || f[3] != st {
                return false;
            }
            let local_port = f[1]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            local_port.is_some_and(|p| ports.contains(&p))
        })
        .count()
}

/// Waits up to `timeout` for the peer to close `s` (EOF or reset). Bytes the
/// QCM sends before closing (none are expected) are ignored.
pub fn closed_within(s: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let _ = s.set_read_timeout(Some(left.min(Duration::from_millis(200))));
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// True if `s` is still open: nothing to read and no EOF right now.
pub fn still_open(s: &mut TcpStream) -> bool {
    let _ = s.set_nonblocking(true);
    let mut buf = [0u8; 1];
    let open = match s.peek(&mut buf) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => e.kind() == ErrorKind::WouldBlock,
    };
    let _ = s.set_nonblocking(false);
    open
}

/// A V1 handshake from `sid` advertising `port` on 127.0.0.1.
pub fn v1_handshake(sid: i64, port: u16) -> Vec<u8> {
    let text = format!("127.0.0.1:{port}");
    let mut v = Vec::new();
    v.extend_from_slice(&(-65536i64).to_be_bytes());
    v.extend_from_slice(&sid.to_be_bytes());
    v.extend_from_slice(&(text.len() as i32).to_be_bytes());
    v.extend_from_slice(text.as_bytes());
    v
}

/// Connects to `to` and writes `bytes` in one call.
pub fn raw_peer(to: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(2))
        .expect("connect to the QCM under test");
    s.set_nodelay(true).ok();
    s.write_all(bytes).expect("write to the QCM under test");
    s
}

/// A vector from shared/vectors: (metadata lines, bytes).
pub struct Vector {
    pub name: String,
    pub meta: Vec<(String, String)>,
    pub bytes: Vec<u8>,
}

impl Vector {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors")
}

/// Reads every `<prefix>*.hex` vector, sorted by name.
pub fn vectors(prefix: &str) -> Vec<Vector> {
    let mut out = Vec::new();
    let dir = std::fs::read_dir(vectors_dir()).expect("shared/vectors is readable");
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(prefix) || !name.ends_with(".hex") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).expect("vector readable");
        let (mut meta, mut hex) = (Vec::new(), String::new());
        for line in text.lines() {
            if let Some(m) = line.strip_prefix('#') {
                if let Some((k, v)) = m.trim().split_once(':') {
                    meta.push((k.trim().to_string(), v.trim().to_string()));
                }
            } else {
                hex.extend(line.chars().filter(|c| !c.is_whitespace()));
            }
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        out.push(Vector {
            name: name.trim_end_matches(".hex").to_string(),
            meta,
            bytes,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Starts QCMs for sids 1..=n on `ports`.
pub fn start_ensemble(ports: &[u16]) -> Vec<Qcm> {
    (1..=ports.len() as i64)
        .map(|sid| Qcm::start(ensemble_config(sid, ports)).expect("QCM starts"))
        .collect()
}

/// Connects to `to` from the local address `from_ip` (any 127/8 address
/// works on Linux loopback), to play a peer on another host.
pub fn connect_from(from_ip: std::net::IpAddr, to: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("test runtime");
    let s = rt
        .block_on(async {
            let sock = tokio::net::TcpSocket::new_v4()?;
            sock.bind(SocketAddr::new(from_ip, 0))?;
            sock.connect(to).await
        })
        .expect("connect from the given address");
    let s = s.into_std().expect("into std");
    s.set_nonblocking(false).expect("blocking");
    s.set_nodelay(true).ok();
    s
}

/// One 40-byte notification frame as zkfle sends it.
pub fn frame40(n: &Notification) -> Vec<u8> {
    n.encode_frame_40().to_vec()
}

/// Reads one frame (length prefix + body) from `s`.
pub fn read_frame(s: &mut TcpStream, timeout: Duration) -> Option<Vec<u8>> {
    s.set_read_timeout(Some(timeout)).ok()?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let n = i32::from_be_bytes(len);
    if !(1..=524_288).contains(&n) {
        return None;
    }
    let mut body = vec![0u8; n as usize];
    s.read_exact(&mut body).ok()?;
    Some(body)
}
