//! Bounded queues that drop the OLDEST entry when full.
//!
//! ZooKeeper's QCM keeps one such queue per peer for sending (capacity 1)
//! and one shared queue for receiving (capacity 100) (PROTOCOL.md §3.6).
//! Dropping the oldest rather than the newest is what guarantees that the
//! newest vote is always the last one delivered.

use crossbeam_channel::{Receiver, Sender, TrySendError};

/// A bounded MPMC queue with drop-oldest overflow. Both ends are kept so a
/// producer can evict the head when the queue is full.
///
/// The entries live in crossbeam's linked blocks (31 entries each, freed as
/// they drain), not in a preallocated array: a peer keeps one send queue per
/// configured sid, almost always empty, and 256-entry arrays were 12 KB per
/// sid — 600 KB of every peer of a 51-voter ensemble (issue 18). The bound
/// is checked before each push, so producers racing at the limit can
/// overshoot it by one entry each; nothing grows without bound.
#[derive(Debug)]
pub(crate) struct DropOldest<T> {
    tx: Sender<T>,
    rx: Receiver<T>,
    capacity: usize,
}

impl<T> Clone for DropOldest<T> {
    fn clone(&self) -> Self {
        DropOldest {
            tx: self.tx.clone(),
            rx: self.rx.clone(),
            capacity: self.capacity,
        }
    }
}

impl<T> DropOldest<T> {
    /// A queue holding at most `capacity` entries (at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        DropOldest {
            tx,
            rx,
            capacity: capacity.max(1),
        }
    }

    /// Enqueues `item`, evicting the oldest entries while the queue is full.
    /// Returns how many entries were evicted.
    pub(crate) fn push(&self, item: T) -> u64 {
        let mut dropped = 0;
        while self.rx.len() >= self.capacity {
            // A consumer may empty the queue between the length check and
            // this receive; then nothing is evicted.
            match self.rx.try_recv() {
                Ok(_) => dropped += 1,
                Err(_) => break,
            }
        }
        match self.tx.try_send(item) {
            Ok(()) => dropped,
            // Unbounded: only a disconnected channel refuses, which cannot
            // happen while `self` holds a receiver; treat as dropped.
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => dropped + 1,
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

    #[test]
    fn racing_producers_overshoot_the_bound_by_at_most_one_entry_each() {
        let q = DropOldest::new(8);
        let producers: Vec<_> = (0..4)
            .map(|p| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        q.push(p * 100_000 + i);
                        assert!(q.len() <= 8 + 4, "bound exceeded: {}", q.len());
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        assert!(q.len() <= 8 + 4);
        // Only the oldest entries were evicted: what is left is FIFO per
        // producer and ends with the newest entry overall (each producer's
        // last push came after its own earlier ones).
        let left: Vec<i32> = q.receiver().try_iter().collect();
        assert!(!left.is_empty());
        for p in 0..4 {
            let mine: Vec<i32> = left.iter().copied().filter(|v| v / 100_000 == p).collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
        }
        assert!(left.iter().any(|v| v % 100_000 == 19_999), "{left:?}");
    }
}
