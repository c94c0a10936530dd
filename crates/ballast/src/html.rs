//! The self-contained HTML report (and its `.svg` form), drawn with `plotters`' SVG backend:
//! one chart per figure with every policy overlaid (a legend, one y-scale, time in h:mm), then
//! each policy's service tasks per instance. The table beside them gives each figure's total,
//! each service's lowest availability beside its health budget, and for scenarios that move
//! capacity the instance-hours, cost and their ratio to the capacity bound. No scripts, no
//! external resources.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use ballast_sim::report::{Report, Sample};

/// Series colours (Tableau 10: distinct, and readable on white).
const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// A chart's size, pixels.
const SIZE: (u32, u32) = (860, 280);

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `h:mm` of a time in seconds.
pub fn hmm(t: f64) -> String {
    let m = (t / 60.0).round() as i64;
    format!("{}:{:02}", m / 60, m % 60)
}

/// One named series of (seconds, value).
pub type Series = (String, Vec<(f64, f64)>);

/// One line chart of several series over time, as an SVG document: `title`, the y axis'
/// `unit`, every series on one scale (up to `y_max`, else 10% above the largest value).
pub fn chart(title: &str, unit: &str, series: &[Series], y_max: Option<f64>) -> String {
    let t_max = series.iter().flat_map(|s| s.1.iter().map(|p| p.0)).fold(60.0_f64, f64::max);
    let top =
        y_max.unwrap_or_else(|| series.iter().flat_map(|s| s.1.iter().map(|p| p.1)).fold(1.0_f64, f64::max) * 1.1);
    let mut buf = String::new();
    // Drawing into a String cannot fail for want of room; an error only loses the chart.
    let _ = draw(&mut buf, title, unit, series, t_max, top);
    buf
}

fn draw(buf: &mut String, title: &str, unit: &str, series: &[Series], t_max: f64, top: f64) -> Option<()> {
    let root = SVGBackend::with_string(buf, SIZE).into_drawing_area();
    root.fill(&WHITE).ok()?;
    let mut c = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..t_max, 0.0..top)
        .ok()?;
    c.configure_mesh()
        .x_desc("simulated time (h:mm)")
        .y_desc(unit)
        .y_labels(6)
        // Time ticks are drawn below at round h:mm steps (plotters would pick round seconds).
        .x_labels(0)
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .ok()?;
    let label = ("sans-serif", 11).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top));
    for t in ticks(t_max) {
        let (x, y) = c.backend_coord(&(t, 0.0));
        root.draw(&PathElement::new(vec![(x, y), (x, y + 5)], BLACK)).ok()?;
        root.draw(&Text::new(hmm(t), (x, y + 7), label.clone())).ok()?;
    }
    for (k, (name, pts)) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()].to_rgba();
        c.draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
            .ok()?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
    }
    if series.len() > 1 || series.first().is_some_and(|s| !s.0.is_empty()) {
        c.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()
            .ok()?;
    }
    root.present().ok()?;
    Some(())
}

/// Time ticks at a round step (1, 2, 5, 10, 15, 30 minutes, 1, 2, 3, 4, 6, 12 hours, a day),
/// at most 12 of them, in seconds.
fn ticks(t_max: f64) -> Vec<f64> {
    let steps = [1, 2, 5, 10, 15, 30, 60, 120, 180, 240, 360, 720, 1440];
    let step = steps.iter().map(|m| f64::from(*m) * 60.0).find(|s| t_max / s <= 12.0).unwrap_or(86_400.0);
    (0..).map(|k| f64::from(k) * step).take_while(|t| *t <= t_max + 1e-6).collect()
}

fn per_instance_series(tl: &[Sample]) -> Vec<Series> {
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

/// The figures every policy is overlaid on: (title, unit, value of a sample, y maximum).
type Figure = (&'static str, &'static str, fn(&Sample) -> f64, Option<f64>);

const FIGURES: [Figure; 4] = [
    ("Task-count COV", "COV of service tasks per instance (%)", |s| s.cov_count, None),
    ("Availability", "lowest share of desired tasks running (%)", |s| s.availability, Some(105.0)),
    ("Instances", "instances registered", |s| s.instances as f64, None),
    ("Unplaced tasks", "tasks waiting for room", |s| s.unplaced as f64, None),
];

/// Every chart of the report, as SVG documents (the HTML page shows them; the `.svg` form
/// stacks them).
pub fn charts(runs: &[(Report, Vec<Sample>)]) -> Vec<String> {
    let mut out = Vec::new();
    for (title, unit, get, top) in FIGURES {
        let series: Vec<Series> =
            runs.iter().map(|(r, tl)| (r.policy.clone(), tl.iter().map(|s| (s.t, get(s))).collect())).collect();
        out.push(chart(title, unit, &series, top));
    }
    for (r, tl) in runs {
        out.push(chart(&format!("Service tasks per instance: {}", r.policy), "tasks", &per_instance_series(tl), None));
    }
    out
}

/// The report as one SVG document: every chart, one under another.
pub fn svg(runs: &[(Report, Vec<Sample>)]) -> String {
    let charts = charts(runs);
    let (w, h) = SIZE;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{}\" viewBox=\"0 0 {w} {}\">\n",
        h as usize * charts.len(),
        h as usize * charts.len()
    );
    for (k, c) in charts.iter().enumerate() {
        // Each chart is a whole <svg>; nested ones are placed by their y.
        let inner = c.replacen("<svg ", &format!("<svg y=\"{}\" ", k * h as usize), 1);
        out.push_str(&inner);
        out.push('\n');
    }
    out.push_str("</svg>\n");
    out
}

