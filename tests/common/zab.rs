//! Shared helpers for the Zab tests: vector files, an in-memory `ZabHost`,
//! ensemble configs on loopback, polling with deadlines.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use zkfle::config::QuorumVerifier;
use zkfle::peer::zab::{ZabConfig, ZabHost, ZabPhase};

/// `../shared/vectors/<name>` beside the checkout, as bytes.
pub fn vector(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/vectors")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read vector {}: {e}", path.display()));
    let hex: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit in vector"))
        .collect()
}

/// Epoch state in memory, phases recorded, a stop flag.
#[derive(Default)]
pub struct MemHost {
    pub state: Mutex<HostState>,
    pub stop: AtomicBool,
}

#[derive(Default, Debug, Clone)]
pub struct HostState {
    pub accepted_epoch: i64,
    pub current_epoch: i64,
    pub last_zxid: i64,
    pub phases: Vec<ZabPhase>,
    /// Order of persistence calls, e.g. "accepted=1", "current=1".
    pub writes: Vec<String>,
}

impl MemHost {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with_epochs(accepted: i64, current: i64, last_zxid: i64) -> Self {
        let h = Self::default();
        {
            let mut s = h.state.lock();
            s.accepted_epoch = accepted;
            s.current_epoch = current;
            s.last_zxid = last_zxid;
        }
        h
    }
    pub fn snapshot(&self) -> HostState {
        self.state.lock().clone()
    }
    pub fn phase_now(&self) -> Option<ZabPhase> {
        self.state.lock().phases.last().copied()
    }
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl ZabHost for MemHost {
    fn accepted_epoch(&self) -> i64 {
        self.state.lock().accepted_epoch
    }
    fn set_accepted_epoch(&self, e: i64) -> std::io::Result<()> {
        let mut s = self.state.lock();
        s.accepted_epoch = e;
        s.writes.push(format!("accepted={e}"));
        Ok(())
    }
    fn current_epoch(&self) -> i64 {
        self.state.lock().current_epoch
    }
    fn set_current_epoch(&self, e: i64) -> std::io::Result<()> {
        let mut s = self.state.lock();
        s.current_epoch = e;
        s.writes.push(format!("current={e}"));
        Ok(())
    }
    fn last_zxid(&self) -> i64 {
        self.state.lock().last_zxid
    }
    fn set_last_zxid(&self, zxid: i64) {
        self.state.lock().last_zxid = zxid;
    }
    fn phase(&self, phase: ZabPhase) {
        self.state.lock().phases.push(phase);
    }
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// Quorum address of `sid` with port `base + sid`.
pub fn quorum_addr(base: u16, sid: i64) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], base + sid as u16))
}

/// The config text a Java 3.8 leader sends in NEWLEADER for these sids.
pub fn config_text(base: u16, election_base: u16, sids: &[i64]) -> String {
    let mut t = String::new();
    for s in sids {
        t.push_str(&format!(
            "server.{s}=127.0.0.1:{}:{}:participant\n",
            base + *s as u16,
            election_base + *s as u16
        ));
    }
    t.push_str("version=0");
    t
}

/// A voting ensemble of `sids` (all participants) seen from `me`.
pub fn ensemble_cfg(me: i64, sids: &[i64], base: u16, tick_ms: u64) -> ZabConfig {
    let quorum_addrs: BTreeMap<i64, Vec<SocketAddr>> = sids
        .iter()
        .map(|&s| (s, vec![quorum_addr(base, s)]))
        .collect();
    ZabConfig {
        my_sid: me,
        tick_time: Duration::from_millis(tick_ms),
        init_limit: 10,
        sync_limit: 3,
        verifier: QuorumVerifier::majority(sids.iter().copied()),
        quorum_listen_addrs: vec![quorum_addr(base, me)],
        quorum_addrs,
        quorum_hosts: BTreeMap::new(),
        resolver: zkfle::net::system_resolver(),
        is_observer: false,
        config_text: config_text(base, base + 100, sids),
    }
}

/// Polls `cond` every 10 ms until it holds; panics naming `what` after
/// `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < end,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A hand-driven quorum-port peer for scripted exchanges.
pub struct Scripted {
    pub stream: std::net::TcpStream,
    buf: Vec<u8>,
}

/// What reading from a scripted peer's socket saw.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// One packet: its exact bytes and decoded form.
    Packet(Vec<u8>, zkfle::wire::zab::QuorumPacket),
    /// The other side closed the connection.
    Closed,
    /// Nothing complete within the timeout.
    Timeout,
}

impl Scripted {
    pub fn new(stream: std::net::TcpStream) -> Self {
        stream.set_nodelay(true).expect("nodelay");
        Scripted {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn connect(addr: SocketAddr) -> Self {
        Self::new(std::net::TcpStream::connect(addr).expect("connect to the leader"))
    }

    pub fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.stream.write_all(bytes).expect("scripted write");
    }

    /// Writes one byte at a time (split delivery).
    pub fn send_bytewise(&mut self, bytes: &[u8]) {
        use std::io::Write;
        for b in bytes {
            self.stream.write_all(&[*b]).expect("scripted write");
        }
    }

    pub fn read(&mut self, timeout: Duration) -> Seen {
        use std::io::Read;
        use zkfle::wire::zab::QuorumPacket;
        let end = Instant::now() + timeout;
        loop {
            if let Ok((p, n)) = QuorumPacket::decode(&self.buf) {
                let raw: Vec<u8> = self.buf.drain(..n).collect();
                return Seen::Packet(raw, p);
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Seen::Timeout;
            }
            self.stream
                .set_read_timeout(Some(left.min(Duration::from_millis(50))))
                .expect("read timeout");
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Seen::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return Seen::Closed,
            }
        }
    }

    /// The next packet's exact bytes; panics naming `what` otherwise.
    pub fn expect_raw(&mut self, what: &str) -> Vec<u8> {
        match self.read(Duration::from_secs(10)) {
            Seen::Packet(raw, _) => raw,
            other => panic!("expected {what}, saw {other:?}"),
        }
    }
}
