//! The self-contained HTML report: per policy, inline SVG charts of tasks per instance,
//! COV, availability and capacity over time. No scripts, no external resources.

use ballast_sim::report::{Report, Sample};

const W: f64 = 640.0;
const H: f64 = 160.0;
const COLOURS: [&str; 8] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// One line chart of several series over time.
pub fn chart(title: &str, series: &[(String, Vec<(f64, f64)>)], y_max: Option<f64>) -> String {
    let t_max = series.iter().flat_map(|s| s.1.iter().map(|p| p.0)).fold(1.0_f64, f64::max);
    let v_max =
        y_max.unwrap_or_else(|| series.iter().flat_map(|s| s.1.iter().map(|p| p.1)).fold(1.0_f64, f64::max) * 1.1);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\"><text x=\"4\" y=\"14\" font-size=\"12\" font-family=\"sans-serif\">{} (max {:.1})</text><rect x=\"40\" y=\"20\" width=\"{W}\" height=\"{H}\" fill=\"none\" stroke=\"#ccc\"/>",
        W + 60.0,
        H + 40.0,
        W + 60.0,
        H + 40.0,
        esc(title),
        v_max
    );
    for (k, (name, pts)) in series.iter().enumerate() {
        let path: Vec<String> = pts
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", 40.0 + t / t_max * W, 20.0 + H - (v / v_max).min(1.0) * H))
            .collect();
        svg.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"><title>{}</title></polyline>",
            COLOURS[k % COLOURS.len()],
            path.join(" "),
            esc(name)
        ));
    }
    svg.push_str(&format!(
        "<text x=\"40\" y=\"{}\" font-size=\"10\" font-family=\"sans-serif\">0 … {:.0} min</text></svg>",
        H + 34.0,
        t_max / 60.0
    ));
    svg
}

fn per_instance_series(tl: &[Sample]) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut ids: Vec<String> = tl.iter().flat_map(|s| s.per_instance.iter().map(|p| p.0.clone())).collect();
    ids.sort();
    ids.dedup();
    ids.into_iter()
        .map(|id| {
            let pts = tl
                .iter()
                .map(|s| (s.t, s.per_instance.iter().find(|p| p.0 == id).map_or(0.0, |p| p.1 as f64)))
                .collect();
            (id, pts)
        })
        .collect()
}

/// The whole page for the given policies' reports and timelines.
pub fn page(scenario: &str, runs: &[(Report, Vec<Sample>)]) -> String {
    let mut body = format!("<h1>ballast simulation: {}</h1>", esc(scenario));
    body.push_str("<table border=\"1\" cellpadding=\"4\" style=\"border-collapse:collapse\"><tr><th>policy</th><th>restarts</th><th>min_moves</th><th>final count COV</th><th>availability</th><th>unplaced task·s</th><th>cost $</th><th>API calls</th><th>left draining</th><th>lost</th></tr>");
    for (r, _) in runs {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td><td>{:.1}%</td><td>{:.0}</td><td>{:.3}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.policy), r.tasks_restarted, r.min_moves, r.final_cov_percent.count, r.min_availability_percent,
            r.unplaced_task_seconds, r.cost, r.api_calls.total, r.left_draining, r.tasks_lost
        ));
    }
    body.push_str("</table>");
    for (r, tl) in runs {
        body.push_str(&format!("<h2>{}</h2>", esc(&r.policy)));
        body.push_str(&chart("service tasks per instance", &per_instance_series(tl), None));
        body.push_str(&chart(
            "task-count COV %",
            &[("COV".into(), tl.iter().map(|s| (s.t, s.cov_count)).collect())],
            None,
        ));
        body.push_str(&chart(
            "availability % (what the policy cost)",
            &[("availability".into(), tl.iter().map(|s| (s.t, s.availability)).collect())],
            Some(100.0),
        ));
        body.push_str(&chart(
            "capacity: instances, unplaced tasks",
            &[
                ("instances".into(), tl.iter().map(|s| (s.t, s.instances as f64)).collect()),
                ("unplaced".into(), tl.iter().map(|s| (s.t, s.unplaced as f64)).collect()),
            ],
            None,
        ));
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>ballast: {}</title></head><body style=\"font-family:sans-serif\">{body}</body></html>\n",
        esc(scenario)
    )
}
