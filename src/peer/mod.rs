//! QuorumPeer: the main loop (LOOKING → LEADING/FOLLOWING/OBSERVING), the
//! election thread and the epoch files.

pub mod epoch;
pub mod status;
