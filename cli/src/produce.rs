//! `freshet produce`: each line of standard input becomes one record.
//!
//! Lines are read on a thread of their own, so a slow or interactive input never stalls
//! the producer's linger timer: a line typed by hand is written (and its offset printed with
//! `--print-offsets`) a few milliseconds later, not when the next line arrives.

use std::collections::VecDeque;
use std::future::Future;
use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use freshet_log::{Acks, AppendResult, Producer, ProducerConfig, Record, SendFuture};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;

use crate::error::{CliError, Result};
use crate::format::{parse_line, FieldFormat, InputRecord, LineFormat};
use crate::open::{open, Access};
use crate::output::Output;

/// Sends not yet acknowledged before reading of input pauses (bounds memory on big inputs).
const MAX_IN_FLIGHT: usize = 100_000;
/// At most this many lines travel from the reader thread in one message.
const LINES_PER_CHUNK: usize = 1024;

/// Arguments of `produce`.
#[derive(Debug, Args)]
pub(crate) struct ProduceArgs {
    /// The topic to write to.
    topic: String,
    /// When a record counts as sent: handed over (none), written to the OS (written), or
    /// fsynced (synced).
    #[arg(long, value_enum, default_value_t = AcksArg::Written)]
    acks: AcksArg,
    /// Write every record to this partition (default: by key hash; sticky for null keys).
    #[arg(long, value_name = "P")]
    partition: Option<u32>,
    /// Input line layout: `key<TAB>value` (a line without a tab is a value with a null key),
    /// or one JSON object {"key","value","timestamp","headers"} per line.
    #[arg(long, value_enum, default_value_t = LineFormat::Tsv)]
    format: LineFormat,
    /// How keys are written in the input.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = FieldFormat::String)]
    key_format: FieldFormat,
    /// How values are written in the input.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = FieldFormat::String)]
    value_format: FieldFormat,
    /// Print `partition<TAB>offset` for each record, in input order, once acknowledged
    /// (the offset is -1 with --acks none).
    #[arg(long)]
    print_offsets: bool,
}

/// `--acks` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AcksArg {
    /// Acknowledged when handed to the log.
    None,
    /// Acknowledged once written to the operating system (survives a process crash).
    Written,
    /// Acknowledged once fsynced (survives a power loss).
    Synced,
}

impl From<AcksArg> for Acks {
    fn from(a: AcksArg) -> Acks {
        match a {
            AcksArg::None => Acks::None,
            AcksArg::Written => Acks::Written,
            AcksArg::Synced => Acks::Synced,
        }
    }
}

/// A run of input lines, or the read error that ended the input.
type Chunk = std::io::Result<Vec<Vec<u8>>>;

/// Runs `produce` against the data directory `dir`.
pub(crate) async fn run(dir: &Path, args: ProduceArgs) -> Result<()> {
    let log = open(dir, Access::Write)?;
    // Check the topic and partition before reading any input.
    let partitions = log.partition_count(&args.topic)?;
    if let Some(p) = args.partition.filter(|&p| p >= partitions) {
        return Err(freshet_log::Error::UnknownPartition {
            topic: args.topic.clone(),
            partition: p,
            partitions,
        }
        .into());
    }
    let producer = log.producer(ProducerConfig {
        acks: args.acks.into(),
        ..ProducerConfig::default()
    });
    let mut run = Run {
        args,
        producer,
        out: Output::stdout(),
        pending: VecDeque::new(),
        sent: 0,
        produced: 0,
        progress: progress_bar(),
    };
    let result = run.produce_all().await;
    run.progress.finish_and_clear();
    if result.is_err() {
        // Whatever was sent is written, as a producer closing after an error would; the
        // error reported is the first one.
        let _ = run.producer.flush();
    }
    match result {
        // Unlike consume, stopping early here leaves input unproduced: that is an error.
        Err(CliError::BrokenPipe) => Err(CliError::OutputClosed { sent: run.sent }),
        other => other,
    }
}

/// State of one `produce` run.
#[derive(Debug)]
struct Run {
    args: ProduceArgs,
    producer: Producer,
    out: Output,
    /// Sends in input order with their line numbers, oldest first.
    pending: VecDeque<(u64, SendFuture)>,
    /// Records sent so far.
    sent: u64,
    /// Records acknowledged so far.
    produced: u64,
    progress: ProgressBar,
}

impl Run {
    async fn produce_all(&mut self) -> Result<()> {
        let (tx, mut rx) = mpsc::channel::<Chunk>(16);
        spawn_reader(tx)?;
        let mut line_no = 0u64;
        loop {
            tokio::select! {
                biased;
                ack = front(&mut self.pending), if !self.pending.is_empty() => {
                    self.acknowledged(ack)?;
                }
                chunk = rx.recv(), if self.pending.len() < MAX_IN_FLIGHT => match chunk {
                    None => break,
                    Some(Err(source)) => {
                        self.finish().await?;
                        return Err(CliError::Io { op: "read stdin", source });
                    }
                    Some(Ok(lines)) => {
                        for line in lines {
                            line_no += 1;
                            if let Err(reason) = self.send_line(line_no, &line) {
                                // Report it after the records before it are acknowledged.
                                self.finish().await?;
                                let produced = self.produced;
                                return Err(CliError::Line { line: line_no, reason, produced });
                            }
                        }
                    }
                },
            }
        }
        self.finish().await
    }

