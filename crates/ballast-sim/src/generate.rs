//! Generated scenarios, for property tests and benchmarks: text in scenario format v1, so
//! every generated case goes through the same parser as a user's file.

use ballast_core::rng::Rng;

const TYPES: [&str; 4] = ["m5.large", "m5.xlarge", "c5.xlarge", "r5.large"];
const STRATEGIES: [&str; 7] = [
    "[]",
    "[\"spread(attribute:ecs.availability-zone)\", \"spread(instanceId)\"]",
    "[\"spread(instanceId)\"]",
    "[\"binpack(memory)\"]",
    "[\"binpack(cpu)\"]",
    "[random]",
    "[\"spread(attribute:ecs.availability-zone)\", \"binpack(memory)\"]",
];
const CONSTRAINTS: [&str; 4] = [
    "[]",
    "[distinctInstance]",
    "[\"memberOf(attribute:ecs.instance-type != r5.large)\"]",
    "[\"memberOf(attribute:ecs.availability-zone in [us-east-1a, us-east-1b])\"]",
];
const BUDGETS: [(u32, u32); 4] = [(100, 200), (50, 100), (100, 100), (50, 150)];

/// A small random scenario: a few instances and services of every shape, group scaling,
/// instance terminations and API faults at random times.
pub fn random_scenario(seed: u64) -> String {
    let mut r = Rng::new(seed);
    let azs = ["us-east-1a", "us-east-1b", "us-east-1c"];
    let n_az = 1 + r.below(3);
    let desired = 2 + r.below(5);
    let max = desired + 3;
    let mut y = format!(
        "name: random-{seed}\nseed: {seed}\nduration: 40m\nazs: [{}]\ngroups:\n  - {{name: g, instance_types: [{}, {}], desired: {desired}, min: 1, max: {max}, boot: {}s}}\nservices:\n",
        azs[..n_az].join(", "),
        TYPES[r.below(4)],
        TYPES[r.below(4)],
        30 + r.below(150)
    );
    let n_svc = 1 + r.below(4);
    for s in 0..n_svc {
        let (min, mx) = BUDGETS[r.below(BUDGETS.len())];
        y.push_str(&format!(
            "  - {{name: s{s}, desired: {}, cpu: {}, memory: {}, strategy: {}, constraints: {}, min_healthy_percent: {min}, max_percent: {mx}, start: {}s{}}}\n",
            1 + r.below(12),
            [128, 256, 512][r.below(3)],
            [256, 512, 1024][r.below(3)],
            STRATEGIES[r.below(STRATEGIES.len())],
            CONSTRAINTS[r.below(CONSTRAINTS.len())],
            10 + r.below(60),
            if r.below(4) == 0 { ", ports: [8080]" } else { "" }
        ));
    }
    if r.below(2) == 0 {
        y.push_str("  - {name: agent, daemon: true, cpu: 64, memory: 128}\n");
    }
    let standalone = r.below(3);
    if standalone > 0 {
        y.push_str(&format!("standalone:\n  - {{name: job, count: {standalone}, cpu: 128, memory: 256}}\n"));
    }
    y.push_str("events:\n");
    for _ in 0..(1 + r.below(4)) {
        let at = 1 + r.below(35);
        match r.below(4) {
            0 | 1 => y.push_str(&format!(
                "  - {{at: {at}m, set_group_desired: {{group: g, desired: {}}}}}\n",
                1 + r.below(max)
            )),
            2 => y.push_str(&format!("  - {{at: {at}m, terminate_instances: {{group: g, count: 1}}}}\n")),
            _ => y.push_str(&format!(
                "  - {{at: {at}m, api_faults: {{throttle_rate: 0.{}, error_rate: 0.05, until: {}m}}}}\n",
                r.below(5),
                at + 3
            )),
        }
    }
    y.push_str("controller: {every: 5m, on_instance_events: true, config: {}}\n");
    y
}

