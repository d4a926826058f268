//! The `freshet-bench` binary: see the library's docs (`freshet_bench`) and bench/README.md.

/// jemalloc, the allocator we recommend for freshet apps (BENCHMARKS.md, "The
/// allocator"): with glibc's, restore spent a sixth of its time waking threads blocked on
/// malloc's arena locks (sled's threads free what the restoring thread allocates) and ran
/// 1.3–2 times slower; the stateful workloads lose 3–5 %. The baselines run in this
/// process too, on the same allocator.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    std::process::exit(freshet_bench::main_cli());
}
