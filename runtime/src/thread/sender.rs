//! Partitioning and appending a stream thread's outputs while it goes on processing.
//!
//! Kafka's producer hands full batches to its sender thread, which writes them while the
//! application goes on producing. A stream thread goes further: it takes each task's
//! outputs as the sinks wrote them (their buffers change hands, nothing is copied) and
//! [`StreamThread::append_pending`](super::StreamThread) hands them to a [`Sending`] on the
//! app's runtime, which places every record in its partition's batch (the sink's choice,
//! else murmur2 of the key, else round robin) and appends the batches, one per partition in
//! topic name order. Under exactly-once the job holds the thread's transactional session
//! meanwhile (appends join the open transaction), so every other use of the session first
//! waits for the job ([`finish_sending`](StreamThread::finish_sending)), and so do the
//! commit (outputs before changelogs and offsets), an abort and the next append (one job at
//! a time keeps each partition's records in order).
//!
//! What the job cannot place (a topic the log does not know, a partition out of range) and
//! batches the log refuses come back with it; the thread then asks again and hands what is
//! still refused to the production exception handler, as it did when it appended itself.
//! Any other failure fails the commit in progress.
//!
//! With as many stream threads as cores (`Shared::pipelined` false) the job runs inline,
//! on the stream thread, and is seen to at once.

use std::sync::Arc;

use freshet_log::{Acks, Broker, BrokerTransaction};
use freshet_streams::{Outputs, SinkRecord, TaskId};
use tokio::task::JoinHandle;

use super::commit::refused_record;
use super::outputs::OutputBatches;
use super::StreamThread;
use crate::error::{Error, Result};

/// One task's outputs taken from it, with its topic ids mapped to the thread's.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) task: TaskId,
    /// Task topic id → the thread's (`None`: the log does not know the topic yet).
    pub(super) topics: Vec<Option<usize>>,
    pub(super) outputs: Outputs,
}

/// An append running on the app's runtime, or done inline (no core to spare for it).
pub(super) enum Sending<B: Broker> {
    Running(JoinHandle<Sent<B>>),
    Done(Box<Sent<B>>),
}

/// What an append job gives back.
pub(super) struct Sent<B: Broker> {
    /// The transactional session it appended in (exactly-once).
    txn: Option<B::Transaction>,
    /// The batches, for refused ones and to reuse the room.
    batches: OutputBatches,
    /// The taken outputs, which the batches read (refused ones too); emptied and reused
    /// once those are handled.
    outgoing: Vec<Outgoing>,
    /// Records that fit no partition.
    unplaced: Vec<(TaskId, SinkRecord)>,
    /// Batches the log refused: (topic id, partition, why).
    refused: Vec<(usize, u32, Error)>,
    /// Records went to a repartition topic.
    wrote_internal: bool,
    /// A failure other than a refusal; the job stopped there.
    failed: Option<Error>,
}