/// A cluster that grows once and then stays as it is: a few instances of every shape and
/// services of every strategy, constraint and budget placed by ECS, then more instances
/// joining at one minute (empty, as ECS leaves them); nothing else happens for 40 minutes.
/// Every policy acts on the same imbalance, after the only event: what the lower bounds are
/// tested on.
pub fn joining(seed: u64) -> String {
    let mut r = Rng::new(seed ^ 0x7015);
    let azs = ["us-east-1a", "us-east-1b", "us-east-1c"];
    let n_az = 1 + r.below(3);
    let desired = 2 + r.below(4);
    let grown = desired + 1 + r.below(3);
    let mut y = format!(
        "name: joining-{seed}\nseed: {seed}\nduration: 40m\nazs: [{}]\ngroups:\n  - {{name: g, instance_types: [{}, {}], desired: {desired}, min: 1, max: {grown}, boot: {}s}}\nservices:\n",
        azs[..n_az].join(", "),
        TYPES[r.below(4)],
        TYPES[r.below(4)],
        30 + r.below(90)
    );
    for s in 0..(1 + r.below(4)) {
        let (min, mx) = BUDGETS[r.below(BUDGETS.len())];
        y.push_str(&format!(
            "  - {{name: s{s}, desired: {}, cpu: {}, memory: {}, strategy: {}, constraints: {}, min_healthy_percent: {min}, max_percent: {mx}, start: {}s}}\n",
            2 + r.below(14),
            [128, 256, 512][r.below(3)],
            [256, 512, 1024, 2048][r.below(4)],
            STRATEGIES[r.below(3)],
            CONSTRAINTS[[0, 0, 1, 2][r.below(4)]],
            10 + r.below(60),
        ));
    }
    if r.below(2) == 0 {
        y.push_str("  - {name: agent, daemon: true, cpu: 64, memory: 128}\n");
    }
    y.push_str(&format!("events:\n  - {{at: 1m, set_group_desired: {{group: g, desired: {grown}}}}}\n"));
    y.push_str("controller: {every: 5m, on_instance_events: true, config: {}}\n");
    y
}

/// A large cluster for benchmarks: `instances` m5.2xlarge in three AZs, services of mixed
/// strategies totalling about `tasks` tasks (at least 8 services, and as many more as keep
/// each within ECS's 5,000 tasks per service), and scale-out events adding 10% capacity (up
/// to ECS's 5,000 instances per cluster).
pub fn large(instances: usize, tasks: usize, minutes: u64) -> String {
    let services = tasks.div_ceil(crate::scenario::MAX_TASKS as usize).max(8);
    let per = tasks / services;
    let mut y = format!(
        "name: large-{instances}\nseed: 1\nduration: {minutes}m\nazs: [us-east-1a, us-east-1b, us-east-1c]\ngroups:\n  - {{name: g, instance_type: m5.2xlarge, desired: {instances}, min: 1, max: {}}}\nservices:\n",
        (instances * 2).min(5000)
    );
    let strategies = [
        STRATEGIES[1],
        STRATEGIES[2],
        STRATEGIES[3],
        STRATEGIES[0],
        STRATEGIES[6],
        STRATEGIES[5],
        STRATEGIES[1],
        STRATEGIES[2],
    ];
    for (s, st) in strategies.iter().cycle().take(services).enumerate() {
        y.push_str(&format!("  - {{name: s{s}, desired: {per}, cpu: 128, memory: 256, strategy: {st}}}\n"));
    }
    y.push_str(&format!(
        "events:\n  - {{at: 5m, set_group_desired: {{group: g, desired: {}}}}}\n  - {{at: 15m, set_group_desired: {{group: g, desired: {}}}}}\ncontroller: {{every: 5m, on_instance_events: false, config: {{}}}}\n",
        (instances + instances / 20).min(5000),
        (instances + instances / 10).min(5000)
    ));
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scenario;

    #[test]
    fn generated_scenarios_parse() {
        for seed in 0..200 {
            let text = random_scenario(seed);
            Scenario::parse(&text, "gen").unwrap_or_else(|e| panic!("{e}\n{text}"));
        }
        Scenario::parse(&large(100, 2000, 30), "gen").unwrap();
        // ECS's limits hold at the largest size: 5,000 instances, 5,000 tasks per service.
        let biggest = Scenario::parse(&large(5000, 100_000, 30), "gen").unwrap();
        assert_eq!(biggest.services.len(), 20);
        for seed in 0..100 {
            Scenario::parse(&joining(seed), "gen").unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
