//! Server-rendered SVG charts: weekly lines, weekly stacked bars, horizontal share bars and
//! histograms. Each has axis labels with units, a legend where there is more than one
//! series, and every data point carries a `<title>` (its value on hover) and the class
//! `point`. Weeks that had not ended are drawn as such (class `partial`, labelled "so
//! far"): a week counted for two days is not a drop.

use std::fmt::Write;

use chrono::NaiveDate;

use crate::html::esc;

const WIDTH: f64 = 720.0;
const PLOT_LEFT: f64 = 64.0;
const PLOT_RIGHT: f64 = 16.0;
const PLOT_TOP: f64 = 16.0;
const PLOT_HEIGHT: f64 = 220.0;
const LEGEND_ROW: f64 = 20.0;
const PALETTE: [&str; 10] = [
    "#1f6feb", "#2da44e", "#bf8700", "#cf222e", "#8250df", "#0a7ea4", "#e16f24", "#6e7781",
    "#bc4c00", "#1b7c83",
];

/// One line or one layer of a stack.
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) values: Vec<f64>,
}

/// What a chart is called and what its axes mean.
pub(crate) struct Labels<'a> {
    /// `data-chart` attribute, for tests and scripts.
    pub(crate) id: &'a str,
    pub(crate) x: &'a str,
    pub(crate) y: &'a str,
}

/// A line per series over weeks. The first `complete` weeks had ended; the rest (the week
/// in progress) are shaded, reached by a dashed segment, drawn hollow and labelled "so far".
pub(crate) fn weekly_lines(
    labels: &Labels,
    weeks: &[NaiveDate],
    complete: usize,
    series: &[Series],
) -> String {
    if weeks.is_empty() || series.is_empty() {
        return empty(labels);
    }
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0, f64::max);
    let mut svg = Frame::new(labels, series.len(), max);
    svg.week_axis(weeks);
    let complete = complete.min(weeks.len());
    if complete < weeks.len() {
        svg.so_far(complete, weeks.len());
    }
    for (index, line) in series.iter().enumerate() {
        let color = PALETTE[index % PALETTE.len()];
        let points: Vec<(f64, f64)> = line
            .values
            .iter()
            .enumerate()
            .map(|(i, value)| (svg.column_center(i, weeks.len()), svg.y(*value)))
            .collect();
        let ended = complete.min(points.len());
        svg.polyline(&points[..ended], color, "");
        if ended < points.len() {
            // From the last complete point on, so that the line stays unbroken.
            let dashed = " class=\"partial\" stroke-dasharray=\"5 4\"";
            svg.polyline(&points[ended.saturating_sub(1)..], color, dashed);
        }
        for (i, ((x, y), (week, value))) in points
            .iter()
            .zip(weeks.iter().zip(&line.values))
            .enumerate()
        {
            // A hollow point: the value of a week not over yet.
            let (class, paint, when) = if i < complete {
                ("point", format!("fill=\"{color}\""), "")
            } else {
                (
                    "point partial",
                    format!("fill=\"#fff\" stroke=\"{color}\" stroke-width=\"2\""),
                    " (so far)",
                )
            };
            let _ = write!(
                svg.body,
                "<circle class=\"{class}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" {paint}>\
                 <title>{}, week of {week}{when}: {}</title></circle>",
                esc(&line.name),
                number(*value)
            );
        }
    }
    svg.finish(series)
}

/// Stacked bars over weeks (e.g. clusters by version).
pub(crate) fn weekly_stacked(labels: &Labels, weeks: &[NaiveDate], series: &[Series]) -> String {
    if weeks.is_empty() || series.is_empty() {
        return empty(labels);
    }
    let totals: Vec<f64> = (0..weeks.len())
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().fold(0.0, f64::max);
    let mut svg = Frame::new(labels, series.len(), max);
    svg.week_axis(weeks);
    let width = (svg.plot_width() / weeks.len() as f64 * 0.8).max(1.0);
    for (i, week) in weeks.iter().enumerate() {
        let x = svg.column_center(i, weeks.len()) - width / 2.0;
        let mut below = 0.0;
        for (index, layer) in series.iter().enumerate() {
            let value = layer.values.get(i).copied().unwrap_or(0.0);
            if value <= 0.0 {
                continue;
            }
            let (top, bottom) = (svg.y(below + value), svg.y(below));
            below += value;
            let _ = write!(
                svg.body,
                "<rect class=\"point bar\" x=\"{x:.1}\" y=\"{top:.1}\" width=\"{width:.1}\" \
                 height=\"{:.1}\" fill=\"{}\"><title>{}, week of {week}: {} of {}</title></rect>",
                (bottom - top).max(0.5),
                PALETTE[index % PALETTE.len()],
                esc(&layer.name),
                number(value),
                number(totals[i]),
            );
        }
    }
    svg.finish(series)
}

