//! `zkfle bench notify`: notification throughput of an election port.
//!
//! The tool joins the target's election port as a configured non-voting sid
//! (best an observer that never runs) and pipelines LOOKING notifications.
//! A ZooKeeper peer answers every notification from a non-voter at once with
//! its current vote (PROTOCOL.md §4.3 rule 1), so counting replies measures
//! the target's whole receive → decide → send path. The sid must be larger
//! than the target's, or the tie-break makes the target hang up and dial back.
//!
//! Java's send queue holds one message per peer and drops the older one when
//! a new reply is queued, so replies can be lost under load: a window slot
//! whose reply has not come within [`LOST_AFTER`] is counted lost and
//! refilled, and the figure is replies received per second.

use crate::tls::{PeerCloser, PeerReader, PeerStream, PeerWriter};
use crate::wire::{frame, Handshake, HandshakeFormat, Notification, PeerAddress, ServerState};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A window slot with no reply for this long is counted lost and refilled.
pub const LOST_AFTER: Duration = Duration::from_millis(100);

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Pipelined request/reply with `window` outstanding per connection.
    Reply,
    /// Send only, as fast as the socket takes them; the target's receive
    /// rate comes from its `mntr` counters when `mntr` is given.
    Ingest,
    /// Window 1: round-trip latency percentiles.
    Latency,
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct NotifyOptions {
    /// The target's election address.
    pub peer: String,
    /// The sid to connect as; connection `i` uses `sid + i` because a
    /// ZooKeeper peer keeps one link per sid.
    pub sid: i64,
    /// Notifications in flight per connection (Reply mode).
    pub window: usize,
    /// Parallel connections, as sids `sid`, `sid + 1`, ...
    pub connections: usize,
    /// How long to measure.
    pub duration: Duration,
    /// Body size: 40 (3.4.6+ layout) or 44 (3.5+ layout, empty config).
    pub size: usize,
    /// What to measure.
    pub mode: Mode,
    /// The target's client port, for `mntr` counters (ingest mode).
    pub mntr: Option<String>,
    /// Print a progress line each second.
    pub progress: bool,
    /// Connect with quorum TLS (the target runs `sslQuorum=true`).
    pub tls: Option<crate::tls::QuorumTls>,
}

impl Default for NotifyOptions {
    fn default() -> Self {
        NotifyOptions {
            peer: String::new(),
            sid: 100,
            window: 64,
            connections: 1,
            duration: Duration::from_secs(10),
            size: 40,
            mode: Mode::Reply,
            mntr: None,
            progress: true,
            tls: None,
        }
    }
}

/// Why a run produced no figure.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// An option out of range or inconsistent with another.
    #[error("bad option: {0}")]
    BadOption(String),
    /// The target's address did not resolve.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// The TCP (or TLS) connection failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The target.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    #[error(
        "{addr} closed the connection of sid {sid} right after the handshake: \
         it does not keep this sid (is sid {sid} in its zoo.cfg and larger than its own sid?)"
    )]
    /// The target dropped the connection after the handshake: it does
    /// not keep a link for this sid.
    Refused {
        /// The target.
        addr: SocketAddr,
        /// The sid the tool connected as.
        sid: i64,
    },
    /// The target has no settled vote.
    #[error("{addr} is LOOKING (no settled leader): its replies are not a vote to measure")]
    TargetLooking {
        /// The target.
        addr: SocketAddr,
    },
    /// A reply did not decode as a notification.
    #[error("{addr} sent an undecodable reply: {reason}")]
    BadReply {
        /// The target.
        addr: SocketAddr,
        /// The decoder's complaint.
        reason: String,
    },
    /// The target closed the connection mid-run.
    #[error("{addr} closed the connection during the run")]
    Closed {
        /// The target.
        addr: SocketAddr,
    },
    /// Nothing came back in time.
    #[error("no reply from {addr} within {ms} ms")]
    Silent {
        /// The target.
        addr: SocketAddr,
        /// How long the tool waited.
        ms: u128,
    },
    /// Reading or writing failed.
    #[error("io error with {addr}: {source}")]
    Io {
        /// The target.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct NotifyReport {
    /// Notifications sent.
    pub sent: u64,
    /// Replies received.
    pub replies: u64,
    /// Window slots refilled after 100 ms without a reply.
    pub lost: u64,
    /// Measured time.
    pub elapsed: Duration,
    /// Replies per second (Reply/Latency) or sends per second (Ingest).
    pub notifications_per_sec: f64,
    /// Target's receive rate from `mntr` deltas (Ingest with `mntr`).
    pub target_received_per_sec: Option<f64>,
    /// Round-trip percentiles in microseconds (Latency).
    pub latency_us: Option<LatencySummary>,
    /// The vote the target answered with (state, leader, peer epoch).
    pub target_vote: Option<(ServerState, i64, i64)>,
}

