//! Prints generated instance-join scenario `N` (`generate::joining`), to run or look into
//! one with `ballast simulate --scenario`: `cargo run -p ballast-sim --example joining -- 4`.
fn main() {
    let seed = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    print!("{}", ballast_sim::generate::joining(seed));
}
