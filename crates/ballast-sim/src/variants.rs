//! Generated variants of a scenario, for claims about a family of workloads rather than one
//! (`simulate --variants N`; docs/simulator.md, "Variants").
//!
//! Variant `k` of a scenario draws, from a stream seeded by the scenario's seed and `k`:
//! - **daemons or not**: even variants run without daemon services, odd ones with them (the
//!   scenario's own, or a `variant-agent` daemon of 64 CPU units and 128 MiB when it has none);
//! - **boot time**: every group's boot uniform in 1–5 minutes;
//! - **task start time**: every service's start uniform in 10–90 seconds;
//! - **demand**: one factor uniform in 0.5–1.5 scales every replica service's desired count
//!   (the initial one and those its events set, at least 1 where it was positive), the
//!   standalone counts, the values of the scenario's metric series and the services'
//!   utilisation (at most 1.0, or the scenario's own value if higher) — and the capacity the
//!   scenario sized for it: every group's desired, minimum and maximum, and the desired
//!   counts its events set (an operator sizes a cluster, or a Spot fleet, to its workload;
//!   the jobs under test then scale what they scale);
//! - **seed**: a new seed for every random choice of the simulation.
//!
//! Everything else (groups, strategies, events, the controller) is the scenario's.

use ballast_core::duration::Millis;
use ballast_core::rng::Rng;

use crate::scenario::{EventKind, Scenario, ServiceSpec};

/// What one variant changed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VariantInfo {
    /// Its index.
    pub index: usize,
    /// Its seed.
    pub seed: u64,
    /// Daemon services run.
    pub daemons: bool,
    /// Boot time of every group, seconds.
    pub boot_s: u64,
    /// Start time of every service, seconds.
    pub start_s: u64,
    /// The demand factor.
    pub demand: f64,
}

/// The `k`-th variant of `sc`.
pub fn variant(sc: &Scenario, k: usize) -> (Scenario, VariantInfo) {
    let mut r = Rng::new(sc.seed ^ 0x0005_EED0_F7A4_1A47 ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut v = sc.clone();
    let daemons = k % 2 == 1;
    let boot = Millis::secs(60 + r.below(241) as u64);
    let start = Millis::secs(10 + r.below(81) as u64);
    let demand = 0.5 + r.unit();
    v.seed = r.next_u64();
    v.name = format!("{}#{k}", sc.name);
    for g in &mut v.groups {
        g.boot = boot;
    }
    if daemons {
        if !v.services.iter().any(|s| s.daemon) {
            v.services.push(ServiceSpec {
                name: "variant-agent".into(),
                desired: 0,
                cpu: 64,
                memory: 128,
                ports: vec![],
                strategy: vec![],
                constraints: vec![],
                min_healthy_percent: 0,
                max_percent: 100,
                daemon: true,
                start,
                stop: Millis::secs(30),
                utilization: (0.5, 0.5),
                needs: Default::default(),
                tags: Default::default(),
            });
        }
    } else {
        drop_daemons(&mut v);
    }
    let scale = |n: u32| if n == 0 { 0 } else { ((n as f64 * demand).round() as u32).max(1) };
    for s in &mut v.services {
        s.start = start;
        if !s.daemon {
            s.desired = scale(s.desired);
            s.utilization = (scale_util(s.utilization.0, demand), scale_util(s.utilization.1, demand));
        }
    }
    for s in &mut v.standalone {
        s.count = scale(s.count);
    }
    for g in &mut v.groups {
        g.min = scale(g.min);
        g.desired = scale(g.desired).max(g.min);
        g.max = ((g.max as f64 * demand).ceil() as u32).max(g.desired);
    }
    for e in &mut v.events {
        match &mut e.kind {
            EventKind::SetServiceDesired { desired, .. } => *desired = scale(*desired),
            EventKind::SetGroupDesired { group, desired } => {
                let g = &v.groups[*group];
                *desired = scale(*desired).clamp(g.min, g.max);
            }
            EventKind::SetUtilization { cpu, memory, .. } => {
                *cpu = scale_util(*cpu, demand);
                *memory = scale_util(*memory, demand);
            }
            _ => {}
        }
    }
    for m in &mut v.metrics {
        for p in &mut m.points {
            p.1 *= demand;
        }
    }
    let info = VariantInfo {
        index: k,
        seed: v.seed,
        daemons: v.services.iter().any(|s| s.daemon),
        boot_s: boot.as_secs(),
        start_s: start.as_secs(),
        demand: (demand * 1000.0).round() / 1000.0,
    };
    (v, info)
}

fn scale_util(u: f64, f: f64) -> f64 {
    (u * f).min(u.max(1.0))
}

/// Removes the daemon services, renumbering the events that name services.
fn drop_daemons(v: &mut Scenario) {
    let keep: Vec<bool> = v.services.iter().map(|s| !s.daemon).collect();
    if keep.iter().all(|k| *k) {
        return;
    }
    let mut new_index = vec![usize::MAX; keep.len()];
    let mut n = 0;
    for (i, k) in keep.iter().enumerate() {
        if *k {
            new_index[i] = n;
            n += 1;
        }
    }
    v.services.retain(|s| !s.daemon);
    v.events.retain_mut(|e| match &mut e.kind {
        EventKind::SetServiceDesired { service, .. } | EventKind::SetUtilization { service, .. } => {
            *service = new_index[*service];
            *service != usize::MAX
        }
        _ => true,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const SC: &str = "name: t\nseed: 3\nduration: 30m\ngroups:\n  - {name: g, instance_type: m5.large, desired: 2, boot: 2m}\nservices:\n  - {name: agent, daemon: true, cpu: 64, memory: 128}\n  - {name: web, desired: 4, cpu: 256, memory: 512, utilization: {cpu: 0.8, memory: 0.5}}\nevents:\n  - {at: 10m, set_service_desired: {service: web, desired: 8}}\n  - {at: 12m, set_utilization: {service: web, cpu: 0.9, memory: 0.9}}\nmetrics:\n  - {source: http, url: http://q.sim/x, field: n, points: [[0m, 10]]}\n";

    #[test]
    fn variants_vary_what_the_generator_says_and_nothing_else() {
        let sc = Scenario::parse(SC, "t.yaml").unwrap();
        let mut seeds = std::collections::BTreeSet::new();
        for k in 0..40 {
            let (v, info) = variant(&sc, k);
            assert_eq!(info.daemons, k % 2 == 1);
            assert_eq!(v.services.iter().any(|s| s.daemon), info.daemons);
            assert!((60..=300).contains(&info.boot_s) && v.groups[0].boot.as_secs() == info.boot_s);
            assert!((10..=90).contains(&info.start_s));
            assert!((0.5..=1.5).contains(&info.demand));
            let web = v.services.iter().position(|s| s.name == "web").unwrap();
            assert!((v.services[web].desired as f64 - 4.0 * info.demand).abs() <= 0.51);
            // The events still name web, whatever was removed before it.
            for e in &v.events {
                match e.kind {
                    EventKind::SetServiceDesired { service, .. } | EventKind::SetUtilization { service, .. } => {
                        assert_eq!(service, web)
                    }
                    _ => {}
                }
            }
            assert!(v.services[web].utilization.0 <= 1.0);
            assert!((v.groups[0].desired as f64 - 2.0 * info.demand).abs() <= 0.51, "capacity sized to demand");
            seeds.insert(v.seed);
        }
        assert_eq!(seeds.len(), 40);
        // Deterministic.
        assert_eq!(variant(&sc, 7).1.seed, variant(&sc, 7).1.seed);
    }
}
