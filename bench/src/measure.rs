//! Timing (wall clock and process CPU), peak resident memory, medians, and result lines.

use std::time::{Duration, Instant};

use crate::BoxError;

/// One timed run of one side of a comparison.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Wall-clock time.
    pub wall: Duration,
    /// User + system CPU time of the whole process (every thread) over the run.
    pub cpu: Duration,
}

/// User + system CPU time this process has used so far.
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct we pass; a zeroed rusage is a valid value.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut u) != 0 {
            return Duration::ZERO;
        }
        u
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Runs `f`, timing it.
pub fn timed<T>(f: impl FnOnce() -> Result<T, BoxError>) -> Result<(T, Sample), BoxError> {
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    let out = f()?;
    let wall = t0.elapsed();
    let cpu = cpu_time().saturating_sub(cpu0);
    Ok((out, Sample { wall, cpu }))
}

/// The median of `values` (the mean of the middle two for an even count; 0 when empty).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Paired runs of freshet and its baseline for one result line.
#[derive(Debug, Default)]
pub struct Comparison {
    freshet: Vec<Sample>,
    baseline: Vec<Sample>,
}

/// What a result line must reach to count as a met goal.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    /// freshet throughput ÷ baseline throughput at least this.
    Ratio(f64),
    /// freshet throughput at least this many records per second.
    Rate(f64),
}

impl Comparison {
    /// Adds one run of each side.
    pub fn push(&mut self, freshet: Sample, baseline: Sample) {
        self.freshet.push(freshet);
        self.baseline.push(baseline);
    }

    /// Median over runs of the per-run ratio freshet ÷ baseline throughput (wall clock).
    pub fn ratio(&self) -> f64 {
        let r: Vec<f64> = self
            .freshet
            .iter()
            .zip(&self.baseline)
            .map(|(f, b)| b.wall.as_secs_f64() / f.wall.as_secs_f64())
            .collect();
        median(&r)
    }

    /// Median over runs of baseline CPU per record ÷ freshet CPU per record.
    pub fn cpu_ratio(&self) -> f64 {
        let r: Vec<f64> = self
            .freshet
            .iter()
            .zip(&self.baseline)
            .map(|(f, b)| b.cpu.as_secs_f64() / f.cpu.as_secs_f64().max(1e-9))
            .collect();
        median(&r)
    }

    /// Runs recorded so far.
    pub fn len(&self) -> usize {
        self.freshet.len()
    }

    /// Whether no run is recorded.
    pub fn is_empty(&self) -> bool {
        self.freshet.is_empty()
    }

    /// Median wall-clock seconds of freshet's runs.
    pub fn freshet_secs(&self) -> f64 {
        median(
            &self
                .freshet
                .iter()
                .map(|x| x.wall.as_secs_f64())
                .collect::<Vec<_>>(),
        )
    }

    /// Median wall-clock seconds of the baseline's runs.
    pub fn baseline_secs(&self) -> f64 {
        median(
            &self
                .baseline
                .iter()
                .map(|x| x.wall.as_secs_f64())
                .collect::<Vec<_>>(),
        )
    }

    /// Median CPU seconds (user + system) of freshet's runs.
    pub fn freshet_cpu_secs(&self) -> f64 {
        median(
            &self
                .freshet
                .iter()
                .map(|x| x.cpu.as_secs_f64())
                .collect::<Vec<_>>(),
        )
    }

    /// The result line: medians of both sides, the ratios, and whether `goal` is met.
    pub fn line(&self, label: &str, records: u64, goal: Goal) -> String {
        let secs =
            |s: &[Sample]| median(&s.iter().map(|x| x.wall.as_secs_f64()).collect::<Vec<_>>());
        let (f, b) = (secs(&self.freshet), secs(&self.baseline));
        let rate = |secs: f64| records as f64 / secs.max(1e-9);
        let ratio = self.ratio();
        let (met, goal_text) = match goal {
            Goal::Ratio(min) => (ratio >= min, format!("ratio ≥ {min}")),
            Goal::Rate(min) => (rate(f) >= min, format!("≥ {} M rec/s", min / 1e6)),
        };
        format!(
            "{label}: {records} records in {f:.2} s = {:.2} M rec/s (baseline {:.2} M rec/s, ratio {ratio:.2}; cpu ratio {:.2}) — goal {goal_text}: {}",
            rate(f) / 1e6,
            rate(b) / 1e6,
            self.cpu_ratio(),
            if met { "met" } else { "MISSED" },
        )
    }
}

/// Resets this process's peak resident set size (`VmHWM`) to its current size, so that
/// [`peak_rss_bytes`] then reports the peak of what runs next (Linux ≥ 4.0:
/// `echo 5 > /proc/self/clear_refs`). Returns false where that is not possible.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// This process's peak resident set size in bytes since the start or the last
/// [`reset_peak_rss`] (`VmHWM` of /proc/self/status; `ru_maxrss` where that is missing).
pub fn peak_rss_bytes() -> u64 {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines() {
            if let Some(rest) = line.strip_prefix("VmHWM:") {
                let kb = rest.trim().trim_end_matches("kB").trim();
                if let Ok(kb) = kb.parse::<u64>() {
                    return kb * 1024;
                }
            }
        }
    }
    // SAFETY: getrusage only writes the struct we pass; a zeroed rusage is a valid value.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut u) != 0 {
            return 0;
        }
        u
    };
    usage.ru_maxrss as u64 * 1024
}

/// Bytes as MiB, for result lines.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
