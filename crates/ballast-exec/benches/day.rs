//! The simulator's day under each policy (issue [13]: the 2,000-instance, 40,000-task,
//! 30-minute day in under 3 s per policy): `generate::large(2000, 40000, 30)` simulated under
//! ballast (every job, its default configuration) and under `none`. docs/performance.md has
//! the figures.

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use ballast_core::config::ClusterConfig;
use ballast_exec::policies::make;
use ballast_sim::generate::large;
use ballast_sim::{RunOptions, Scenario, simulate};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("day_2000_instances");
    g.sample_size(10);
    let sc = Scenario::parse(&large(2000, 40_000, 30), "bench").expect("generated scenario parses");
    let cfg: ClusterConfig = ballast_core::config::validate_cluster(&sc.controller.config, &Default::default())
        .expect("the scenario's configuration");
    for policy in ["ballast", "none"] {
        g.bench_with_input(BenchmarkId::from_parameter(policy), &sc, |b, sc| {
            b.iter(|| {
                let spec = ballast_exec::baselines::PolicySpec::parse(policy).expect("a policy");
                let mut ctrl = make(&spec, &cfg).expect("a controller");
                let out = simulate(sc, policy, ctrl.as_mut(), &RunOptions::default());
                assert_eq!(out.report.tasks_lost, 0);
                out.report.tasks_restarted
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
