//! [`ZkfleError`]: everything the embedding API can fail with.

use std::time::Duration;

use crate::config::ConfigError;
use crate::peer::PeerError;

use super::PeerState;

/// Everything the embedding API can fail with: one variant per failure a
/// caller can act on.
///
/// ```
/// use zkfle::{PeerBuilder, ZkfleError};
/// match PeerBuilder::from_config_file("/nonexistent/zoo.cfg").myid(1).start() {
///     Err(ZkfleError::Config(e)) => eprintln!("fix the config: {e}"),
///     Err(e) => panic!("unexpected: {e}"),
///     Ok(_) => panic!("there is no such file"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZkfleError {
    /// The configuration (file or built from code) is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The peer could not start (epoch files, ports, threads).
    #[error(transparent)]
    Start(#[from] PeerError),
    /// The four-letter-word or metrics port could not be opened.
    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),
    /// A builder without `server(..)` lines.
    #[error("no servers configured: call PeerBuilder::server at least once")]
    NoServers,
    /// A builder without a data directory.
    #[error("no data directory: call PeerBuilder::data_dir")]
    NoDataDir,
    /// The data directory could not be created.
    #[error("cannot create the data directory: {0}")]
    Io(#[source] std::io::Error),
    /// [`PeerHandle::wait_for`](super::PeerHandle::wait_for) or
    /// [`PeerHandle::wait_until_timeout`](super::PeerHandle::wait_until_timeout)
    /// ran out of time.
    #[error("condition not met within {timeout:?}; last state: {last:?}")]
    Timeout {
        /// The timeout given.
        timeout: Duration,
        /// The last state seen.
        last: Box<PeerState>,
    },
    /// The handle was shut down.
    #[error("the peer has been shut down")]
    Shutdown,
    /// [`PeerHandle::resign`](super::PeerHandle::resign): this peer does
    /// not lead (in service) now.
    #[error("this peer is not the leader")]
    NotLeader,
    /// Builder options that do not go together (the text says which).
    #[error("invalid builder options: {0}")]
    Option(&'static str),
    /// The replicated log's store could not be opened.
    #[error("cannot open the replicated log: {0}")]
    Log(#[from] crate::logstore::LogError),
}
