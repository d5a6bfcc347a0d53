//! `hark-bench`: the benchmark scenarios without the rest of the `hark` command.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(hark_bench::main(&[], &args));
}