/// Round-trip percentiles, microseconds.
#[derive(Debug, Clone, Copy)]
pub struct LatencySummary {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Slowest.
    pub max: u64,
    /// Round trips measured.
    pub samples: usize,
}

impl NotifyReport {
    /// The report as one JSON object (for `--json`).
    pub fn to_json(&self) -> String {
        let lat = match self.latency_us {
            Some(l) => format!(
                "{{\"p50_us\":{},\"p99_us\":{},\"max_us\":{},\"samples\":{}}}",
                l.p50, l.p99, l.max, l.samples
            ),
            None => "null".to_string(),
        };
        let target = match self.target_received_per_sec {
            Some(x) => format!("{x:.1}"),
            None => "null".to_string(),
        };
        format!(
            "{{\"sent\":{},\"replies\":{},\"lost\":{},\"elapsed_s\":{:.3},\"notifications_per_sec\":{:.1},\"target_received_per_sec\":{},\"latency\":{}}}",
            self.sent,
            self.replies,
            self.lost,
            self.elapsed.as_secs_f64(),
            self.notifications_per_sec,
            target,
            lat
        )
    }
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    replies: AtomicU64,
    lost: AtomicU64,
}

/// One benchmark connection: handshake done, first reply checked.
struct Conn {
    addr: SocketAddr,
    /// Reads replies (plaintext or TLS).
    stream: PeerReader,
    /// Writes requests.
    writer: PeerWriter,
    /// The socket (timeouts) and its close.
    closer: PeerCloser,
    request: Vec<u8>,
    /// The reader that took the first replies: it may hold part of the
    /// next frame (Java writes a frame's length and body separately), so
    /// the run must go on with it, not with a fresh one.
    reader: ReplyReader,
}

fn resolve(peer: &str) -> Result<SocketAddr, BenchError> {
    peer.to_socket_addrs()
        .map_err(|_| BenchError::Resolve(peer.to_string()))?
        .next()
        .ok_or_else(|| BenchError::Resolve(peer.to_string()))
}

fn request_frame(size: usize, sid: i64) -> Vec<u8> {
    let n = Notification {
        state: ServerState::Looking,
        leader: sid,
        zxid: 0,
        election_epoch: 1,
        peer_epoch: 0,
        version: 0,
    };
    let mut body = Vec::with_capacity(size);
    if size == 44 {
        n.encode(crate::wire::notification::Layout::V2, &[], &mut body);
    } else {
        body.extend_from_slice(&n.encode_40());
    }
    let mut out = Vec::with_capacity(size + 4);
    frame::encode_frame(&body, &mut out);
    out
}

/// Reads frames from a stream into a buffer and hands out decoded replies.
struct ReplyReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReplyReader {
    fn new() -> Self {
        ReplyReader {
            buf: vec![0; 256 * 1024],
            start: 0,
            end: 0,
        }
    }

