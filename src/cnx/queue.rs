//! Bounded queues that drop the OLDEST entry when full.
//!
//! ZooKeeper's QCM keeps one such queue per peer for sending (capacity 1)
//! and one shared queue for receiving (capacity 100) (PROTOCOL.md §3.6).
//! Dropping the oldest rather than the newest is what guarantees that the
//! newest vote is always the last one delivered.

use crossbeam_channel::{Receiver, Sender, TrySendError};

/// A bounded MPMC queue with drop-oldest overflow. Both ends are kept so a
/// producer can evict the head when the queue is full.
#[derive(Debug)]
pub(crate) struct DropOldest<T> {
    tx: Sender<T>,
    rx: Receiver<T>,
}

impl<T> Clone for DropOldest<T> {
    fn clone(&self) -> Self {
        DropOldest {
            tx: self.tx.clone(),
            rx: self.rx.clone(),
        }
    }
}

impl<T> DropOldest<T> {
    /// A queue holding at most `capacity` entries (at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        DropOldest { tx, rx }
    }

    /// Enqueues `item`, evicting the oldest entries while the queue is full.
    /// Returns how many entries were evicted.
    pub(crate) fn push(&self, mut item: T) -> u64 {
        let mut dropped = 0;
        loop {
            match self.tx.try_send(item) {
                Ok(()) => return dropped,
                Err(TrySendError::Full(back)) => {
                    // A consumer may empty the queue between the failed send
                    // and this receive; then nothing is evicted and the retry
                    // succeeds.
                    if self.rx.try_recv().is_ok() {
                        dropped += 1;
                    }
                    item = back;
                }
                // Unreachable while `self` holds a receiver; treat as dropped.
                Err(TrySendError::Disconnected(_)) => return dropped + 1,
            }
        }
    }

    /// The consuming end.
    pub(crate) fn receiver(&self) -> &Receiver<T> {
        &self.rx
    }

    /// Number of queued entries.
    pub(crate) fn len(&self) -> usize {
        self.rx.len()
    }

    /// Removes every queued entry; returns how many there were.
    pub(crate) fn clear(&self) -> u64 {
        let mut n = 0;
        while self.rx.try_recv().is_ok() {
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queue_drops_the_oldest_and_keeps_the_newest_last() {
        let q = DropOldest::new(3);
        let mut dropped = 0;
        for i in 0..10 {
            dropped += q.push(i);
        }
        assert_eq!(dropped, 7);
        let got: Vec<i32> = q.receiver().try_iter().collect();
        assert_eq!(got, vec![7, 8, 9]);
    }

    #[test]
    fn capacity_one_is_zookeepers_single_slot() {
        let q = DropOldest::new(1);
        assert_eq!(q.push("old"), 0);
        assert_eq!(q.push("new"), 1);
        assert_eq!(q.len(), 1);
        assert_eq!(q.receiver().try_recv().ok(), Some("new"));
        // One slot: "y" evicts "x", so clear() drops just "y".
        assert_eq!(q.push("x"), 0);
        assert_eq!(q.push("y"), 1);
        assert_eq!(q.clear(), 1);
        assert_eq!(q.len(), 0);
    }
}
