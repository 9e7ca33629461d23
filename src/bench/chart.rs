//! SVG charts of `zkfle bench election` results: the bar chart of medians
//! per scenario and size, and the growth chart (latency against N).

use std::fmt::Write as _;

use super::election::{Implementation, SizeResult, Summary};

/// A grouped bar chart (SVG) of the median figures: one group per scenario
/// and ensemble size, one bar per implementation, on a log scale because
/// Java's cold start (JVM boot included) and zkfle's differ by orders of
/// magnitude. Whiskers show min and max.
pub fn svg_chart(results: &[SizeResult]) -> String {
    struct Bar {
        label: String,
        implementation: Implementation,
        summary: Summary,
    }
    let mut groups: Vec<(String, Vec<Bar>)> = Vec::new();
    // Sizes in order, voters then observers.
    let mut sizes: Vec<(usize, usize)> = results.iter().map(|r| (r.n, r.observers)).collect();
    sizes.sort_unstable();
    sizes.dedup();
    for scenario in ["cold", "failover", "hung"] {
        for &(n, observers) in &sizes {
            let mut label = String::new();
            let bars: Vec<Bar> = results
                .iter()
                .filter(|r| (r.n, r.observers) == (n, observers))
                .filter_map(|r| {
                    label = r.label();
                    let v = match scenario {
                        "cold" => &r.cold_ms,
                        "failover" => &r.failover_ms,
                        _ => &r.hung_ms,
                    };
                    Summary::of(v).map(|summary| Bar {
                        label: format!("{:.0}", summary.median),
                        implementation: r.implementation,
                        summary,
                    })
                })
                .collect();
            if !bars.is_empty() {
                groups.push((format!("{scenario} {label}"), bars));
            }
        }
    }
    let (w, h, left, bottom, top) = (
        120.0 * groups.len().max(1) as f64 + 80.0,
        360.0,
        60.0,
        60.0,
        30.0,
    );
    let plot_h = h - bottom - top;
    let (lo, hi) = (0.0f64, 4.0f64); // 1 ms .. 10 s
    let y =
        |ms: f64| top + plot_h * (1.0 - ((ms.max(1.0).log10() - lo) / (hi - lo)).clamp(0.0, 1.0));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    let _ = writeln!(s, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let _ = writeln!(
        s,
        "<text x=\"{left}\" y=\"18\" font-size=\"13\">Election latency, median ms (log scale; whiskers: min-max)</text>"
    );
    for (ms, label) in [
        (1.0, "1"),
        (10.0, "10"),
        (100.0, "100"),
        (1000.0, "1 s"),
        (10000.0, "10 s"),
    ] {
        let yy = y(ms);
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" x2=\"{:.0}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/><text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
            w - 10.0,
            left - 6.0,
            yy + 4.0
        );
    }
    for (gi, (name, bars)) in groups.iter().enumerate() {
        let gx = left + 10.0 + gi as f64 * 120.0;
        for (bi, b) in bars.iter().enumerate() {
            let x = gx + bi as f64 * 48.0;
            let color = match b.implementation {
                Implementation::Zkfle => "#2b7bb9",
                Implementation::Java => "#d9822b",
            };
            let (y_med, y_min, y_max) = (y(b.summary.median), y(b.summary.min), y(b.summary.max));
            let base = top + plot_h;
            let _ = writeln!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y_med:.1}\" width=\"40\" height=\"{:.1}\" fill=\"{color}\"/>",
                (base - y_med).max(0.0)
            );
            let _ = writeln!(
                s,
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{y_min:.1}\" y2=\"{y_max:.1}\" stroke=\"black\"/>",
                x + 20.0
            );
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x + 20.0,
                y_max - 4.0,
                b.label
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{name}</text>",
            gx + 44.0,
            top + plot_h + 18.0
        );
    }
    let ly = h - 14.0;
    let _ = writeln!(
        s,
        "<rect x=\"{left}\" y=\"{:.0}\" width=\"12\" height=\"12\" fill=\"#2b7bb9\"/><text x=\"{:.0}\" y=\"{ly:.0}\">zkfle</text>",
        ly - 10.0,
        left + 16.0
    );
    let _ = writeln!(
        s,
        "<rect x=\"{:.0}\" y=\"{:.0}\" width=\"12\" height=\"12\" fill=\"#d9822b\"/><text x=\"{:.0}\" y=\"{ly:.0}\">Java ZooKeeper 3.8</text>",
        left + 70.0,
        ly - 10.0,
        left + 86.0
    );
    s.push_str("</svg>\n");
    s
}

