//! One Alertmanager's bounded queue of encoded alerts. When new alerts do not fit, the oldest
//! are dropped (and counted), as Prometheus does.

use std::collections::VecDeque;
use std::sync::Arc;

/// An encoded alert (one JSON object), shared by the queues of a set's Alertmanagers.
pub(crate) type Encoded = Arc<str>;

/// A FIFO of at most `capacity` alerts. Not synchronised: the owner wraps it in a mutex.
#[derive(Debug)]
pub(crate) struct Queue {
    capacity: usize,
    items: VecDeque<Encoded>,
}

impl Queue {
    /// An empty queue; `capacity` is at least 1.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            items: VecDeque::new(),
        }
    }

    /// Appends `alerts`, dropping the oldest queued (then the oldest new) ones that do not fit.
    /// Returns how many alerts were dropped.
    pub(crate) fn push(&mut self, alerts: &[Encoded]) -> usize {
        // Only the newest `capacity` of the incoming alerts can survive.
        let skip = alerts.len().saturating_sub(self.capacity);
        let incoming = alerts.get(skip..).unwrap_or_default();
        let overflow = (self.items.len() + incoming.len()).saturating_sub(self.capacity);
        self.items.drain(..overflow);
        self.items.extend(incoming.iter().cloned());
        skip + overflow
    }

    /// Removes and returns up to `max` of the oldest alerts.
    pub(crate) fn take(&mut self, max: usize) -> Vec<Encoded> {
        let n = max.min(self.items.len());
        self.items.drain(..n).collect()
    }

    /// Removes and returns everything.
    pub(crate) fn take_all(&mut self) -> Vec<Encoded> {
        self.items.drain(..).collect()
    }

    /// Queued alerts.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(range: std::ops::Range<u32>) -> Vec<Encoded> {
        range.map(|i| Arc::from(i.to_string())).collect()
    }

    fn names(v: &[Encoded]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn overflow_drops_oldest_and_counts() {
        let mut q = Queue::new(5);
        assert_eq!(q.push(&enc(0..3)), 0);
        assert_eq!(q.push(&enc(3..6)), 1, "one old alert makes room");
        assert_eq!(q.len(), 5);
        assert_eq!(names(&q.take(2)), ["1", "2"]);
        // A push larger than the capacity keeps only its newest alerts.
        assert_eq!(q.push(&enc(10..18)), 3 + 3);
        assert_eq!(names(&q.take_all()), ["13", "14", "15", "16", "17"]);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn batches_are_split_at_the_batch_size() {
        let mut q = Queue::new(1000);
        q.push(&enc(0..600));
        let sizes: Vec<usize> = std::iter::from_fn(|| {
            let b = q.take(256);
            (!b.is_empty()).then_some(b.len())
        })
        .collect();
        assert_eq!(sizes, [256, 256, 88]);
    }
}
