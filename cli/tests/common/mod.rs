//! Runs the `freshet` binary on a data directory, as a user would from a shell.

#![allow(dead_code)] // each test file uses its own part of these helpers

use std::error::Error;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Test result: any error fails the test with its message.
pub(crate) type TestResult<T = ()> = Result<T, Box<dyn Error>>;

/// What one run of the binary did.
#[derive(Debug)]
pub(crate) struct Run {
    /// The exit code (-1 when killed by a signal).
    pub(crate) code: i32,
    /// Everything printed on stdout.
    pub(crate) stdout: String,
    /// Everything printed on stderr.
    pub(crate) stderr: String,
}

/// A `freshet` command on the data directory `dir`, with no inherited settings.
pub(crate) fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_freshet"));
    cmd.arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("FRESHET_DATA_DIR")
        .env_remove("RUST_LOG");
    cmd
}

/// Runs `freshet --data-dir DIR ARGS…` with `stdin` as its input.
pub(crate) fn freshet(dir: &Path, args: &[&str], stdin: &str) -> TestResult<Run> {
    let mut child = command(dir, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Feed the input from a thread, so a child that writes much before reading everything
    // cannot deadlock; a child that exits without reading it all is fine (broken pipe).
    let writer = child.stdin.take().map(|mut input| {
        let bytes = stdin.as_bytes().to_vec();
        std::thread::spawn(move || {
            let _ = input.write_all(&bytes);
        })
    });
    let out = child.wait_with_output()?;
    if let Some(writer) = writer {
        writer.join().map_err(|_| "stdin writer panicked")?;
    }
    Ok(Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout)?,
        stderr: String::from_utf8(out.stderr)?,
    })
}

/// Runs a command that must succeed; returns its stdout.
pub(crate) fn ok(dir: &Path, args: &[&str], stdin: &str) -> TestResult<String> {
    let run = freshet(dir, args, stdin)?;
    if run.code != 0 {
        return Err(format!("freshet {args:?} exited with {}: {}", run.code, run.stderr).into());
    }
    Ok(run.stdout)
}

/// Runs a command that must fail with exit code 1 and exactly one line on stderr; returns
/// that line.
pub(crate) fn fails(dir: &Path, args: &[&str], stdin: &str) -> TestResult<String> {
    let run = freshet(dir, args, stdin)?;
    if run.code != 1 {
        return Err(format!(
            "freshet {args:?} exited with {} (expected 1); stdout: {}; stderr: {}",
            run.code, run.stdout, run.stderr
        )
        .into());
    }
    let lines: Vec<&str> = run.stderr.lines().collect();
    if lines.len() != 1 {
        return Err(format!("expected one line on stderr, got {lines:?}").into());
    }
    Ok(lines[0].to_string())
}

/// Creates a topic through the CLI.
pub(crate) fn create_topic(dir: &Path, topic: &str, partitions: u32) -> TestResult {
    ok(
        dir,
        &[
            "topics",
            "create",
            topic,
            "--partitions",
            &partitions.to_string(),
        ],
        "",
    )?;
    Ok(())
}

/// A `freshet` process running in the background (a follower), killed when dropped.
pub(crate) struct Background {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Background {
    /// Starts `freshet --data-dir DIR ARGS…` with its stdout read line by line.
    pub(crate) fn start(dir: &Path, args: &[&str]) -> TestResult<Background> {
        let mut child = command(dir, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Ok(Background { child, lines })
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line the process prints (waits up to 10 s).
    pub(crate) fn next_line(&self) -> TestResult<String> {
        Ok(self
            .lines
            .recv_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| format!("no line from the background freshet: {e}"))?)
    }

    /// Sends SIGINT (Ctrl-C) and waits for the exit code.
    pub(crate) fn interrupt(mut self) -> TestResult<i32> {
        let status = Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .status()?;
        if !status.success() {
            return Err("kill -INT failed".into());
        }
        Ok(self.child.wait()?.code().unwrap_or(-1))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