/// One bar per category (a histogram over given buckets).
pub(crate) fn histogram(labels: &Labels, bars: &[(String, f64)]) -> String {
    if bars.is_empty() {
        return empty(labels);
    }
    let max = bars.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    let mut svg = Frame::new(labels, 0, max);
    let width = (svg.plot_width() / bars.len() as f64 * 0.8).max(1.0);
    let every = bars.len().div_ceil(8);
    let baseline = svg.y(0.0);
    for (i, (label, value)) in bars.iter().enumerate() {
        let center = svg.column_center(i, bars.len());
        let top = svg.y(*value);
        let _ = write!(
            svg.body,
            "<rect class=\"point bar\" x=\"{:.1}\" y=\"{top:.1}\" width=\"{width:.1}\" \
             height=\"{:.1}\" fill=\"{}\"><title>{}: {}</title></rect>",
            center - width / 2.0,
            (baseline - top).max(0.5),
            PALETTE[0],
            esc(label),
            number(*value)
        );
        if i % every == 0 {
            let _ = write!(
                svg.body,
                "<text x=\"{center:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                baseline + 14.0,
                esc(label)
            );
        }
    }
    svg.finish(&[])
}

/// Horizontal bars of shares (0 to 1), labelled on the left, e.g. OS or feature adoption.
pub(crate) fn share_bars(labels: &Labels, rows: &[(String, f64, u64)]) -> String {
    if rows.is_empty() {
        return empty(labels);
    }
    const ROW: f64 = 22.0;
    const LABEL_WIDTH: f64 = 200.0;
    const VALUE_WIDTH: f64 = 120.0;
    let bar_space = WIDTH - LABEL_WIDTH - VALUE_WIDTH;
    let height = ROW * rows.len() as f64 + 36.0;
    let mut body = String::new();
    for (i, (label, share, count)) in rows.iter().enumerate() {
        let y = 8.0 + ROW * i as f64;
        let width = (share.clamp(0.0, 1.0) * bar_space).max(1.0);
        let _ = write!(
            body,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect class=\"point bar\" x=\"{LABEL_WIDTH}\" y=\"{y:.1}\" width=\"{width:.1}\" \
             height=\"{:.1}\" fill=\"{}\"><title>{}: {} ({} {})</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            LABEL_WIDTH - 8.0,
            y + 13.0,
            esc(&shorten(label, 28)),
            ROW - 6.0,
            PALETTE[0],
            esc(label),
            percent(*share),
            number(*count as f64),
            esc(labels.x),
            LABEL_WIDTH + width + 6.0,
            y + 13.0,
            percent(*share),
        );
    }
    let _ = write!(
        body,
        "<text class=\"axis-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        LABEL_WIDTH + bar_space / 2.0,
        height - 8.0,
        esc(labels.y)
    );
    svg_element(labels, height, &body)
}

/// Axis frame shared by the vertical charts.
struct Frame<'a> {
    labels: &'a Labels<'a>,
    legend_rows: usize,
    top_value: f64,
    body: String,
}

impl<'a> Frame<'a> {
    fn new(labels: &'a Labels<'a>, series: usize, max: f64) -> Self {
        let (top_value, step) = nice_scale(max);
        let mut frame = Self {
            labels,
            legend_rows: if series > 1 { series.div_ceil(4) } else { 0 },
            top_value,
            body: String::new(),
        };
        let mut tick = 0.0;
        while tick <= top_value + step / 2.0 {
            let y = frame.y(tick);
            let _ = write!(
                frame.body,
                "<line class=\"grid-line\" x1=\"{PLOT_LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                WIDTH - PLOT_RIGHT,
                PLOT_LEFT - 6.0,
                y + 4.0,
                number(tick)
            );
            tick += step;
        }
        let _ = write!(
            frame.body,
            "<text class=\"axis-label\" transform=\"translate(14 {:.1}) rotate(-90)\" \
             text-anchor=\"middle\">{}</text>\
             <text class=\"axis-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            PLOT_TOP + PLOT_HEIGHT / 2.0,
            esc(labels.y),
            PLOT_LEFT + frame.plot_width() / 2.0,
            PLOT_TOP + PLOT_HEIGHT + 36.0,
            esc(labels.x)
        );
        frame
    }

