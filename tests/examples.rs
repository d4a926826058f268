//! Runs the examples' code, so the README's first command keeps working.

#[path = "../examples/log_quickstart.rs"]
mod log_quickstart;

#[test]
fn log_quickstart_counts_each_view_once_across_runs() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let first = log_quickstart::run(dir.path(), 2_000)?;
    assert_eq!(first.produced, 2_000);
    assert_eq!(first.counted, 2_000);
    assert_eq!(first.counts.values().sum::<u64>(), 2_000);
    let second = log_quickstart::run(dir.path(), 500)?;
    assert_eq!(
        second.counted, 500,
        "the group resumes from its committed offsets"
    );

    // The counts topic holds both runs' committed counts, nothing else.
    let log = freshet::log::Log::open(dir.path())?;
    let mut total = 0u64;
    for p in 0..4 {
        for r in log.read(
            "views-per-user",
            p,
            0,
            1 << 20,
            freshet::log::Isolation::ReadCommitted,
        )? {
            let v: u64 = String::from_utf8(r.value.unwrap_or_default().to_vec())?.parse()?;
            total += v;
        }
    }
    assert_eq!(total, 2_500);
    Ok(())
}