    /// Parses one line and sends its record; the error is the reason the line is refused.
    fn send_line(&mut self, line_no: u64, line: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(line).map_err(|e| {
            format!(
                "not valid UTF-8 at byte {} (use --key-format/--value-format hex or base64 \
                 for binary data)",
                e.valid_up_to()
            )
        })?;
        let input = parse_line(
            text,
            self.args.format,
            self.args.key_format,
            self.args.value_format,
        )
        .map_err(|e| e.to_string())?;
        let record = to_record(input);
        let fut = match self.args.partition {
            Some(p) => self.producer.send_to(&self.args.topic, p, record),
            None => self.producer.send(&self.args.topic, record),
        };
        self.pending.push_back((line_no, fut));
        self.sent += 1;
        self.progress.inc(1);
        Ok(())
    }

    /// Handles the acknowledgement of the oldest pending send, then every later one that is
    /// in already, and shows the printed offsets.
    fn acknowledged(&mut self, ack: freshet_log::Result<AppendResult>) -> Result<()> {
        self.take_ack(ack)?;
        // Print offsets as they come, but without a write per record under load.
        while let Some(ack) = self.pending.front_mut().and_then(|(_, f)| poll_now(f)) {
            self.take_ack(ack)?;
        }
        if self.args.print_offsets {
            self.out.flush()?;
        }
        Ok(())
    }

    fn take_ack(&mut self, ack: freshet_log::Result<AppendResult>) -> Result<()> {
        let Some((line, _)) = self.pending.pop_front() else {
            return Ok(());
        };
        let at = ack.map_err(|e| CliError::Line {
            line,
            reason: e.to_string(),
            produced: self.produced,
        })?;
        self.produced += 1;
        if self.args.print_offsets {
            self.out
                .line(&format!("{}\t{}", at.partition, at.base_offset))?;
        }
        Ok(())
    }

    /// Writes lingering batches and waits for every pending acknowledgement.
    async fn finish(&mut self) -> Result<()> {
        let flushed = self.producer.flush();
        while let Some((_, fut)) = self.pending.front_mut() {
            let ack = fut.await;
            self.acknowledged(ack)?;
        }
        self.out.flush()?;
        // With acks=none no future carries a write error; the flush does.
        flushed.map_err(CliError::from)
    }
}

fn to_record(input: InputRecord) -> Record {
    Record {
        key: input.key.map(Bytes::from),
        value: input.value.map(Bytes::from),
        timestamp: input.timestamp,
        headers: input
            .headers
            .into_iter()
            .map(|(name, value)| (name, Bytes::from(value)))
            .collect(),
    }
}

/// Awaits the oldest pending send (the caller checks there is one).
async fn front(pending: &mut VecDeque<(u64, SendFuture)>) -> freshet_log::Result<AppendResult> {
    match pending.front_mut() {
        Some((_, fut)) => fut.await,
        None => std::future::pending().await,
    }
}

/// The acknowledgement when it is in already, without waiting.
fn poll_now(fut: &mut SendFuture) -> Option<freshet_log::Result<AppendResult>> {
    // Polling with a no-op waker only registers no interest; a later real poll replaces it.
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(fut).poll(&mut cx) {
        Poll::Ready(ack) => Some(ack),
        Poll::Pending => None,
    }
}

/// Reads standard input on a thread, sending runs of lines (without their `\n` or `\r\n`).
///
/// A run ends when the reader would block, so an interactive line goes out at once while a
/// piped file travels in chunks. The thread ends at end of input, on a read error (sent
/// on), or when the receiver is gone.
fn spawn_reader(tx: mpsc::Sender<Chunk>) -> Result<()> {
    std::thread::Builder::new()
        .name("freshet-stdin".into())
        .spawn(move || {
            // Our own buffer, to see whether the next read would block (`buffer()`).
            let mut reader = std::io::BufReader::with_capacity(1 << 16, std::io::stdin());
            loop {
                let mut lines = Vec::new();
                let mut end = None;
                loop {
                    let mut line = Vec::new();
                    match reader.read_until(b'\n', &mut line) {
                        Ok(0) => {
                            end = Some(Ok(()));
                            break;
                        }
                        Ok(_) => {
                            if line.last() == Some(&b'\n') {
                                line.pop();
                                if line.last() == Some(&b'\r') {
                                    line.pop();
                                }
                            }
                            lines.push(line);
                            if lines.len() >= LINES_PER_CHUNK || reader.buffer().is_empty() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            end = Some(Err(e));
                            break;
                        }
                    }
                }
                if !lines.is_empty() && tx.blocking_send(Ok(lines)).is_err() {
                    return;
                }
                match end {
                    None => {}
                    Some(Ok(())) => return,
                    Some(Err(e)) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
        })
        .map(drop)
        .map_err(|source| CliError::Io {
            op: "start the stdin reader thread",
            source,
        })
}

/// A spinner with a record count on stderr, when someone watches it: stderr is a terminal
/// and the input is not typed by hand (a redrawing spinner would garble the typing).
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() || std::io::stdin().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {human_pos} records sent ({per_sec})")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}
