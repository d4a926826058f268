//! The `freshet` command-line tool.

#[allow(dead_code)]
mod format;

fn main() {}