fn balanced(r: &Report) -> String {
    match r.time_to_balanced_s {
        Some(t) => hmm(t),
        None => "never*".into(),
    }
}

/// The whole page for the given policies' reports and timelines.
pub fn page(scenario: &str, runs: &[(Report, Vec<Sample>)]) -> String {
    let capacity = runs.iter().any(|(r, _)| r.capacity_bound.instance_hours > 0.0);
    let mut body = format!("<h1>ballast simulation: {}</h1>", esc(scenario));
    body.push_str("<table><tr><th>policy</th><th>restarts</th><th>min_moves</th><th>fewest to balanced</th><th>final COV (count)</th><th>balanced (COV ≤ threshold) after</th><th>lowest availability</th><th>unplaced task·s</th><th>instance-hours</th><th>cost $</th>");
    if capacity {
        body.push_str("<th>× capacity bound (instance-hours)</th>");
    }
    body.push_str("<th>API calls</th><th>left draining</th><th>lost</th><th>errors</th></tr>");
    for (r, _) in runs {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{:.1}%</td><td>{}</td><td>{:.1}%</td><td>{:.0}</td><td>{:.2}</td><td>{:.3}</td>",
            esc(&r.policy),
            r.tasks_restarted,
            r.min_moves,
            r.min_moves_balanced,
            if r.min_moves_balanced_exact || r.min_moves_balanced == 0 { "" } else { "+" },
            r.final_cov_percent.count,
            balanced(r),
            r.min_availability_percent,
            r.unplaced_task_seconds,
            r.instance_hours,
            r.cost
        ));
        if capacity {
            let ratio = r.instance_hours / r.capacity_bound.instance_hours.max(1e-9);
            body.push_str(&format!("<td>{ratio:.2}</td>"));
        }
        body.push_str(&format!(
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.api_calls.total,
            r.left_draining,
            r.tasks_lost,
            r.errors.len()
        ));
    }
    body.push_str("</table>");
    if runs.iter().any(|(r, _)| r.time_to_balanced_s.is_none()) {
        let threshold = runs.first().map_or(25.0, |(r, _)| r.cov_threshold_percent);
        body.push_str(&format!(
            "<p class=\"note\">* never: the task-count COV did not stay at or below the threshold ({threshold:.0}%) after the scenario's last event. \
             ballast moves each service toward the placement its own strategy asks for; a cluster whose services all sit as their strategies ask \
             can still have a count COV above the threshold (a spread over 3 zones of unequal instance counts, a 3-task service on 4 instances, \
             daemons apart), and ballast does not fight a satisfied strategy for the sake of the COV. min_moves is the lower bound on restarts from \
             the states it acted in; 0 means nothing could move a service closer to its strategy.</p>"
        ));
    }
    // Each service's lowest availability beside its health budget.
    let mut services: Vec<&String> = runs.iter().flat_map(|(r, _)| r.service_availability.keys()).collect();
    services.sort();
    services.dedup();
    if !services.is_empty() {
        body.push_str("<h2>Availability per service (lowest share of its desired count running, and its budget)</h2><table><tr><th>service</th><th>budget (minimumHealthyPercent)</th>");
        for (r, _) in runs {
            body.push_str(&format!("<th>{}</th>", esc(&r.policy)));
        }
        body.push_str("</tr>");
        for s in services {
            let budget = runs.iter().find_map(|(r, _)| r.service_availability.get(s)).map_or(0, |a| a.budget_percent);
            body.push_str(&format!("<tr><td>{}</td><td>{budget}%</td>", esc(s)));
            for (r, _) in runs {
                match r.service_availability.get(s) {
                    Some(a) if a.min_percent + 1e-9 < f64::from(a.budget_percent) => {
                        body.push_str(&format!("<td class=\"below\">{:.1}% (below)</td>", a.min_percent))
                    }
                    Some(a) => body.push_str(&format!("<td>{:.1}%</td>", a.min_percent)),
                    None => body.push_str("<td>–</td>"),
                }
            }
            body.push_str("</tr>");
        }
        body.push_str("</table>");
    }
    body.push_str("<h2>Over time</h2>");
    for c in charts(runs) {
        body.push_str(&format!("<figure>{c}</figure>"));
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>ballast: {}</title><style>\
         body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse;margin:.5em 0}} \
         td,th{{border:1px solid #bbb;padding:3px 8px;text-align:right}} td:first-child,th:first-child{{text-align:left}} \
         .below{{background:#fdd}} .note{{max-width:60em;color:#444}} figure{{margin:.5em 0}}</style></head><body>{body}</body></html>\n",
        esc(scenario)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_hours_and_minutes() {
        assert_eq!(hmm(0.0), "0:00");
        assert_eq!(hmm(5400.0), "1:30");
        assert_eq!(hmm(59.0), "0:01");
    }

    #[test]
    fn a_chart_has_its_series_legend_and_axes() {
        let s =
            chart("T", "tasks", &[("a".into(), vec![(0.0, 1.0), (3600.0, 2.0)]), ("b".into(), vec![(0.0, 2.0)])], None);
        assert!(s.starts_with("<svg"), "{s}");
        let s = s.replace('\n', "");
        assert!(s.contains(">T<") && s.contains(">a<") && s.contains(">b<") && s.contains("1:00"), "{s}");
        assert!(s.contains("simulated time (h:mm)") && s.contains(">tasks<"), "{s}");
    }
}
