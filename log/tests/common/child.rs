//! A child process re-executing the current test binary, for crash tests: the parent reads
//! its stdout lines and kills it with SIGKILL. Shared by the log's and the state store's
//! crash tests (the latter include this file by path), so it uses only std.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What went wrong with a child: a plain message, so both crates' test error types
/// (`Box<dyn Error>`, with or without `Send + Sync`) take it through `?`.
#[derive(Debug)]
pub(crate) struct ChildError(String);

impl std::fmt::Display for ChildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ChildError {}

impl From<String> for ChildError {
    fn from(s: String) -> Self {
        ChildError(s)
    }
}

impl From<&str> for ChildError {
    fn from(s: &str) -> Self {
        ChildError(s.to_string())
    }
}

impl From<std::io::Error> for ChildError {
    fn from(e: std::io::Error) -> Self {
        ChildError(e.to_string())
    }
}

type TestResult<T = ()> = Result<T, ChildError>;

/// A child process running one `#[ignore]`d test of this same test binary, whose stdout
/// lines the parent reads. Killed (SIGKILL) and reaped on drop, so a failing parent leaves
/// no process behind.
#[derive(Debug)]
pub(crate) struct ChildProc {
    child: Child,
    lines: Receiver<String>,
    reader: Option<JoinHandle<()>>,
    /// Every complete line received so far.
    seen: Vec<String>,
    reaped: bool,
}

impl ChildProc {
    /// Re-executes the current test binary to run exactly `test_name` (an ignored test),
    /// with `envs` set.
    pub(crate) fn spawn(test_name: &str, envs: &[(&str, String)]) -> TestResult<ChildProc> {
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        cmd.args([
            test_name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take().ok_or("child has no stdout")?;
        let (tx, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                // A line cut off by the kill (no newline) was never fully reported: drop it.
                if buf.last() != Some(&b'\n') {
                    return;
                }
                let line = String::from_utf8_lossy(&buf[..buf.len() - 1]).into_owned();
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Ok(ChildProc {
            child,
            lines,
            reader: Some(reader),
            seen: Vec::new(),
            reaped: false,
        })
    }

    /// The child's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the child prints a line equal to `want` (keeping every line seen).
    /// Children print a newline first, since the test harness leaves its "test <name> ... "
    /// line open.
    pub(crate) fn wait_for_line(&mut self, want: &str, timeout: Duration) -> TestResult<()> {
        self.wait_for(|line| line == want, want, timeout)
    }

    /// Waits until the child prints a line starting with `prefix`.
    pub(crate) fn wait_for_line_starting(
        &mut self,
        prefix: &str,
        timeout: Duration,
    ) -> TestResult<()> {
        self.wait_for(
            |line| line.starts_with(prefix),
            &format!("{prefix}…"),
            timeout,
        )
    }

    fn wait_for(
        &mut self,
        done: impl Fn(&str) -> bool,
        want: &str,
        timeout: Duration,
    ) -> TestResult<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = done(&line);
                    self.seen.push(line);
                    if found {
                        return Ok(());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("child did not print '{want}' within {timeout:?}").into())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait()?;
                    self.reaped = true;
                    return Err(format!(
                        "child exited ({status}) before printing '{want}'; it printed {:?}",
                        self.seen
                    )
                    .into());
                }
            }
        }
    }

    /// SIGKILLs the child, reaps it, and returns every complete line it printed.
    pub(crate) fn kill_and_collect(mut self) -> TestResult<Vec<String>> {
        self.kill_and_reap()?;
        if let Some(reader) = self.reader.take() {
            reader.join().map_err(|_| "stdout reader panicked")?;
        }
        let mut lines = std::mem::take(&mut self.seen);
        lines.extend(self.lines.try_iter());
        Ok(lines)
    }

    fn kill_and_reap(&mut self) -> TestResult<()> {
        if !self.reaped {
            // `Child::kill` is SIGKILL on unix; it fails only when the child is already gone.
            let _ = self.child.kill();
            self.child.wait()?;
            self.reaped = true;
        }
        Ok(())
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        let _ = self.kill_and_reap();
    }
}
