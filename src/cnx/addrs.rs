//! Peers' election addresses as the QCM dials them: IP literals as
//! configured, host names looked up again before every dial (as ZooKeeper
//! 3.8's `connectOne` does through `recreateSocketAddresses`), on a
//! blocking thread of the QCM's runtime so that a slow lookup holds up no
//! other connection.
//!
//! A literal costs nothing here: no thread, no lookup, no await that
//! waits, so a failover redial of a numeric address goes out as fast as it
//! did before names were kept.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::links::{PeerSlot, Shared};
use super::stats::LogKind;
use crate::net::{HostPort, ResolveError, Resolver};

/// Looked-up names are refreshed for R8 at most this often per peer.
const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// `hp` resolved now: a literal at once, a name through `resolver` on a
/// blocking thread, given up after `timeout` (the thread finishes its
/// lookup on its own; only its answer is dropped).
pub(crate) async fn lookup(
    resolver: &Arc<dyn Resolver>,
    hp: &HostPort,
    timeout: Duration,
) -> Result<SocketAddr, ResolveError> {
    if let Some(a) = hp.literal() {
        return Ok(a);
    }
    let (r, h) = (resolver.clone(), hp.clone());
    let host = || hp.host().to_string();
    match tokio::time::timeout(timeout, tokio::task::spawn_blocking(move || h.resolve(&*r))).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => Err(ResolveError::Lookup {
            host: host(),
            source: std::io::Error::other(e.to_string()),
        }),
        Err(_) => Err(ResolveError::TimedOut {
            host: host(),
            after: timeout,
        }),
    }
}

/// The address to dial for endpoint `i` of `slot`, looked up now if it is
/// a name. A name that does not resolve falls back to the address it last
/// resolved to, as ZooKeeper keeps it (a peer whose record was removed
/// with it is then found dead or alive at its old address, which tells the
/// election something), and is an error only if it never resolved. Either
/// way the failure is logged, rate-limited per peer, naming the sid and
/// the name.
pub(crate) async fn dial_addr(
    shared: &Shared,
    slot: &PeerSlot,
    i: usize,
) -> Result<SocketAddr, ResolveError> {
    let Some(hp) = slot.endpoints.get(i) else {
        return Err(ResolveError::NoAddress {
            host: format!("endpoint {i} of sid {}", slot.sid),
        });
    };
    if let Some(a) = hp.literal() {
        return Ok(a);
    }
    let sid = slot.sid;
    match lookup(&shared.cfg.resolver, hp, shared.cfg.cnx_timeout).await {
        Ok(addr) => {
            let before = slot.known.lock().get_mut(i).and_then(|k| k.replace(addr));
            match before {
                Some(old) if old != addr => log::info!(
                    "sid {sid}: election address {hp} now resolves to {addr} (was {old})"
                ),
                None => log::debug!("sid {sid}: election address {hp} resolves to {addr}"),
                _ => {}
            }
            Ok(addr)
        }
        Err(e) => {
            let why = match &e {
                ResolveError::Lookup { source, .. } => source.to_string(),
                other => other.to_string(),
            };
            let last = slot.known.lock().get(i).copied().flatten();
            match last {
                Some(old) => {
                    shared.limits.warn_peer(
                        LogKind::Resolve,
                        sid,
                        format_args!(
                            "sid {sid}: cannot resolve its election address {hp} ({why}); dialling the address it last resolved to, {old}"
                        ),
                    );
                    Ok(old)
                }
                None => {
                    shared.limits.warn_peer(
                        LogKind::Resolve,
                        sid,
                        format_args!(
                            "sid {sid}: cannot resolve its election address {hp} ({why}); retrying"
                        ),
                    );
                    Err(e)
                }
            }
        }
    }
}

/// A connection claiming `slot`'s sid came from an address none of its
/// names resolved to: the peer may have moved (a rescheduled pod). Looks
/// the names up again in the background, at most once a second per peer,
/// so that its next connection is recognised (R8); the connection at hand
/// is judged by what was known.
pub(crate) fn refresh(shared: &Arc<Shared>, slot: &Arc<PeerSlot>) {
    {
        let mut last = slot.refreshed.lock();
        if last.is_some_and(|t| t.elapsed() < REFRESH_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
    }
    let (shared, slot) = (shared.clone(), slot.clone());
    shared.handle.clone().spawn(async move {
        for (i, hp) in slot.endpoints.iter().enumerate() {
            if !hp.is_name() {
                continue;
            }
            match lookup(&shared.cfg.resolver, hp, shared.cfg.cnx_timeout).await {
                Ok(addr) => {
                    if let Some(k) = slot.known.lock().get_mut(i) {
                        *k = Some(addr);
                    }
                }
                Err(e) => log::debug!("sid {}: {e}", slot.sid),
            }
        }
    });
}
