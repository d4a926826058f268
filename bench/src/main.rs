//! freshet's benchmark harness.

fn main() {
    println!("freshet-bench: no workloads yet");
}