    /// Blocks for at least one more read; returns the replies decoded from
    /// everything buffered. `Ok(None)` on a closed connection.
    fn read_batch(
        &mut self,
        stream: &mut dyn Read,
        addr: SocketAddr,
        out: &mut Vec<Notification>,
    ) -> Result<Option<()>, BenchError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = match stream.read(&mut self.buf[self.end..]) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                return Ok(Some(()));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Some(())),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(None),
            Err(source) => return Err(BenchError::Io { addr, source }),
        };
        self.end += n;
        loop {
            match frame::split_frame(&self.buf[self.start..self.end]) {
                Ok((body, used)) => {
                    let (note, _) =
                        Notification::decode(body).map_err(|e| BenchError::BadReply {
                            addr,
                            reason: e.to_string(),
                        })?;
                    out.push(note);
                    self.start += used;
                }
                Err(crate::wire::WireError::Incomplete { .. }) => break,
                Err(e) => {
                    return Err(BenchError::BadReply {
                        addr,
                        reason: e.to_string(),
                    })
                }
            }
        }
        Ok(Some(()))
    }
}

fn open(
    opts: &NotifyOptions,
    addr: SocketAddr,
    sid: i64,
) -> Result<(Conn, Notification), BenchError> {
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|source| BenchError::Connect { addr, source })?;
    tcp.set_nodelay(true)
        .map_err(|source| BenchError::Io { addr, source })?;
    let local = tcp
        .local_addr()
        .map_err(|source| BenchError::Io { addr, source })?;
    // sslQuorum targets: the TLS handshake first, as a ZooKeeper peer does.
    let peer_stream = match &opts.tls {
        Some(tls) => crate::tls::connect_blocking(tls, tcp, &[], Duration::from_secs(5))
            .map_err(|source| BenchError::Connect { addr, source })?,
        None => PeerStream::Plain(tcp),
    };
    let (mut stream, mut writer, closer) = peer_stream
        .split()
        .map_err(|source| BenchError::Io { addr, source })?;
    let mut hs = Vec::new();
    Handshake {
        format: HandshakeFormat::V1,
        sid,
        addresses: vec![PeerAddress {
            host: local.ip().to_string(),
            port: local.port(),
        }],
    }
    .encode(&mut hs);
    let request = request_frame(opts.size, sid);
    // The handshake and the first notification go in one write, as a Java
    // peer's first message would follow its handshake.
    let mut first = hs;
    first.extend_from_slice(&request);
    writer
        .write_all(&first)
        .map_err(|source| BenchError::Io { addr, source })?;
    closer
        .tcp()
        .set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|source| BenchError::Io { addr, source })?;
    // The first answer proves the target kept the connection. ZooKeeper
    // re-sends the last message it wrote to this sid on a new connection,
    // which may be a stale vote, so the answer to a second notification is
    // what we check.
    let mut reader = ReplyReader::new();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut second_sent = false;
    loop {
        if Instant::now() > deadline {
            return Err(BenchError::Silent { addr, ms: 3000 });
        }
        if reader.read_batch(&mut stream, addr, &mut got)?.is_none() {
            return Err(BenchError::Refused { addr, sid });
        }
        if !got.is_empty() && !second_sent {
            got.clear();
            writer
                .write_all(&request)
                .map_err(|source| BenchError::Io { addr, source })?;
            second_sent = true;
        } else if let Some(last) = got.last() {
            if last.state == ServerState::Looking {
                return Err(BenchError::TargetLooking { addr });
            }
            let vote = *last;
            // Drain anything else in flight so the run starts clean.
            closer
                .tcp()
                .set_read_timeout(Some(Duration::from_millis(20)))
                .map_err(|source| BenchError::Io { addr, source })?;
            let mut extra = Vec::new();
            let _ = reader.read_batch(&mut stream, addr, &mut extra)?;
            return Ok((
                Conn {
                    addr,
                    stream,
                    writer,
                    closer,
                    request,
                    reader,
                },
                vote,
            ));
        }
    }
}