    fn plot_width(&self) -> f64 {
        WIDTH - PLOT_LEFT - PLOT_RIGHT
    }

    fn y(&self, value: f64) -> f64 {
        PLOT_TOP + PLOT_HEIGHT - value / self.top_value * PLOT_HEIGHT
    }

    fn column_center(&self, index: usize, columns: usize) -> f64 {
        PLOT_LEFT + self.plot_width() * (index as f64 + 0.5) / columns as f64
    }

    fn polyline(&mut self, points: &[(f64, f64)], color: &str, attributes: &str) {
        if points.is_empty() {
            return;
        }
        let path: String = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1} "))
            .collect();
        let _ = write!(
            self.body,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{attributes} \
             points=\"{path}\"/>"
        );
    }

    /// Shades the columns from `first` on (weeks not over yet), labelled "so far" above the
    /// plot, where no line can cover the label.
    fn so_far(&mut self, first: usize, columns: usize) {
        let column = self.plot_width() / columns as f64;
        let left = PLOT_LEFT + column * first as f64;
        let right = WIDTH - PLOT_RIGHT;
        let _ = write!(
            self.body,
            "<g class=\"partial-week\"><rect x=\"{left:.1}\" y=\"{PLOT_TOP}\" width=\"{:.1}\" \
             height=\"{PLOT_HEIGHT}\"/><text x=\"{right:.1}\" y=\"{:.1}\" text-anchor=\"end\">\
             so far</text><title>The week in progress: counted so far, not a full week</title></g>",
            right - left,
            PLOT_TOP - 4.0,
        );
    }

    /// About eight dates under the plot.
    fn week_axis(&mut self, weeks: &[NaiveDate]) {
        let every = weeks.len().div_ceil(8);
        for (i, week) in weeks.iter().enumerate().filter(|(i, _)| i % every == 0) {
            let _ = write!(
                self.body,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                self.column_center(i, weeks.len()),
                PLOT_TOP + PLOT_HEIGHT + 16.0,
                week.format("%b %d, %y")
            );
        }
    }

    fn finish(mut self, series: &[Series]) -> String {
        let legend_top = PLOT_TOP + PLOT_HEIGHT + 52.0;
        for (index, item) in series.iter().enumerate().filter(|_| self.legend_rows > 0) {
            let x = PLOT_LEFT + (index % 4) as f64 * 160.0;
            let y = legend_top + (index / 4) as f64 * LEGEND_ROW;
            let _ = write!(
                self.body,
                "<g class=\"legend\"><rect x=\"{x:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" \
                 fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
                y - 10.0,
                PALETTE[index % PALETTE.len()],
                x + 18.0,
                y,
                esc(&shorten(&item.name, 22))
            );
        }
        let height = legend_top + self.legend_rows as f64 * LEGEND_ROW;
        svg_element(self.labels, height, &self.body)
    }
}

fn svg_element(labels: &Labels, height: f64, body: &str) -> String {
    format!(
        "<svg class=\"chart\" data-chart=\"{id}\" role=\"img\" aria-label=\"{y} by {x}\" \
         viewBox=\"0 0 {WIDTH} {height:.0}\" xmlns=\"http://www.w3.org/2000/svg\">{body}</svg>",
        id = esc(labels.id),
        y = esc(labels.y),
        x = esc(labels.x),
    )
}

fn empty(labels: &Labels) -> String {
    format!(
        "<p class=\"empty\" data-chart=\"{}\">No reports match these filters in this range.</p>",
        esc(labels.id)
    )
}

/// A round top for the axis and its tick step (about five ticks).
fn nice_scale(max: f64) -> (f64, f64) {
    if !max.is_finite() || max <= 0.0 {
        return (1.0, 0.25);
    }
    let rough = max / 5.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= rough)
        .unwrap_or(10.0 * magnitude);
    ((max / step).ceil() * step, step)
}

