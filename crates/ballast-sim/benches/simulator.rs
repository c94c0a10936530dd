//! The simulator on generated clusters: 200, 1,000 and 2,000 instances (20 tasks per
//! instance) over 30 simulated minutes with two scale-out events. Target (issue [1]): 2,000
//! instances and 40,000 tasks in under 10 s.

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use ballast_sim::generate::large;
use ballast_sim::{Nothing, RunOptions, Scenario, simulate};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("simulate_30m");
    g.sample_size(10);
    for n in [200usize, 1000, 2000] {
        let sc = Scenario::parse(&large(n, n * 20, 30), "bench").expect("generated scenario parses");
        g.bench_with_input(BenchmarkId::from_parameter(n), &sc, |b, sc| {
            b.iter(|| {
                let out = simulate(sc, "none", &mut Nothing, &RunOptions::default());
                assert_eq!(out.report.tasks_lost, 0);
                out.report.instance_hours
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
