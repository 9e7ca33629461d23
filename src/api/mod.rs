//! The embedding API: run one ensemble member inside another program (a
//! replicated store, a lock service, a scheduler) and react to who leads.
//!
//! [`PeerBuilder`] builds a peer from a `zoo.cfg` or from code and starts
//! it; the [`PeerHandle`] it returns answers "am I the leader?" with one
//! atomic load, names the leader and its epoch (the fencing token a store
//! stamps its writes with), publishes every change on a tokio watch channel
//! and on synchronous subscriptions, and lets code wait for a condition
//! instead of sleeping (the idea of openraft's metrics watch channel). The
//! store tells the election its last zxid through a supplier, so the
//! replica with the newest data wins the election (the vote order is peer
//! epoch, zxid, sid).
//!
//! One file per concept: [`builder`](PeerBuilder), [`handle`](PeerHandle),
//! [`role`](Role) (roles and leaders), [`state`](PeerState) (the published
//! state and events), [`error`](ZkfleError).
//!
//! ```
//! use std::time::Duration;
//! use zkfle::{PeerBuilder, Role};
//!
//! # fn main() -> Result<(), zkfle::ZkfleError> {
//! let data = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
//! // A one-voter ensemble: it elects itself at once.
//! let peer = PeerBuilder::new(1)
//!     .server(1, "127.0.0.1:30001".parse().unwrap(), "127.0.0.1:30002".parse().unwrap())
//!     .data_dir(data.path())
//!     .last_zxid(|| 0)
//!     .start()?;
//! let state = peer.wait_for(|s| s.role.is_leader(), Duration::from_secs(10))?;
//! assert!(matches!(state.role, Role::Leading { .. }));
//! assert!(peer.is_leader());
//! peer.shutdown();
//! # Ok(())
//! # }
//! ```

mod builder;
mod error;
mod handle;
mod replicated;
mod role;
mod state;

pub use crate::peer::{ReplicationError, ReplicationResult, StateMachine};
pub use builder::PeerBuilder;
pub use builder::{DEFAULT_SNAPSHOT_EVERY, FILE_LOG_DIR};
pub use error::ZkfleError;
pub use handle::PeerHandle;
pub use replicated::MAX_PROPOSAL_BYTES;
pub use role::{LeaderInfo, Role, RoleEvent};
pub use state::{Event, PeerState};
