//! Connection establishment on the QCM's tokio runtime: listeners, inbound
//! handshakes under a per-connection deadline, the tie-break, and dialling.
//! Nothing here blocks another connection (PROTOCOL.md §8 R1/R2).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::addrs;
use super::secure::{self, Establishing, Refusal};
use super::stats::{bump, LogKind};
use super::{CnxError, DialFailure, PeerSlot, Shared, MAX_PENDING_HANDSHAKES};
use crate::net::{HostPort, Resolver};
use crate::wire::{Handshake, WireError};

/// How long a smaller sid waits for a larger one to call back after the
/// handshake-and-close prompt before prompting again.
const CALLBACK_WAIT: Duration = Duration::from_secs(1);
/// First and largest pause between establishment attempts while something
/// is queued for an unreachable peer.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Largest pause while no name of the peer resolves: it is only a lookup
/// (cheap, and answered from cache by any caching resolver), and the
/// ensemble should take a peer in as soon as its name appears in DNS.
const MAX_NAME_BACKOFF: Duration = Duration::from_millis(250);
/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Resolves this server's election address `hp` and binds it (the
/// wildcard on its port with `all_ips`), retrying 1 s apart; `retry`
/// consecutive failures, of the lookup or of the bind, give up
/// (`electionPortBindRetry`, 0 = forever; PROTOCOL.md §2.7). Returns the
/// listener and the resolved configured address (what is advertised).
pub(crate) fn bind_with_retry(
    hp: &HostPort,
    all_ips: bool,
    retry: u32,
    resolver: &dyn Resolver,
) -> Result<(std::net::TcpListener, SocketAddr), CnxError> {
    let mut attempts = 0u32;
    loop {
        attempts = attempts.saturating_add(1);
        let configured = match hp.resolve(resolver) {
            Ok(a) => a,
            Err(source) => {
                if retry != 0 && attempts >= retry {
                    log::error!("cannot resolve this server's election address {hp} after {attempts} attempts: {source}");
                    return Err(CnxError::Unresolvable {
                        addr: hp.clone(),
                        attempts,
                        source,
                    });
                }
                log::warn!("cannot resolve this server's election address {hp} (attempt {attempts}): {source}; retrying in 1 s");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        let addr = if all_ips {
            let any: IpAddr = match configured.ip() {
                IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
                IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
            };
            SocketAddr::new(any, configured.port())
        } else {
            configured
        };
        let err = match std::net::TcpListener::bind(addr) {
            Ok(l) => match l.set_nonblocking(true) {
                Ok(()) => return Ok((l, configured)),
                Err(e) => e,
            },
            Err(e) => e,
        };
        if retry != 0 && attempts >= retry {
            log::error!("cannot bind election address {addr} after {attempts} attempts: {err}");
            return Err(CnxError::Bind {
                addr,
                attempts,
                source: err,
            });
        }
        log::warn!(
            "cannot bind election address {addr} (attempt {attempts}): {err}; retrying in 1 s"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Starts the accept loop for one bound listener.
pub(crate) fn spawn_listener(
    shared: &Arc<Shared>,
    listener: std::net::TcpListener,
) -> Result<(), CnxError> {
    let _guard = shared.handle.enter();
    let listener = TcpListener::from_std(listener).map_err(CnxError::Runtime)?;
    shared.handle.spawn(accept_loop(shared.clone(), listener));
    Ok(())
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                bump(&shared.counters.connections_accepted, 1);
                let pending = shared.pending_handshakes.fetch_add(1, Ordering::AcqRel);
                if pending >= MAX_PENDING_HANDSHAKES {
                    shared.pending_handshakes.fetch_sub(1, Ordering::AcqRel);
                    bump(&shared.counters.bad_handshakes, 1);
                    shared.limits.warn(
                        LogKind::Accept,
                        format_args!("closing election connection from {remote}: {pending} handshakes already pending"),
                    );
                    continue;
                }
                let id = shared.new_link_id();
                tokio::spawn(inbound(shared.clone(), stream, remote, id));
            }
            Err(e) => {
                // An accept error is about this one connection or a passing
                // resource shortage; the listener lives on (Java's can die,
                // PROTOCOL.md §8 R3).
                shared.limits.warn(
                    LogKind::Accept,
                    format_args!("election listener accept failed: {e}"),
                );
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

/// Decrements the pending-handshake count however the read ends.
struct Pending<'a>(&'a Shared);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.pending_handshakes.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug)]
enum HandshakeError {
    Wire(WireError),
    Io(std::io::Error),
    /// The peer closed after this many bytes.
    Eof(usize),
    /// Refused by quorum TLS before any handshake byte.
    Refused(Refusal),
}

/// Reads exactly one handshake, never a byte more: the frames that follow
/// belong to the RecvWorker. Splits anywhere are fine (unlike 3.8, which
/// needs the address in one segment).
async fn read_handshake<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Handshake, HandshakeError> {
    let mut buf: Vec<u8> = Vec::with_capacity(64);
    loop {
        match Handshake::decode(&buf) {
            Ok((hs, _)) => return Ok(hs),
            Err(WireError::Incomplete { needed }) => {
                let mut got = buf.len();
                buf.resize(got + needed, 0);
                while got < buf.len() {
                    let n = stream
                        .read(&mut buf[got..])
                        .await
                        .map_err(HandshakeError::Io)?;
                    if n == 0 {
                        return Err(HandshakeError::Eof(got));
                    }
                    got += n;
                }
            }
            Err(e) => return Err(HandshakeError::Wire(e)),
        }
    }
}

async fn inbound(shared: Arc<Shared>, stream: TcpStream, remote: SocketAddr, id: u64) {
    let _ = stream.set_nodelay(true);
    // One deadline for the TLS handshake (if any) and the election
    // handshake together: a client stalling in either delays no one else.
    // The socket stays open (in `held`) until the outcome is counted, so a
    // peer that sees the close also sees the counter moved.
    let mut held: Option<Establishing> = None;
    let result = {
        let _pending = Pending(&shared);
        let held = &mut held;
        let tls = shared.cfg.tls.as_ref();
        tokio::time::timeout(shared.cfg.handshake_timeout, async move {
            let stream = secure::inbound(tls, stream, remote)
                .await
                .map_err(HandshakeError::Refused)?;
            read_handshake(held.insert(stream)).await
        })
        .await
    };
    let hs = match result {
        Ok(Ok(hs)) => hs,
        Ok(Err(HandshakeError::Eof(0))) | Ok(Err(HandshakeError::Refused(Refusal::Silent))) => {
            // Port scanners and health checks: not worth a warning.
            log::debug!("election connection from {remote} closed before a handshake");
            return;
        }
        Ok(Err(HandshakeError::Refused(refusal))) => {
            bump(&shared.counters.tls_refused, 1);
            match refusal {
                Refusal::Plaintext => {
                    shared.limits.warn(
                        LogKind::Tls,
                        format_args!("Blocked insecure connection attempt: plaintext election connection from {remote} refused (sslQuorum=true, portUnification=false)"),
                    );
                }
                Refusal::Tls(e) => {
                    shared.limits.warn(
                        LogKind::Tls,
                        format_args!(
                            "closing election connection from {remote}: TLS handshake failed: {e}"
                        ),
                    );
                }
                Refusal::Silent => {}
            }
            return;
        }
        Ok(Err(e)) => {
            bump(&shared.counters.bad_handshakes, 1);
            let what = match e {
                HandshakeError::Wire(e) => e.to_string(),
                HandshakeError::Io(e) => e.to_string(),
                HandshakeError::Eof(n) => format!("closed after {n} handshake bytes"),
                HandshakeError::Refused(r) => format!("{r:?}"),
            };
            shared.limits.warn(
                LogKind::Handshake,
                format_args!("closing election connection from {remote}: bad handshake: {what}"),
            );
            return;
        }
        Err(_) => {
            bump(&shared.counters.bad_handshakes, 1);
            shared.limits.warn(
                LogKind::Handshake,
                format_args!(
                    "closing election connection from {remote}: no handshake within {:?}",
                    shared.cfg.handshake_timeout
                ),
            );
            return;
        }
    };
    let Some(stream) = held else {
        return;
    };
    on_handshake(&shared, hs, stream, remote, id);
}

/// The acceptor's side of the tie-break (PROTOCOL.md §2.4, §2.5, §8).
fn on_handshake(
    shared: &Arc<Shared>,
    hs: Handshake,
    stream: Establishing,
    remote: SocketAddr,
    id: u64,
) {
    let sid = hs.sid;
    let me = shared.my_sid();
    // Advertised addresses are only ever logged: we dial configured ones.
    let advertised = hs
        .addresses
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join("|");
    log::debug!(
        "election handshake from {remote}: sid {sid}, {:?}, advertises [{advertised}], {}",
        hs.format,
        stream.describe()
    );
    if sid == me {
        // 3.8 leaves such a socket open and unread forever (R5).
        bump(&shared.counters.own_sid_rejected, 1);
        shared.limits.warn(
            LogKind::Rejected,
            format_args!("closing election connection from {remote}: it claims our own sid {sid}"),
        );
        return;
    }
    match shared.slot(sid) {
        Some(slot) if slot.configured => {
            if sid < me {
                // Only connections dialled by the larger sid survive. A
                // smaller sid dials only after losing its side of the link,
                // so ours is stale: dial back at the configured address and
                // let the new link replace it (R13).
                drop(stream);
                if let Some(live) = slot.link_id().filter(|&l| l > id) {
                    // Our live link was connected after this prompt was
                    // accepted, so it reaches the smaller sid after the
                    // prompt left: it is the call-back the prompt asks for.
                    // Dialling again would only replace a fresh link (in a
                    // cold start of 51 peers, ~900 redundant links).
                    log::debug!("sid {sid} dialled in from {remote} (connection {id}); link {live} is newer, no call-back needed");
                    return;
                }
                bump(&shared.counters.dial_backs, 1);
                log::debug!("sid {sid} dialled in from {remote}; dialling it back at its configured address");
                connect(shared, &slot, true);
                return;
            }
            let from_configured_host = slot.is_configured_host(remote.ip());
            if !from_configured_host {
                if slot.has_names() {
                    // Configured by name: it may have moved, or we never
                    // looked it up (a larger sid dials us first). Look
                    // again, so its next connection is recognised.
                    addrs::refresh(shared, &slot);
                }
                if slot.is_up() {
                    bump(&shared.counters.impostors_rejected, 1);
                    shared.limits.warn_peer(
                        LogKind::Rejected,
                        sid,
                        format_args!(
                            "closing election connection from {remote} claiming sid {sid}: not its configured host and sid {sid} has a live link"
                        ),
                    );
                    return;
                }
                if slot.has_names() {
                    log::info!("sid {sid} connected from {remote}, not an address its name resolved to before (advertises [{advertised}]); accepted as it has no live link");
                } else {
                    log::warn!("sid {sid} connected from {remote}, not its configured host (advertises [{advertised}]); accepted as it has no live link");
                }
            }
            hand_over(shared, sid, id, stream, remote);
        }
        _ => {
            if sid < me {
                // 3.8 dials such a sid back at whatever it advertised (R4).
                bump(&shared.counters.unknown_low_sid_rejected, 1);
                shared.limits.warn(
                    LogKind::Rejected,
                    format_args!(
                        "closing election connection from {remote}: sid {sid} is in no configuration (advertises [{advertised}]; not dialled)"
                    ),
                );
                return;
            }
            hand_over(shared, sid, id, stream, remote);
        }
    }
}

/// Moves an established tokio socket (TLS state included) to the
/// blocking worker threads.
fn hand_over(
    shared: &Arc<Shared>,
    sid: i64,
    id: u64,
    stream: Establishing,
    remote: SocketAddr,
) -> bool {
    let peer_stream = match stream.into_peer_stream() {
        Ok(s) => s,
        Err(e) => {
            log::warn!("cannot hand over election connection to sid {sid}: {e}");
            return false;
        }
    };
    shared.install_link(sid, id, peer_stream, remote)
}

/// Starts a dial loop for a configured sid unless one is running. `force`
/// dials a smaller sid even though a link is live (it dialled us, so its
/// side of our link is gone).
pub(crate) fn connect(shared: &Arc<Shared>, slot: &Arc<PeerSlot>, force: bool) {
    if !slot.configured || shared.is_shutting_down() {
        return;
    }
    if force {
        slot.redial.store(true, Ordering::Release);
        // A running loop may be asleep in its backoff: dial now.
        slot.wake.notify_one();
    }
    if slot.connecting.swap(true, Ordering::AcqRel) {
        return;
    }
    shared.handle.spawn(dial_loop(shared.clone(), slot.clone()));
}

async fn dial_loop(shared: Arc<Shared>, slot: Arc<PeerSlot>) {
    let higher = slot.sid > shared.my_sid();
    let mut backoff = MIN_BACKOFF;
    let mut reset_redialled = false;
    loop {
        if shared.is_shutting_down() {
            break;
        }
        let redial = !higher && slot.redial.swap(false, Ordering::AcqRel);
        if slot.is_up() && !redial {
            break;
        }
        let outcome = dial_once(&shared, &slot, higher).await;
        let unresolved = matches!(outcome, Dialled::Unresolved);
        if let Dialled::Failed(failure) = outcome {
            // A fact for the election, which decides what it means
            // (`election::Driver`: a refusal of a peer it had a link to says
            // the peer is gone).
            shared.dial_failed(&slot, failure);
        } else if unresolved {
            // Says nothing about whether the peer runs.
            shared.dial_failed(&slot, DialFailure::Other);
        }
        if let Dialled::Prompted(prompt) = outcome {
            if await_callback(&shared, &slot, prompt).await == Callback::PromptReset
                && !reset_redialled
            {
                // Dial again at once: a refusal now tells the election the
                // peer is gone instead of leaving it unknown for a whole
                // backoff.
                reset_redialled = true;
                continue;
            }
        }
        if slot.is_up() && !slot.redial.load(Ordering::Acquire) {
            break;
        }
        // Keep trying only while there is something to deliver; otherwise
        // the election layer's next send or connect_all starts again.
        if slot.queue.len() == 0 && !slot.redial.load(Ordering::Acquire) {
            break;
        }
        let pause = if unresolved {
            backoff.min(MAX_NAME_BACKOFF)
        } else {
            backoff
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => backoff = (backoff * 2).min(MAX_BACKOFF),
            _ = slot.wake.notified() => backoff = MIN_BACKOFF,
        }
    }
    slot.connecting.store(false, Ordering::Release);
    // A send that raced with the decision to stop saw `connecting` set and
    // started nothing: look again.
    if !shared.is_shutting_down()
        && !slot.is_up()
        && (slot.queue.len() > 0 || slot.redial.load(Ordering::Acquire))
    {
        connect(&shared, &slot, false);
    }
}

/// What one pass of [`dial_once`] achieved.
enum Dialled {
    /// No configured address took a connection and our handshake.
    Failed(DialFailure),
    /// No configured address could be dialled: each is a name that has not
    /// resolved yet.
    Unresolved,
    /// A link exists: ours to a smaller sid, or a larger sid's call-back
    /// that arrived while we were connecting.
    Linked,
    /// A larger sid took our handshake; it closes this socket and calls
    /// back (PROTOCOL.md §2.4).
    Prompted(TcpStream),
}

/// How the wait for a larger sid's call-back ended.
#[derive(Debug, PartialEq, Eq)]
enum Callback {
    /// The link is up, or the wait ran its length, or we are shutting down.
    Done,
    /// The prompt socket was reset before any call-back came. A live
    /// ZooKeeper or zkfle peer reads the handshake and closes with a FIN; a
    /// reset is what the kernel sends for a connection still in the accept
    /// queue of a listener that closed, i.e. a process that died right after
    /// accepting (the race at every SIGKILL of a leader: the survivors redial
    /// the moment its election link drops, before its listener is gone).
    PromptReset,
}

/// Waits up to [`CALLBACK_WAIT`] for the larger sid's call-back while
/// watching the prompt socket.
async fn await_callback(
    shared: &Arc<Shared>,
    slot: &Arc<PeerSlot>,
    mut prompt: TcpStream,
) -> Callback {
    let deadline = tokio::time::Instant::now() + CALLBACK_WAIT;
    let mut open = true;
    let mut buf = [0u8; 64];
    while !slot.is_up() && tokio::time::Instant::now() < deadline && !shared.is_shutting_down() {
        let tick = tokio::time::sleep(Duration::from_millis(10));
        if !open {
            tick.await;
            continue;
        }
        tokio::select! {
            r = prompt.read(&mut buf) => match r {
                Ok(0) => open = false,
                Ok(_) => {}
                Err(e) => {
                    if slot.is_up() {
                        return Callback::Done;
                    }
                    log::debug!(
                        "prompt to sid {} was reset before its call-back ({e}); dialling again",
                        slot.sid
                    );
                    return Callback::PromptReset;
                }
            },
            _ = tick => {}
        }
    }
    Callback::Done
}

/// One pass over the sid's configured addresses. For a smaller sid the first
/// connection that takes our handshake becomes the link. For a larger sid
/// the handshake is written and the socket handed back so the call-back wait
/// can see how the peer closes it.
async fn dial_once(shared: &Arc<Shared>, slot: &Arc<PeerSlot>, higher: bool) -> Dialled {
    let sid = slot.sid;
    let timeout = shared.cfg.cnx_timeout;
    // The pass fails as Refused only if every address refused, as TimedOut
    // if every address refused or timed out; anything else is Other.
    let mut failure: Option<DialFailure> = None;
    let mut failed = |kind: DialFailure, why: std::fmt::Arguments<'_>| {
        bump(&shared.counters.dial_failures, 1);
        shared.limits.warn_peer(LogKind::Dial, sid, why);
        failure = Some(match (failure, kind) {
            (Some(DialFailure::Other), _) | (_, DialFailure::Other) => DialFailure::Other,
            (Some(DialFailure::TimedOut), _) | (_, DialFailure::TimedOut) => DialFailure::TimedOut,
            _ => DialFailure::Refused,
        });
    };
    // Endpoints whose name resolved to nothing yet (logged by dial_addr).
    let mut unresolved = 0;
    for i in 0..slot.endpoints.len() {
        let Ok(addr) = addrs::dial_addr(shared, slot, i).await else {
            bump(&shared.counters.unresolved_dials, 1);
            unresolved += 1;
            continue;
        };
        let addr = &addr;
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                let kind = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => DialFailure::Refused,
                    std::io::ErrorKind::TimedOut => DialFailure::TimedOut,
                    _ => DialFailure::Other,
                };
                failed(
                    kind,
                    format_args!("cannot open election connection to sid {sid} at {addr}: {e}"),
                );
                continue;
            }
            Err(_) => {
                failed(
                    DialFailure::TimedOut,
                    format_args!(
                        "election connection to sid {sid} at {addr} timed out after {timeout:?}"
                    ),
                );
                continue;
            }
        };
        let id = shared.new_link_id();
        let _ = stream.set_nodelay(true);
        if higher && slot.is_up() {
            // It called back while we were connecting: a handshake now would
            // make it tear down the link it just built (R13).
            return Dialled::Linked;
        }
        // sslQuorum: TLS first (the same dial deadline), our handshake
        // inside it.
        let remote = stream.peer_addr().unwrap_or(*addr);
        // Hostname verification accepts the peer's certificate for the
        // address dialled or for the name zoo.cfg gives that address.
        let names: Vec<String> = slot.endpoints[i]
            .host()
            .name()
            .map(|n| vec![n.to_string()])
            .unwrap_or_default();
        let mut stream = match tokio::time::timeout(
            timeout,
            secure::outbound(shared.cfg.tls.as_ref(), stream, remote, &names),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                bump(&shared.counters.tls_refused, 1);
                failed(
                    DialFailure::Other,
                    format_args!("TLS handshake with sid {sid} at {addr} failed: {e}"),
                );
                continue;
            }
            Err(_) => {
                failed(
                    DialFailure::Other,
                    format_args!("TLS handshake with sid {sid} at {addr} timed out"),
                );
                continue;
            }
        };
        // One write, as 3.8 flushes it once (PROTOCOL.md §2.2); on TLS one
        // record, pushed out by the flush.
        let write = async {
            stream.write_all(&shared.handshake).await?;
            stream.flush().await
        };
        match tokio::time::timeout(timeout, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failed(
                    DialFailure::Other,
                    format_args!("writing handshake to sid {sid} at {addr} failed: {e}"),
                );
                continue;
            }
            Err(_) => {
                failed(
                    DialFailure::Other,
                    format_args!("writing handshake to sid {sid} at {addr} timed out"),
                );
                continue;
            }
        }
        bump(&shared.counters.connections_dialled, 1);
        if higher {
            log::debug!("prompted sid {sid} at {addr} to call back");
            // How it closes is read off the raw socket (TLS records, then
            // FIN or a reset).
            return Dialled::Prompted(stream.into_tcp());
        }
        log::debug!(
            "election connection to sid {sid} at {addr}: {}",
            stream.describe()
        );
        return if hand_over(shared, sid, id, stream, remote) {
            Dialled::Linked
        } else {
            Dialled::Failed(DialFailure::Other)
        };
    }
    if unresolved > 0 && unresolved == slot.endpoints.len() {
        return Dialled::Unresolved;
    }
    // An address that could not even be looked up was neither refused nor
    // timed out: the pass says nothing about whether the peer runs.
    Dialled::Failed(if unresolved > 0 {
        DialFailure::Other
    } else {
        failure.unwrap_or(DialFailure::Other)
    })
}