/// One line of the growth chart.
struct Series<'a> {
    implementation: Implementation,
    scenario: &'static str,
    points: Vec<(usize, Summary)>,
    color: &'a str,
    dash: &'a str,
}

/// The growth chart (SVG): cold start and failover medians against the
/// number of voters, one line per implementation and scenario, whiskers
/// from min to max, log time axis (Java's figures are seconds, zkfle's
/// milliseconds). Ensembles with observers are left out: their x would be
/// ambiguous. `targets` draws dotted horizontal lines (ms, label).
pub fn growth_chart(results: &[SizeResult], targets: &[(f64, &str)]) -> String {
    let mut series: Vec<Series> = Vec::new();
    for imp in [Implementation::Zkfle, Implementation::Java] {
        for scenario in ["cold", "failover"] {
            let mut points: Vec<(usize, Summary)> = results
                .iter()
                .filter(|r| r.implementation == imp && r.observers == 0)
                .filter_map(|r| {
                    let v = if scenario == "cold" {
                        &r.cold_ms
                    } else {
                        &r.failover_ms
                    };
                    Summary::of(v).map(|s| (r.n, s))
                })
                .collect();
            points.sort_by_key(|p| p.0);
            if points.is_empty() {
                continue;
            }
            series.push(Series {
                implementation: imp,
                scenario,
                points,
                color: match imp {
                    Implementation::Zkfle => "#2b7bb9",
                    Implementation::Java => "#d9822b",
                },
                dash: if scenario == "cold" { "" } else { "6,4" },
            });
        }
    }
    let max_n = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .max()
        .unwrap_or(3)
        .max(3);
    let all_ms: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().flat_map(|p| [p.1.min, p.1.max]))
        .chain(targets.iter().map(|t| t.0))
        .collect();
    // Decades that hold every figure.
    let lo = all_ms
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min)
        .max(0.1)
        .log10()
        .floor()
        .min(1.0);
    let hi = all_ms
        .iter()
        .cloned()
        .fold(1.0, f64::max)
        .log10()
        .ceil()
        .max(lo + 1.0);
    let (w, h, left, right, top, bottom) = (720.0, 420.0, 70.0, 170.0, 40.0, 50.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let x = |n: f64| left + pw * (n / max_n as f64);
    let y = |ms: f64| top + ph * (1.0 - ((ms.max(1e-3).log10() - lo) / (hi - lo)).clamp(0.0, 1.0));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    let _ = writeln!(s, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let _ = writeln!(
        s,
        "<text x=\"{left}\" y=\"20\" font-size=\"13\">Election latency against ensemble size (median ms, log scale; whiskers: min-max)</text>"
    );
    // Time grid: 1, 2, 5 per decade.
    let mut decade = lo;
    while decade < hi + 0.001 {
        for m in [1.0, 2.0, 5.0] {
            let ms = 10f64.powf(decade) * m;
            if ms.log10() > hi + 1e-9 {
                break;
            }
            let yy = y(ms);
            let text = if ms >= 1000.0 {
                format!("{} s", ms / 1000.0)
            } else {
                format!("{ms}")
            };
            let stroke = if m == 1.0 { "#ccc" } else { "#eee" };
            let _ = writeln!(
                s,
                "<line x1=\"{left}\" x2=\"{:.0}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"{stroke}\"/><text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\">{text}</text>",
                left + pw,
                left - 6.0,
                yy + 4.0
            );
        }
        decade += 1.0;
    }
    // N axis: every size that has a figure.
    let mut ns: Vec<usize> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    ns.sort_unstable();
    ns.dedup();
    for n in &ns {
        let xx = x(*n as f64);
        let _ = writeln!(
            s,
            "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{:.0}\" y2=\"{:.0}\" stroke=\"#999\"/><text x=\"{xx:.1}\" y=\"{:.0}\" text-anchor=\"middle\">{n}</text>",
            top + ph,
            top + ph + 4.0,
            top + ph + 16.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"middle\">N (voters)</text>",
        left + pw / 2.0,
        h - 12.0
    );
    for (ms, label) in targets {
        let yy = y(*ms);
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" x2=\"{:.0}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#c00\" stroke-dasharray=\"2,3\"/><text x=\"{:.0}\" y=\"{:.1}\" fill=\"#c00\">{label}</text>",
            left + pw,
            left + pw + 4.0,
            yy + 4.0
        );
    }
    for (k, se) in series.iter().enumerate() {
        let path: Vec<String> = se
            .points
            .iter()
            .map(|(n, sm)| format!("{:.1},{:.1}", x(*n as f64), y(sm.median)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" stroke-dasharray=\"{}\"/>",
            path.join(" "),
            se.color,
            se.dash
        );
        for (n, sm) in &se.points {
            let xx = x(*n as f64);
            let _ = writeln!(
                s,
                "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\"/><circle cx=\"{xx:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"><title>{} {} N={n}: {:.1} ms (min {:.1}, max {:.1})</title></circle>",
                y(sm.min),
                y(sm.max),
                se.color,
                y(sm.median),
                se.color,
                se.implementation,
                se.scenario,
                sm.median,
                sm.min,
                sm.max
            );
        }
        // Legend.
        let ly = top + 14.0 + 18.0 * k as f64;
        let lx = left + pw + 10.0;
        let name = match se.implementation {
            Implementation::Zkfle => "zkfle",
            Implementation::Java => "Java 3.8",
        };
        let _ = writeln!(
            s,
            "<line x1=\"{lx:.0}\" x2=\"{:.0}\" y1=\"{ly:.0}\" y2=\"{ly:.0}\" stroke=\"{}\" stroke-width=\"2\" stroke-dasharray=\"{}\"/><text x=\"{:.0}\" y=\"{:.0}\">{name} {}</text>",
            lx + 28.0,
            se.color,
            se.dash,
            lx + 34.0,
            ly + 4.0,
            se.scenario
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod chart_tests {
    use super::*;

    #[test]
    fn chart_has_one_bar_per_implementation_and_figure() {
        let r = |implementation, cold: f64, failover: f64| {
            let mut r = SizeResult::new(implementation, 3, 0);
            r.cold_ms = vec![cold];
            r.failover_ms = vec![failover];
            r
        };
        let svg = svg_chart(&[
            r(Implementation::Zkfle, 40.0, 30.0),
            r(Implementation::Java, 2300.0, 400.0),
        ]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(
            !svg.contains(">hung N=3<"),
            "no hung bars without hung data"
        );
        assert_eq!(
            svg.matches("width=\"40\"").count(),
            4,
            "two scenarios x two implementations"
        );
        for label in [
            ">40<",
            ">2300<",
            ">30<",
            ">400<",
            ">cold N=3<",
            ">failover N=3<",
        ] {
            assert!(svg.contains(label), "missing {label}");
        }
        // A hung scenario gets its own bars with its own figures.
        let mut hung = r(Implementation::Zkfle, 40.0, 30.0);
        hung.hung_ms = vec![1015.0];
        let svg = svg_chart(&[hung]);
        assert!(svg.contains(">hung N=3<") && svg.contains(">1015<"));
    }

    #[test]
    fn growth_chart_draws_one_line_per_implementation_and_scenario() {
        let r = |implementation, n, cold: f64, failover: f64| {
            let mut r = SizeResult::new(implementation, n, 0);
            r.cold_ms = vec![cold, cold * 2.0];
            r.failover_ms = vec![failover];
            r
        };
        let mut with_observers = r(Implementation::Zkfle, 7, 99.0, 99.0);
        with_observers.observers = 50;
        let svg = growth_chart(
            &[
                r(Implementation::Zkfle, 3, 20.0, 12.0),
                r(Implementation::Zkfle, 51, 250.0, 40.0),
                r(Implementation::Java, 3, 2000.0, 400.0),
                with_observers,
            ],
            &[(300.0, "target 300 ms")],
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 4, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 6, "observers are left out");
        for t in [
            "zkfle cold N=51: 375.0 ms (min 250.0, max 500.0)",
            "java failover N=3: 400.0 ms",
            ">target 300 ms<",
            ">51</text>",
        ] {
            assert!(svg.contains(t), "missing {t}");
        }
    }
}
