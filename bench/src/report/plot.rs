//! PNG plots: latency CDFs per case, and grouped bars of throughput and memory per connection,
//! one colour per broker.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use super::cases::{BROKERS, Cases, ordered};
use crate::outcome::Outcome;

/// One colour per broker, the same in every plot.
const COLOURS: [RGBColor; 3] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
];
/// Where plotters finds a font: DejaVu ships with Debian's fontconfig and Java.
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Registers the system's DejaVu font for plotters' "sans-serif", when it is installed.
pub(super) fn register_font() {
    if let Ok(bytes) = std::fs::read(FONT) {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            Box::leak(bytes.into_boxed_slice()),
        );
    }
}

fn broker_colour(b: &str) -> RGBColor {
    BROKERS
        .iter()
        .position(|x| *x == b)
        .map_or(BLACK, |i| COLOURS[i])
}

pub(super) fn latency_plot(
    case: &str,
    runs: &BTreeMap<String, Outcome>,
    path: &Path,
) -> anyhow::Result<()> {
    let max = runs
        .values()
        .filter_map(|o| o.latency.as_ref())
        .map(|l| l.max_us)
        .fold(10.0f64, f64::max);
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{case}: end-to-end latency CDF"),
            ("sans-serif", 24),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((10f64..max * 1.5).log_scale(), 0f64..1.0)?;
    chart
        .configure_mesh()
        .x_desc("latency (µs, log scale)")
        .y_desc("fraction of messages ≤ x")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    for b in BROKERS {
        let Some(l) = runs.get(b).and_then(|o| o.latency.as_ref()) else {
            continue;
        };
        if l.count == 0 {
            continue;
        }
        let colour = broker_colour(b);
        let pts: Vec<(f64, f64)> = l.cdf.iter().map(|&(v, p)| (v.max(10.0), p)).collect();
        chart
            .draw_series(LineSeries::new(pts, colour.stroke_width(3)))?
            .label(format!("{b} (p99 {:.0} µs)", l.p99_us))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 18))
        .draw()?;
    root.present()?;
    Ok(())
}

/// Grouped bars, one group per case, one bar per broker, on a log axis.
fn bars(
    title: &str,
    y_desc: &str,
    groups: &[(String, Vec<(String, f64)>)],
    path: &Path,
) -> anyhow::Result<()> {
    let max = groups
        .iter()
        .flat_map(|(_, v)| v.iter().map(|(_, x)| *x))
        .fold(1.0f64, f64::max);
    let min = groups
        .iter()
        .flat_map(|(_, v)| v.iter().map(|(_, x)| *x))
        .filter(|x| *x > 0.0)
        .fold(max, f64::min);
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let n = groups.len().max(1) as f64;
    let labels: Vec<String> = groups.iter().map(|(g, _)| g.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..n, ((min / 2.0).max(0.1)..max * 3.0).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 {
                labels.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc(y_desc)
        .y_label_formatter(&|v| {
            if *v >= 1e6 {
                format!("{:.1}M", v / 1e6)
            } else if *v >= 1e3 {
                format!("{:.0}k", v / 1e3)
            } else {
                format!("{v:.0}")
            }
        })
        .label_style(("sans-serif", 16))
        .draw()?;
    let width = 0.8 / BROKERS.len() as f64;
    for (bi, b) in BROKERS.iter().enumerate() {
        let colour = broker_colour(b);
        let rects: Vec<_> = groups
            .iter()
            .enumerate()
            .filter_map(|(gi, (_, vals))| {
                vals.iter().find(|(name, _)| name == b).map(|(_, v)| {
                    let x0 = gi as f64 + 0.1 + bi as f64 * width;
                    Rectangle::new(
                        [(x0, (min / 2.0).max(0.1)), (x0 + width * 0.9, *v)],
                        colour.filled(),
                    )
                })
            })
            .collect();
        chart
            .draw_series(rects)?
            .label(*b)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 18))
        .draw()?;
    root.present()?;
    Ok(())
}

pub(super) fn throughput_plot(cases: &Cases, path: &Path) -> anyhow::Result<()> {
    let groups: Vec<(String, Vec<(String, f64)>)> = ordered(cases)
        .into_iter()
        .filter(|n| !n.starts_with("idle") && !n.starts_with("reconnect"))
        .map(|n| {
            let vals = cases[n]
                .iter()
                .filter(|(_, o)| o.throughput > 0.0)
                .map(|(b, o)| (b.clone(), o.throughput))
                .collect();
            (n.clone(), vals)
        })
        .collect();
    bars(
        "Delivered messages per second (log scale)",
        "deliveries/s",
        &groups,
        path,
    )
}

pub(super) fn memory_plot(cases: &Cases, path: &Path) -> anyhow::Result<()> {
    let groups: Vec<(String, Vec<(String, f64)>)> = ordered(cases)
        .into_iter()
        .filter(|n| n.starts_with("idle"))
        .map(|n| {
            let vals = cases[n]
                .iter()
                .filter_map(|(b, o)| o.bytes_per_connection.map(|v| (b.clone(), v.max(1.0))))
                .collect();
            (n.clone(), vals)
        })
        .collect();
    bars(
        "Broker RSS per idle subscribed connection (log scale)",
        "bytes per connection",
        &groups,
        path,
    )
}