/// Places every record in its batch, then appends the batches in topic name order, inside
/// `txn` if there is one.
async fn send<B: Broker>(
    broker: Arc<B>,
    mut txn: Option<B::Transaction>,
    mut batches: OutputBatches,
    outgoing: Vec<Outgoing>,
    acks: Acks,
) -> Sent<B> {
    let mut unplaced = Vec::new();
    for (ti, taken) in outgoing.iter().enumerate() {
        for (ri, o) in taken.outputs.iter().enumerate() {
            let topic = taken.topics.get(o.topic as usize).copied().flatten();
            let placed = topic.map_or(Err(()), |t| batches.push(t, (ti, ri), &o));
            if placed.is_err() {
                unplaced.push((taken.task, taken.outputs.sink_record(&o)));
            }
        }
    }
    let mut refused = Vec::new();
    let mut failed = None;
    let mut wrote_internal = false;
    'topics: for id in batches.by_name() {
        let topic = batches.topic_mut(id);
        for (p, batch) in topic.partitions.iter_mut().enumerate() {
            let Some(encoded) = batch.take_batch() else {
                continue;
            };
            wrote_internal |= topic.internal;
            let p = p as u32;
            let appended = match txn.as_mut() {
                Some(txn) => txn.append_batch(&topic.name, p, encoded).await,
                None => broker.append_batch(&topic.name, p, encoded, acks).await,
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
        outgoing,
        unplaced,
        refused,
        wrote_internal,
        failed,
    }
}

impl<B: Broker> StreamThread<B> {
    /// Whether outputs wait to be appended or are being appended.
    pub(super) fn has_outputs(&self) -> bool {
        !self.outgoing.is_empty() || self.sending.is_some()
    }

    /// Starts placing and appending `outgoing`, in the open transaction under exactly-once;
    /// the previous append must be finished.
    pub(super) fn start_sending(&mut self, outgoing: Vec<Outgoing>) {
        let txn = if self.exactly_once() {
            self.txn.take()
        } else {
            None
        };
        let mut batches = self.batches.take().unwrap_or_default();
        batches.add_topics_of(&self.out_topics);
        let broker = self.shared.broker.clone();
        let acks = self.shared.config.durability();
        let job = send(broker, txn, batches, outgoing, acks);
        self.sending = Some(if self.shared.pipelined {
            Sending::Running(self.shared.handle.spawn(job))
        } else {
            Sending::Done(Box::new(self.block_on(job)))
        });
    }

    /// Waits for the append in progress, if any: gives the session back, and hands records
    /// that fit no partition and refused batches to the production exception handler
    /// (appending their dead letters). Its failure (or the handler's `fail`) is returned.
    pub(super) fn finish_sending(&mut self) -> Result<()> {
        let Some(sent) = self.join_sending()? else {
            return Ok(());
        };
        self.wrote_internal |= sent.wrote_internal;
        let mut batches = sent.batches;
        let result = self.handle_sent(
            &batches,
            &sent.outgoing,
            sent.unplaced,
            sent.refused,
            sent.failed,
        );
        batches.clear();
        self.batches = Some(batches);
        self.reuse(sent.outgoing);
        result
    }

    /// Waits for the append in progress and takes back what it holds.
    fn join_sending(&mut self) -> Result<Option<Sent<B>>> {
        let Some(sending) = self.sending.take() else {
            return Ok(None);
        };
        let mut sent = match sending {
            Sending::Done(sent) => *sent,
            Sending::Running(handle) => self.block_on(handle).map_err(|e| {
                // The job panicked or was cancelled (the runtime shut down): the session
                // went with it, and the next use of one starts a new session, fencing it.
                Error::ThreadFailed {
                    thread: self.index,
                    reason: format!("appending outputs did not finish: {e}"),
                }
            })?,
        };
        if sent.txn.is_some() {
            self.txn = sent.txn.take();
        }
        Ok(Some(sent))
    }

    fn handle_sent(
        &mut self,
        batches: &OutputBatches,
        taken: &[Outgoing],
        unplaced: Vec<(TaskId, SinkRecord)>,
        refused: Vec<(usize, u32, Error)>,
        failed: Option<Error>,
    ) -> Result<()> {
        if let Some(e) = failed {
            return Err(e);
        }
        let mut dead = Vec::new();
        for (id, p, e) in refused {
            let topic = batches.topic(id);
            let (tasks, records) = OutputBatches::records(&topic.partitions[p as usize], taken);
            let name = topic.name.clone();
            self.append_refused(&name, p, tasks, records, e, &mut dead)?;
        }
        self.append_unplaced(unplaced, &mut dead)?;
        if !dead.is_empty() {
            self.append_dead_letters(dead)?;
        }
        Ok(())
    }

    /// Waits for the append in progress and forgets its outcome (the transaction is being
    /// aborted, or the thread is failing anyway).
    pub(super) fn discard_sending(&mut self) {
        match self.join_sending() {
            Ok(Some(sent)) => {
                let mut batches = sent.batches;
                batches.clear();
                self.batches = Some(batches);
                self.reuse(sent.outgoing);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "appending outputs did not finish"),
        }
    }

    /// Forgets the outputs not handed to the sender yet (an abort), keeping their room.
    pub(super) fn drop_outgoing(&mut self) {
        let mut outgoing = std::mem::take(&mut self.outgoing);
        self.reuse(outgoing.drain(..));
        self.outgoing = outgoing;
        self.outgoing_len = 0;
    }

    /// Empties taken outputs and keeps them for the tasks to write into again.
    fn reuse(&mut self, taken: impl IntoIterator<Item = Outgoing>) {
        for mut t in taken {
            t.outputs.clear();
            self.spare_outputs.push(t.outputs);
        }
    }
}
