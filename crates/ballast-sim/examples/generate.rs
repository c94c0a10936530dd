//! Prints a generated scenario, to run or look into with `ballast simulate --scenario`:
//! - `cargo run -p ballast-sim --example generate -- joining 4`: instance-join variant 4
//!   (`generate::joining`, the family issue [13]'s restart figures are measured on);
//! - `cargo run -p ballast-sim --example generate -- large 2000 40000 30`: the benchmark
//!   cluster (`generate::large`: instances, tasks, minutes).
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |k: usize, default: u64| args.get(k).and_then(|s| s.parse().ok()).unwrap_or(default);
    match args.first().map(String::as_str) {
        Some("large") => {
            print!("{}", ballast_sim::generate::large(num(1, 2000) as usize, num(2, 40_000) as usize, num(3, 30)))
        }
        Some("joining") => print!("{}", ballast_sim::generate::joining(num(1, 0))),
        _ => {
            eprintln!("usage: generate joining SEED | generate large INSTANCES TASKS MINUTES");
            std::process::exit(2);
        }
    }
}
