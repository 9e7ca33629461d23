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
