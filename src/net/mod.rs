//! Peer addresses as `zoo.cfg` writes them, and the resolver that turns
//! them into socket addresses when a connection is made.
//!
//! ZooKeeper 3.8 keeps a `server.N` host as a name and looks it up again
//! before each connection (`QuorumCnxManager.connectOne` calls
//! `QuorumPeer.recreateSocketAddresses`; a follower's `Learner.findLeader`
//! does the same for the leader's quorum address; when a lookup fails,
//! `MultipleAddresses.recreateSocketAddresses` keeps the address it had).
//! That is what lets an ensemble start before every peer's name is in DNS
//! (Kubernetes StatefulSet pods appear in DNS only once they run) and find
//! a peer again after its address changes. zkfle does the same: a
//! [`HostPort`] keeps the name, and whoever dials resolves it right then
//! through a [`Resolver`].
//!
//! This module is shared by the election transport (`crate::cnx`, which
//! resolves on its tokio runtime) and the quorum-port runtime
//! (`crate::peer`, whose learners dial the leader's quorum address). It
//! uses only `std`: lookups block, and async callers run them on a
//! blocking thread.
//!
//! IP literals never reach a resolver, so numeric configurations behave
//! exactly as they would without one (no lookup, no extra latency).
//!
//! # Dialling a peer by its configured address
//!
//! [`crate::config::ServerSpec::endpoints`] holds each `server.N` address as
//! written and [`crate::config::ZkConfig::resolver`] the resolver the
//! configuration was read with (the system's, or a [`FakeResolver`] in
//! tests). Look the address up right before each connection attempt, never
//! once for all; a learner dialling the leader's quorum port does this
//! (it runs on its own thread, so the blocking lookup is fine there; async
//! code runs it on a blocking thread, as `crate::cnx` does):
//!
//! ```no_run
//! # use std::net::TcpStream;
//! # use std::time::Duration;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = zkfle::config::ZkConfig::load("zoo.cfg".as_ref(), None)?;
//! let leader = config.server(3).ok_or("no server.3")?;
//! for a in &leader.endpoints {
//!     match a.quorum.resolve(&*config.resolver) {
//!         // A name that now points elsewhere is dialled at its new address.
//!         Ok(addr) => {
//!             let _s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
//!             break;
//!         }
//!         // Not in DNS (yet): try the next address, and all of them again
//!         // on the next attempt.
//!         Err(e) => log::warn!("sid 3: {e}"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! A server binding its own quorum address resolves
//! `config.me()`'s `endpoints[i].quorum` the same way when it starts to lead.

mod resolve;

pub use resolve::{
    BadHost, BadHostPort, FakeResolver, Host, HostPort, ResolveError, Resolver, SystemResolver,
};

use std::sync::Arc;

/// The operating system's resolver as a shared [`Resolver`], the default of
/// every configuration.
pub fn system_resolver() -> Arc<dyn Resolver> {
    Arc::new(SystemResolver)
}
