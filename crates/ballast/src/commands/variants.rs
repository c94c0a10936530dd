//! `ballast simulate --variants N`: the comparison over N generated variants of a scenario
//! (`ballast_sim::variants`), as distributions: per figure and policy the median and the
//! worst, and how often ballast is worse than each other policy.

use std::io::{IsTerminal, Write};

use ballast_core::config::ClusterConfig;
use ballast_sim::report::Report;
use ballast_sim::variants::{VariantInfo, variant};
use ballast_sim::{RunOptions, Scenario, simulate};
use serde_json::{Value, json};

use ballast_exec::baselines::PolicySpec;
use ballast_exec::policies;

/// Which way a figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Better {
    Lower,
    Higher,
}

/// One figure of the report, as a number (`time_to_balanced_s` of "never" is +∞).
struct Figure {
    key: &'static str,
    label: &'static str,
    better: Better,
    get: fn(&Report) -> f64,
}

const FIGURES: &[Figure] = &[
    Figure { key: "tasks_restarted", label: "restarts", better: Better::Lower, get: |r| r.tasks_restarted as f64 },
    Figure {
        key: "unplaced_task_seconds",
        label: "unplaced task-s",
        better: Better::Lower,
        get: |r| r.unplaced_task_seconds,
    },
    Figure { key: "instance_hours", label: "instance-h", better: Better::Lower, get: |r| r.instance_hours },
    Figure { key: "cost", label: "cost $", better: Better::Lower, get: |r| r.cost },
    Figure {
        key: "capacity_ratio",
        label: "÷ capacity bound",
        better: Better::Lower,
        get: |r| {
            if r.capacity_bound.instance_hours > 0.0 { r.instance_hours / r.capacity_bound.instance_hours } else { 1.0 }
        },
    },
    Figure {
        key: "min_availability_percent",
        label: "availability %",
        better: Better::Higher,
        get: |r| r.min_availability_percent,
    },
    Figure { key: "tasks_lost", label: "tasks lost", better: Better::Lower, get: |r| r.tasks_lost as f64 },
    Figure {
        key: "time_to_balanced_s",
        label: "balanced after s",
        better: Better::Lower,
        get: |r| r.time_to_balanced_s.unwrap_or(f64::INFINITY),
    },
    Figure {
        key: "final_cov_count_percent",
        label: "final count COV %",
        better: Better::Lower,
        get: |r| r.final_cov_percent.count,
    },
    Figure { key: "api_calls", label: "API calls", better: Better::Lower, get: |r| r.api_calls.total as f64 },
    Figure { key: "errors", label: "run errors", better: Better::Lower, get: |r| r.errors.len() as f64 },
];

fn worse(f: &Figure, a: f64, b: f64) -> bool {
    match f.better {
        Better::Lower => a > b + 1e-9,
        Better::Higher => a + 1e-9 < b,
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 }
}

fn worst(f: &Figure, v: &[f64]) -> f64 {
    match f.better {
        Better::Lower => v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Better::Higher => v.iter().copied().fold(f64::INFINITY, f64::min),
    }
}

/// Runs every policy over `n` variants (on two threads); rows\[variant\]\[policy\].
pub fn run_all(
    sc: &Scenario,
    specs: &[PolicySpec],
    cfg: &ClusterConfig,
    n: usize,
    quiet: bool,
) -> (Vec<VariantInfo>, Vec<Vec<Report>>) {
    let show = !quiet && std::io::stderr().is_terminal();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get()).clamp(1, 4);
    let mut out: Vec<Option<(VariantInfo, Vec<Report>)>> = (0..n).map(|_| None).collect();
    std::thread::scope(|s| {
        let chunks: Vec<Vec<usize>> = (0..threads).map(|t| (t..n).step_by(threads).collect()).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|ks| {
                let done = &done;
                s.spawn(move || {
                    let mut rows = Vec::new();
                    for k in ks {
                        let (v, info) = variant(sc, k);
                        let reports: Vec<Report> = specs
                            .iter()
                            .map(|spec| {
                                let mut ctrl = policies::make(spec, cfg).expect("checked by policy_list");
                                simulate(&v, &spec.text(), ctrl.as_mut(), &RunOptions::default()).report
                            })
                            .collect();
                        rows.push((k, info, reports));
                        let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        if show {
                            eprint!("\rvariant {d}/{n}");
                            let _ = std::io::stderr().flush();
                        }
                    }
                    rows
                })
            })
            .collect();
        for h in handles {
            for (k, info, reports) in h.join().expect("a variant's thread panicked") {
                out[k] = Some((info, reports));
            }
        }
    });
    if show {
        eprint!("\r{:30}\r", "");
    }
    out.into_iter().map(|o| o.expect("every variant ran")).unzip()
}

