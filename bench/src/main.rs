//! The `freshet-bench` binary: see the library's docs (`freshet_bench`) and bench/README.md.

fn main() {
    std::process::exit(freshet_bench::main_cli());
}
