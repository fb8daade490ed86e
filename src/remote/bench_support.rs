//! The sender's CPU path without the network, for `benches/remote_send.rs`: WAL records read
//! and decoded by a queue's reader (series resolved once), samples batched, and each batch
//! written as a snappy-compressed 1.0 request, exactly as a queue's shard does it.

use super::metrics::QueueMetrics;
use super::reader::{Pending, Reader};
use super::wire::Encoder;
use argus_storage::{Db, Labels, WalPosition};
use std::sync::Arc;

/// What one [`SendPath::run`] produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendTotals {
    /// Float samples read and encoded.
    pub samples: u64,
    /// Requests written.
    pub requests: u64,
    /// Compressed bytes of those requests.
    pub bytes: u64,
}

/// A queue's reader and encoder over one `Db`'s WAL.
pub struct SendPath {
    reader: Reader,
    enc: Encoder,
    batch: Vec<Pending>,
}

impl SendPath {
    /// A reader of `db`'s WAL from `start` with `external` labels and no relabeling.
    pub fn new(db: &Db, start: WalPosition, external: Labels) -> argus_storage::Result<SendPath> {
        let reader = Reader::new(
            db.wal_watcher(start)?,
            external,
            Vec::new(),
            0,
            false,
            Arc::new(QueueMetrics::default()),
        );
        Ok(SendPath {
            reader,
            enc: Encoder::default(),
            batch: Vec::new(),
        })
    }

    /// Reads everything the WAL holds past the reader's position, in rounds of `round`
    /// samples, and encodes each round as requests of `per_request` samples.
    pub fn run(&mut self, round: usize, per_request: usize) -> Result<SendTotals, String> {
        let mut t = SendTotals::default();
        loop {
            self.batch.clear();
            let caught_up = self.reader.fill(&mut self.batch, round, 0)?;
            for chunk in self.batch.chunks(per_request.max(1)) {
                let (body, n) = self.enc.encode(chunk);
                t.samples += n.samples;
                t.requests += 1;
                t.bytes += body.len() as u64;
            }
            if caught_up {
                return Ok(t);
            }
        }
    }

    /// Reads everything the WAL holds past the reader's position into the reader's batch, for
    /// [`SendPath::encode_all`]; returns the uncompressed requests of it (2,000 samples each,
    /// concatenated).
    pub fn read_all(&mut self) -> Result<Vec<u8>, String> {
        self.batch.clear();
        while !self.reader.fill(&mut self.batch, usize::MAX, 0)? {}
        let mut raw = Vec::new();
        for chunk in self.batch.chunks(2_000) {
            raw.extend_from_slice(self.enc.encode_raw(chunk).0);
        }
        Ok(raw)
    }

    /// Orders each request's series by their whole label bytes (the order before
    /// `wire::request_order`), to compare the two.
    pub fn set_whole_bytes_order(&mut self, on: bool) {
        self.enc.whole_bytes_order = on;
    }

    /// Encodes the batch [`SendPath::read_all`] read as requests of `per_request` samples.
    pub fn encode_all(&mut self, per_request: usize) -> SendTotals {
        let mut t = SendTotals::default();
        for chunk in self.batch.chunks(per_request.max(1)) {
            let (body, n) = self.enc.encode(chunk);
            t.samples += n.samples;
            t.requests += 1;
            t.bytes += body.len() as u64;
        }
        t
    }
}