/// The distribution as JSON (docs/simulator.md, "Variants").
pub fn to_json(sc: &Scenario, specs: &[PolicySpec], infos: &[VariantInfo], rows: &[Vec<Report>]) -> Value {
    let names: Vec<String> = specs.iter().map(PolicySpec::text).collect();
    let ours = names.iter().position(|p| p == "ballast");
    let mut figures = serde_json::Map::new();
    for f in FIGURES {
        let mut per = serde_json::Map::new();
        for (p, name) in names.iter().enumerate() {
            let vals: Vec<f64> = rows.iter().map(|r| (f.get)(&r[p])).collect();
            let num = |x: f64| if x.is_finite() { json!((x * 100.0).round() / 100.0) } else { Value::Null };
            let mut entry = json!({
                "median": num(median(&vals)),
                "worst": num(worst(f, &vals)),
                "values": vals.iter().map(|&x| num(x)).collect::<Vec<_>>(),
            });
            if let Some(b) = ours.filter(|&b| b != p) {
                let n = rows.iter().filter(|r| worse(f, (f.get)(&r[b]), (f.get)(&r[p]))).count();
                entry["ballast_worse_in"] = json!(n);
            }
            per.insert(name.clone(), entry);
        }
        figures.insert(
            f.key.to_string(),
            json!({"better": if f.better == Better::Lower { "lower" } else { "higher" }, "policies": per}),
        );
    }
    json!({
        "schema_version": crate::render::SCHEMA_VERSION,
        "scenario": sc.name,
        "variants": infos.len(),
        "policies": names,
        "generated": infos,
        "figures": figures,
    })
}

fn fmt(x: f64) -> String {
    if !x.is_finite() {
        "never".into()
    } else if x.abs() >= 100.0 || x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// The distribution as a table.
pub fn to_text(sc: &Scenario, specs: &[PolicySpec], infos: &[VariantInfo], rows: &[Vec<Report>]) -> String {
    let names: Vec<String> = specs.iter().map(PolicySpec::text).collect();
    let ours = names.iter().position(|p| p == "ballast");
    let n = infos.len();
    let d = infos.iter().filter(|i| i.daemons).count();
    let lo = infos.iter().map(|i| i.demand).fold(f64::INFINITY, f64::min);
    let hi = infos.iter().map(|i| i.demand).fold(f64::NEG_INFINITY, f64::max);
    let mut out = format!(
        "scenario {}: {n} generated variants (daemons in {d}; boot 1–5 min; task start 10–90 s; demand ×{lo:.2}–{hi:.2}; a seed each)\n",
        sc.name
    );
    let w = names.iter().map(String::len).max().unwrap_or(6).max(6);
    out.push_str(&format!("{:<18} {:<w$} {:>10} {:>10}  {}\n", "figure", "policy", "median", "worst", "ballast worse"));
    for f in FIGURES {
        for (p, name) in names.iter().enumerate() {
            let vals: Vec<f64> = rows.iter().map(|r| (f.get)(&r[p])).collect();
            let lose = match ours.filter(|&b| b != p) {
                Some(b) => {
                    format!("in {}/{n}", rows.iter().filter(|r| worse(f, (f.get)(&r[b]), (f.get)(&r[p]))).count())
                }
                None => String::new(),
            };
            let label = if p == 0 { f.label } else { "" };
            out.push_str(&format!(
                "{:<18} {:<w$} {:>10} {:>10}  {}\n",
                label,
                name,
                fmt(median(&vals)),
                fmt(worst(f, &vals)),
                lose
            ));
        }
    }
    out
}
