//! [`Role`]: what an embedded peer does in the ensemble now, and
//! [`LeaderInfo`]: who leads.

use crate::peer::StatusSnapshot;
use crate::wire::ServerState;

/// The role of a peer that is in service, or `Looking`.
///
/// A role is reported only once it serves, as ZooKeeper only reports a
/// `Mode` once it serves: a leader once its quorum-port (Zab) session has
/// established its epoch with a quorum (a quorum ACKed NEWLEADER), a
/// follower or observer once that session has synchronized it. New
/// variants may come (hence `#[non_exhaustive]`): match with a `_` arm.
///
/// ```
/// use zkfle::Role;
/// let r = Role::Following { leader: 3, epoch: 7 };
/// assert_eq!(r.leader(), Some(3));
/// assert_eq!(r.epoch(), Some(7));
/// assert!(!r.is_leader());
/// assert_eq!(Role::Looking.leader(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// Electing, or decided but not yet in service.
    Looking,
    /// This peer leads `epoch`.
    Leading {
        /// The leader's epoch: the fencing token.
        epoch: i64,
    },
    /// This peer follows `leader` in `epoch`.
    Following {
        /// The leader's sid.
        leader: i64,
        /// The leader's epoch.
        epoch: i64,
    },
    /// This peer observes `leader` in `epoch` (never votes).
    Observing {
        /// The leader's sid.
        leader: i64,
        /// The leader's epoch.
        epoch: i64,
    },
}

/// A role change as [`PeerHandle::subscribe`](super::PeerHandle::subscribe) delivers it (the same type as
/// [`Role`]).
///
/// ```
/// let e: zkfle::RoleEvent = zkfle::Role::Leading { epoch: 2 };
/// assert!(e.is_leader());
/// ```
pub type RoleEvent = Role;

impl Role {
    /// True for [`Role::Leading`].
    ///
    /// ```
    /// assert!(zkfle::Role::Leading { epoch: 1 }.is_leader());
    /// ```
    pub fn is_leader(&self) -> bool {
        matches!(self, Role::Leading { .. })
    }

    /// The epoch of the leadership this peer serves in, if any.
    ///
    /// ```
    /// assert_eq!(zkfle::Role::Looking.epoch(), None);
    /// ```
    pub fn epoch(&self) -> Option<i64> {
        match *self {
            Role::Looking => None,
            Role::Leading { epoch }
            | Role::Following { epoch, .. }
            | Role::Observing { epoch, .. } => Some(epoch),
        }
    }

    /// The leader's sid when following or observing (`None` when leading:
    /// see [`PeerHandle::leader`](super::PeerHandle::leader) for a uniform answer).
    ///
    /// ```
    /// assert_eq!(zkfle::Role::Observing { leader: 2, epoch: 1 }.leader(), Some(2));
    /// ```
    pub fn leader(&self) -> Option<i64> {
        match *self {
            Role::Following { leader, .. } | Role::Observing { leader, .. } => Some(leader),
            _ => None,
        }
    }
}

/// Who leads, as seen by one peer.
///
/// ```
/// let l = zkfle::LeaderInfo { sid: 2, epoch: 5 };
/// assert_eq!(l.sid, 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaderInfo {
    /// The leader's sid.
    pub sid: i64,
    /// The leader's epoch (the fencing token).
    pub epoch: i64,
}

/// The role a status stands for: only a serving role counts.
pub(crate) fn role_of(s: &StatusSnapshot) -> Role {
    if !s.serving {
        return Role::Looking;
    }
    let epoch = s.current_epoch;
    match s.state {
        ServerState::Looking => Role::Looking,
        ServerState::Leading => Role::Leading { epoch },
        ServerState::Following => Role::Following {
            leader: s.leader_sid,
            epoch,
        },
        ServerState::Observing => Role::Observing {
            leader: s.leader_sid,
            epoch,
        },
    }
}
