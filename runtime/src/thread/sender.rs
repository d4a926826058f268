//! Appending a stream thread's outputs while it goes on processing.
//!
//! Kafka's producer hands full batches to its sender thread, which writes them while the
//! application goes on producing. A stream thread does the same with its pending outputs
//! between commits: [`StreamThread::append_pending`](super::StreamThread) moves them into a
//! [`Sending`] that appends them on the app's runtime, one batch per partition in topic
//! name order, as before. Under exactly-once the job holds the thread's transactional
//! session meanwhile (appends join the open transaction), so every other use of the session
//! first waits for the job ([`finish_sending`](StreamThread::finish_sending)), and so do the
//! commit (outputs before changelogs and offsets), an abort and the next append (one job at
//! a time keeps each partition's batches in order).
//!
//! A batch the log refuses comes back with the job, which appends the rest; the thread then
//! asks the production exception handler about the refused batch as it did when it appended
//! itself. Any other failure fails the commit in progress, as before.

use std::sync::Arc;

use freshet_log::{Acks, Broker, BrokerTransaction};
use tokio::task::JoinHandle;

use super::commit::refused_record;
use super::outputs::OutputBatches;
use super::StreamThread;
use crate::error::{Error, Result};
use freshet_streams::SinkRecord;

/// An append running on the app's runtime.
pub(super) struct Sending<B: Broker> {
    handle: JoinHandle<Sent<B>>,
    /// Dead letters of records refused before the job started, appended after it.
    dead: Vec<SinkRecord>,
}

/// What an append job gives back.
struct Sent<B: Broker> {
    /// The transactional session it appended in (exactly-once).
    txn: Option<B::Transaction>,
    /// The records, for refused batches and to reuse the room.
    batches: OutputBatches,
    /// Batches the log refused: (topic id, partition, why).
    refused: Vec<(usize, u32, Error)>,
    /// A failure other than a refusal; the job stopped there.
    failed: Option<Error>,
}

/// Appends every batch, in topic name order, inside `txn` if there is one.
async fn send<B: Broker>(
    broker: Arc<B>,
    mut txn: Option<B::Transaction>,
    batches: OutputBatches,
    acks: Acks,
) -> Sent<B> {
    let mut refused = Vec::new();
    let mut failed = None;
    'topics: for id in batches.by_name() {
        let topic = batches.topic(id);
        for (p, batch) in topic.partitions.iter().enumerate() {
            if batch.is_empty() {
                continue;
            }
            let p = p as u32;
            let refs = batch.refs();
            let appended = match txn.as_mut() {
                Some(txn) => txn.append_refs(&topic.name, p, &refs).await,
                None => broker.append_refs(&topic.name, p, &refs, acks).await,
            };
            match appended.map_err(Error::from) {
                Ok(_) => {}
                Err(e) if refused_record(&e) => refused.push((id, p, e)),
                Err(e) => {
                    failed = Some(e);
                    break 'topics;
                }
            }
        }
    }
    Sent {
        txn,
        batches,
        refused,
        failed,
    }
}

impl<B: Broker> StreamThread<B> {
    /// Starts appending `batches` (and then `dead`), in the open transaction under
    /// exactly-once; the previous append must be finished.
    pub(super) fn start_sending(&mut self, batches: OutputBatches, dead: Vec<SinkRecord>) {
        let txn = if self.exactly_once() {
            self.txn.take()
        } else {
            None
        };
        let broker = self.shared.broker.clone();
        let acks = self.shared.config.durability();
        let handle = self.shared.handle.spawn(send(broker, txn, batches, acks));
        self.sending = Some(Sending { handle, dead });
    }

    /// Waits for the append in progress, if any: gives the session back, hands refused
    /// batches to the production exception handler and appends the dead letters. Its
    /// failure (or the handler's `fail`) is returned.
    pub(super) fn finish_sending(&mut self) -> Result<()> {
        let Some(sending) = self.sending.take() else {
            return Ok(());
        };
        let sent = match self.block_on(sending.handle) {
            Ok(sent) => sent,
            Err(e) => {
                // The job panicked or was cancelled (the runtime shut down): the session
                // went with it, and the next use of one starts a new session, fencing it.
                return Err(Error::ThreadFailed {
                    thread: self.index,
                    reason: format!("appending outputs did not finish: {e}"),
                });
            }
        };
        if sent.txn.is_some() {
            self.txn = sent.txn;
        }
        let mut batches = sent.batches;
        let result = self.handle_sent(&batches, sent.refused, sent.failed, sending.dead);
        batches.clear();
        self.spare = batches;
        result
    }

    fn handle_sent(
        &mut self,
        batches: &OutputBatches,
        refused: Vec<(usize, u32, Error)>,
        failed: Option<Error>,
        mut dead: Vec<SinkRecord>,
    ) -> Result<()> {
        if let Some(e) = failed {
            return Err(e);
        }
        for (id, p, e) in refused {
            let topic = batches.topic(id);
            let (tasks, records) = topic.partitions[p as usize].records();
            let name = topic.name.clone();
            self.append_refused(&name, p, tasks, records, e, &mut dead)?;
        }
        if !dead.is_empty() {
            self.append_dead_letters(dead)?;
        }
        Ok(())
    }

    /// Waits for the append in progress and forgets its outcome (the transaction is being
    /// aborted, or the thread is failing anyway).
    pub(super) fn discard_sending(&mut self) {
        if let Some(sending) = self.sending.take() {
            match self.block_on(sending.handle) {
                Ok(sent) => {
                    if sent.txn.is_some() {
                        self.txn = sent.txn;
                    }
                    let mut batches = sent.batches;
                    batches.clear();
                    self.spare = batches;
                }
                Err(e) => tracing::warn!(error = %e, "appending outputs did not finish"),
            }
        }
    }
}
