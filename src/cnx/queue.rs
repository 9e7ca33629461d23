//! Bounded queues that drop the OLDEST entry when full.
//!
//! ZooKeeper's QCM keeps one such queue per peer for sending (capacity 1)
//! and one shared queue for receiving (capacity 100) (PROTOCOL.md §3.6).
//! Dropping the oldest rather than the newest is what guarantees that the
//! newest vote is always the last one delivered. [`DropOldest`] (crossbeam)
//! is the shared receive queue, whose receiver is the QCM's public API;
//! [`BatchQueue`] (a locked deque) is each peer's send queue, filled and
//! drained a batch per lock.

use std::collections::VecDeque;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::{Mutex, MutexGuard};

/// A bounded MPMC queue with drop-oldest overflow. Both ends are kept so a
/// producer can evict the head when the queue is full.
///
/// A preallocated crossbeam array (64 KB for the default 1024 entries, one
/// per peer): a linked-block variant that allocates as it fills saved that
/// memory but measured up to 15 % fewer notify replies/s in an A/B run
/// (issue 18), so the array stays.
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
}

/// A per-peer send queue with drop-oldest overflow whose batch operations
/// take its lock once: a run of replies is queued, and the SendWorker takes
/// everything queued, in one lock each. The crossbeam queue moves one entry
/// per atomic handshake, which at window 64 was 8 % of the SendWorker's
/// time; this queue also allocates only what it holds, not its capacity
/// up front (every configured peer has one).
#[derive(Debug)]
pub(crate) struct BatchQueue<T> {
    inner: Mutex<VecDeque<T>>,
    capacity: usize,
}

/// The locked queue, for several operations in one lock.
pub(crate) struct BatchGuard<'a, T> {
    q: MutexGuard<'a, VecDeque<T>>,
    capacity: usize,
}

impl<T> BatchGuard<'_, T> {
    /// Enqueues `item`, evicting the oldest entries while the queue is
    /// full. Returns how many entries were evicted.
    pub(crate) fn push(&mut self, item: T) -> u64 {
        let mut dropped = 0;
        while self.q.len() >= self.capacity {
            self.q.pop_front();
            dropped += 1;
        }
        self.q.push_back(item);
        dropped
    }

    /// Removes every queued entry; returns how many there were.
    pub(crate) fn clear(&mut self) -> u64 {
        let n = self.q.len() as u64;
        self.q.clear();
        n
    }
}

impl<T> BatchQueue<T> {
    /// A queue holding at most `capacity` entries (at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        BatchQueue {
            inner: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
        }
    }

    /// Locks the queue for several operations.
    pub(crate) fn lock(&self) -> BatchGuard<'_, T> {
        BatchGuard {
            q: self.inner.lock(),
            capacity: self.capacity,
        }
    }

    /// Number of queued entries.
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().len()
    }

    /// Removes every queued entry; returns how many there were.
    pub(crate) fn clear(&self) -> u64 {
        self.lock().clear()
    }

    /// Hands every queued entry, oldest first, to `f` and empties the
    /// queue; returns how many there were.
    pub(crate) fn drain_each(&self, mut f: impl FnMut(T)) -> u64 {
        let mut q = self.inner.lock();
        let n = q.len() as u64;
        for item in q.drain(..) {
            f(item);
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
        assert_eq!(q.receiver().len(), 1);
        assert_eq!(q.receiver().try_recv().ok(), Some("new"));
    }

    #[test]
    fn batch_queue_drops_the_oldest_and_drains_in_order() {
        let q = BatchQueue::new(3);
        let mut dropped = 0;
        {
            let mut g = q.lock();
            for i in 0..10 {
                dropped += g.push(i);
            }
        }
        assert_eq!(dropped, 7);
        assert_eq!(q.len(), 3);
        let mut got = Vec::new();
        assert_eq!(q.drain_each(|x| got.push(x)), 3);
        assert_eq!(got, vec![7, 8, 9], "the newest is the last one delivered");
        assert_eq!(q.len(), 0);
        assert_eq!(q.lock().push(1), 0);
        assert_eq!(q.lock().push(2), 0);
        assert_eq!(q.clear(), 2);
        assert_eq!(q.drain_each(|_| unreachable!()), 0);
    }

    #[test]
    fn racing_producers_keep_the_bound_and_each_producers_order() {
        let q = DropOldest::new(8);
        let producers: Vec<_> = (0..4)
            .map(|p| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        q.push(p * 100_000 + i);
                        assert!(
                            q.receiver().len() <= 8,
                            "bound exceeded: {}",
                            q.receiver().len()
                        );
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        assert!(q.receiver().len() <= 8);
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