/// Compact numbers for axes and tooltips: 950, 1.2k, 3.4M; fractions keep two digits,
/// and those under 0.1 two significant ones (the smallest workload buckets are 0.001
/// wide: with two decimals their bounds all read "0.00").
pub(crate) fn number(value: f64) -> String {
    let abs = value.abs();
    if abs >= 1e9 {
        format!("{:.1}G", value / 1e9)
    } else if abs >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if abs >= 1e4 {
        format!("{:.1}k", value / 1e3)
    } else if value.fract() == 0.0 {
        format!("{value:.0}")
    } else if abs >= 10.0 {
        format!("{value:.1}")
    } else if abs >= 0.1 {
        format!("{value:.2}")
    } else {
        let decimals = (1 - abs.log10().floor() as i32) as usize;
        let digits = format!("{value:.decimals$}");
        digits.trim_end_matches('0').to_owned()
    }
}

pub(crate) fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// Memory sizes on axes: 512 MiB, 16 GiB.
pub(crate) fn bytes(value: u64) -> String {
    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    if value >= GIB {
        format!("{} GiB", number(value as f64 / GIB as f64))
    } else {
        format!("{} MiB", number(value as f64 / MIB as f64))
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let kept: String = text.chars().take(max - 1).collect();
        format!("{kept}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_are_round() {
        assert_eq!(nice_scale(0.0), (1.0, 0.25));
        assert_eq!(nice_scale(97.0), (100.0, 20.0));
        assert_eq!(nice_scale(1234.0), (1250.0, 250.0));
        assert_eq!(nice_scale(7.0), (8.0, 2.0));
    }

    #[test]
    fn numbers_are_compact() {
        assert_eq!(number(950.0), "950");
        assert_eq!(number(12_345.0), "12.3k");
        assert_eq!(number(2_500_000.0), "2.5M");
        assert_eq!(number(0.126), "0.13");
        assert_eq!(number(0.5), "0.50");
        assert_eq!(number(0.001), "0.001");
        assert_eq!(number(0.0012), "0.0012");
        assert_eq!(number(0.008), "0.008");
        assert_eq!(number(0.01), "0.01");
        assert_eq!(number(0.015), "0.015");
        assert_eq!(number(-0.025), "-0.025");
        assert_eq!(bytes(16 << 30), "16 GiB");
        assert_eq!(bytes(512 << 20), "512 MiB");
    }

    const LABELS: Labels<'static> = Labels {
        id: "t",
        x: "Week",
        y: "Clusters",
    };

    /// `n` weeks from Monday 5 January 2026.
    fn mondays(n: u64) -> Vec<NaiveDate> {
        let first = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        (0..n).map(|i| first + chrono::Days::new(7 * i)).collect()
    }

    #[test]
    fn every_data_point_has_a_hover_title() {
        let (weeks, labels) = (mondays(2), LABELS);
        let series = [
            Series {
                name: "a<b".into(),
                values: vec![1.0, 2.0],
            },
            Series {
                name: "c".into(),
                values: vec![3.0, 0.0],
            },
        ];
        let svg = weekly_lines(&labels, &weeks, 2, &series);
        assert_eq!(svg.matches("class=\"point\"").count(), 4);
        assert!(
            svg.contains("<title>a&lt;b, week of 2026-01-12: 2</title>"),
            "{svg}"
        );
        assert!(svg.contains("class=\"legend\""), "two series get a legend");
        let stacked = weekly_stacked(&labels, &weeks, &series);
        assert!(
            stacked.contains("<title>a&lt;b, week of 2026-01-05: 1 of 4</title>"),
            "{stacked}"
        );
        assert_eq!(
            stacked.matches("class=\"point bar\"").count(),
            3,
            "zero layers are not drawn"
        );
    }

    #[test]
    fn the_week_in_progress_is_drawn_as_so_far() {
        let (weeks, labels) = (mondays(3), LABELS);
        let series = [Series {
            name: "Clusters".into(),
            values: vec![10.0, 20.0, 2.0],
        }];
        let svg = weekly_lines(&labels, &weeks, 2, &series);
        let points: Vec<&str> = svg.split("<circle ").skip(1).collect();
        assert_eq!(points.len(), 3);
        assert!(points[1].starts_with("class=\"point\""), "{svg}");
        assert!(
            points[2].starts_with("class=\"point partial\"") && points[2].contains("fill=\"#fff\""),
            "the last point is hollow: {svg}"
        );
        assert!(
            points[2].contains("week of 2026-01-19 (so far): 2"),
            "{svg}"
        );
        assert_eq!(svg.matches("stroke-dasharray").count(), 1, "{svg}");
        assert!(svg.contains(">so far</text>"), "{svg}");
        let ended = weekly_lines(&labels, &weeks, 3, &series);
        assert!(
            !ended.contains("partial") && !ended.contains("so far"),
            "{ended}"
        );
    }
}