fn mntr_received(client: &str) -> Option<u64> {
    let addr = resolve(client).ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"mntr").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('\t')?;
        (k == "zk_notifications_received").then(|| v.trim().parse().ok())?
    })
}

/// Runs the benchmark. Progress lines go to stdout when `opts.progress`.
pub fn run(opts: &NotifyOptions) -> Result<NotifyReport, BenchError> {
    if opts.size != 40 && opts.size != 44 {
        return Err(BenchError::BadOption(format!(
            "--size {} (40 or 44)",
            opts.size
        )));
    }
    if opts.connections == 0 || opts.window == 0 {
        return Err(BenchError::BadOption(
            "window and connections must be at least 1".into(),
        ));
    }
    let addr = resolve(&opts.peer)?;
    let window = if opts.mode == Mode::Latency {
        1
    } else {
        opts.window
    };
    let mut conns = Vec::new();
    let mut vote = None;
    for i in 0..opts.connections {
        let (c, v) = open(opts, addr, opts.sid + i as i64)?;
        vote = Some((v.state, v.leader, v.peer_epoch));
        conns.push(c);
    }
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mntr_before = match (opts.mode, &opts.mntr) {
        (Mode::Ingest, Some(m)) => mntr_received(m),
        _ => None,
    };
    let started = Instant::now();
    let mut handles = Vec::new();
    for c in conns {
        let counters = counters.clone();
        let stop = stop.clone();
        let mode = opts.mode;
        handles.push(std::thread::spawn(move || {
            drive(c, window, mode, &counters, &stop)
        }));
    }
    let mut last = (0u64, started);
    while started.elapsed() < opts.duration && !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(
            Duration::from_millis(50).min(opts.duration.saturating_sub(started.elapsed())),
        );
        if opts.progress && last.1.elapsed() >= Duration::from_secs(1) {
            let done = if opts.mode == Mode::Ingest {
                counters.sent.load(Ordering::Relaxed)
            } else {
                counters.replies.load(Ordering::Relaxed)
            };
            let rate = (done - last.0) as f64 / last.1.elapsed().as_secs_f64();
            println!(
                "t={:.0}s rate={:.0}/s sent={} replies={} lost={}",
                started.elapsed().as_secs_f64(),
                rate,
                counters.sent.load(Ordering::Relaxed),
                counters.replies.load(Ordering::Relaxed),
                counters.lost.load(Ordering::Relaxed)
            );
            last = (done, Instant::now());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let mut latencies = Vec::new();
    let mut first_err = None;
    for h in handles {
        match h.join() {
            Ok(Ok(mut l)) => latencies.append(&mut l),
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(_) => {
                first_err
                    .get_or_insert(BenchError::BadOption("a benchmark thread panicked".into()));
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    let sent = counters.sent.load(Ordering::Relaxed);
    let replies = counters.replies.load(Ordering::Relaxed);
    let lost = counters.lost.load(Ordering::Relaxed);
    let secs = elapsed.as_secs_f64();
    let target_received_per_sec = match (mntr_before, &opts.mntr) {
        (Some(before), Some(m)) => {
            mntr_received(m).map(|after| after.saturating_sub(before) as f64 / secs)
        }
        _ => None,
    };
    let latency_us = if latencies.is_empty() {
        None
    } else {
        latencies.sort_unstable();
        let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
        Some(LatencySummary {
            p50: pick(0.50),
            p99: pick(0.99),
            max: *latencies.last().unwrap_or(&0),
            samples: latencies.len(),
        })
    };
    let counted = if opts.mode == Mode::Ingest {
        sent
    } else {
        replies
    };
    if counted == 0 {
        return Err(BenchError::Silent {
            addr,
            ms: elapsed.as_millis(),
        });
    }
    Ok(NotifyReport {
        sent,
        replies,
        lost,
        elapsed,
        notifications_per_sec: counted as f64 / secs,
        target_received_per_sec,
        latency_us,
        target_vote: vote,
    })
}

/// Drives one connection until `stop`; returns round-trip samples in µs
/// (latency mode only).
fn drive(
    mut c: Conn,
    window: usize,
    mode: Mode,
    counters: &Counters,
    stop: &AtomicBool,
) -> Result<Vec<u64>, BenchError> {
    let addr = c.addr;
    let io = |source| BenchError::Io { addr, source };
    if mode == Mode::Ingest {
        // 1024 notifications per write: the target's receive path is what
        // is measured, not our syscall rate.
        let batch: Vec<u8> = c
            .request
            .iter()
            .copied()
            .cycle()
            .take(c.request.len() * 1024)
            .collect();
        c.closer
            .tcp()
            .set_write_timeout(Some(Duration::from_millis(200)))
            .map_err(io)?;
        // Replies still arrive; drain them on a side thread so the target's
        // sender never blocks on a full socket.
        let mut rd = c.stream;
        let drain = std::thread::spawn(move || {
            let mut sink = vec![0u8; 256 * 1024];
            while let Ok(n) = rd.read(&mut sink) {
                if n == 0 {
                    break;
                }
            }
        });
        let mut result = Ok(Vec::new());
        while !stop.load(Ordering::Relaxed) {
            match c.writer.write(&batch) {
                Ok(n) => {
                    counters
                        .sent
                        .fetch_add((n / c.request.len()) as u64, Ordering::Relaxed);
                    if n % c.request.len() != 0 {
                        // Finish the partial frame so the stream stays framed.
                        let rest = c.request.len() - n % c.request.len();
                        if let Err(e) = c.writer.write_all(&batch[n..n + rest]) {
                            result = Err(io(e));
                            break;
                        }
                        counters.sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut => {}
                Err(_) => {
                    result = Err(BenchError::Closed { addr });
                    break;
                }
            }
        }
        c.closer.close();
        let _ = drain.join();
        return result;
    }
    c.closer
        .tcp()
        .set_read_timeout(Some(Duration::from_millis(20)))
        .map_err(io)?;
    let mut outstanding: VecDeque<Instant> = VecDeque::with_capacity(window);
    let mut replies = Vec::with_capacity(1024);
    let mut batch = Vec::with_capacity(c.request.len() * window);
    let mut samples = Vec::new();
    let mut last_reply = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while outstanding
            .front()
            .is_some_and(|t| now.duration_since(*t) > LOST_AFTER)
        {
            outstanding.pop_front();
            counters.lost.fetch_add(1, Ordering::Relaxed);
        }
        let free = window - outstanding.len();
        if free > 0 {
            batch.clear();
            for _ in 0..free {
                batch.extend_from_slice(&c.request);
                outstanding.push_back(now);
            }
            c.writer
                .write_all(&batch)
                .map_err(|_| BenchError::Closed { addr })?;
            counters.sent.fetch_add(free as u64, Ordering::Relaxed);
        }
        replies.clear();
        if c.reader
            .read_batch(&mut c.stream, addr, &mut replies)?
            .is_none()
        {
            return Err(BenchError::Closed { addr });
        }
        if replies.is_empty() {
            if last_reply.elapsed() > Duration::from_secs(5) {
                return Err(BenchError::Silent { addr, ms: 5000 });
            }
            continue;
        }
        last_reply = Instant::now();
        for r in &replies {
            if r.state == ServerState::Looking {
                return Err(BenchError::TargetLooking { addr });
            }
            // Replies are identical, so each one answers the oldest
            // outstanding notification.
            if let Some(t) = outstanding.pop_front() {
                if mode == Mode::Latency {
                    samples.push(last_reply.duration_since(t).as_micros() as u64);
                }
            }
        }
        counters
            .replies
            .fetch_add(replies.len() as u64, Ordering::Relaxed);
    }
    c.closer.close();
    Ok(samples)
}
