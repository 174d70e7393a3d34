//! A small SVG writer for the report's charts. Text is left to the browser to lay out
//! (`text-anchor`, the page's fonts), so Japanese labels measure right without font files.

use std::fmt::Write as _;

use super::html::escape;

/// Colours: one hue for counts, red for gaps, amber for silence everywhere.
pub const BLUE: &str = "#2b6cb0";
pub const RED: &str = "#c53030";
pub const AMBER: &str = "#d69e2e";
const GRID: &str = "#cbd5e0";
const INK: &str = "#1a202c";

/// An SVG drawing being built.
pub struct Svg {
    width: f64,
    height: f64,
    body: String,
}

impl Svg {
    /// An empty drawing of this size (CSS pixels; it scales to the page width).
    pub fn new(width: f64, height: f64) -> Svg {
        Svg { width, height, body: String::new() }
    }

    /// A filled rectangle, with a tooltip when `title` is not empty.
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, title: &str) {
        let _ =
            write!(self.body, r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{fill}""#);
        if title.is_empty() {
            self.body.push_str("/>");
        } else {
            let _ = write!(self.body, "><title>{}</title></rect>", escape(title));
        }
    }

    /// A circle (a dot of a scatter plot).
    pub fn dot(&mut self, x: f64, y: f64, r: f64, fill: &str) {
        let _ = write!(self.body, r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r:.1}" fill="{fill}"/>"#);
    }

    /// A thin line.
    pub fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, stroke: &str) {
        let _ = write!(
            self.body,
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{stroke}" stroke-width="1"/>"#
        );
    }

    /// Text anchored at `anchor` (start, middle, end).
    pub fn text(&mut self, x: f64, y: f64, anchor: &str, size: f64, text: &str) {
        let _ = write!(
            self.body,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" font-size="{size}" fill="{INK}">{}</text>"#,
            escape(text)
        );
    }

    /// The finished element, labelled for screen readers.
    pub fn finish(self, label: &str) -> String {
        format!(
            r#"<svg viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="{l}" class="chart">{b}</svg>"#,
            w = self.width,
            h = self.height,
            l = escape(label),
            b = self.body
        )
    }
}

/// Bars of `values` under `labels`; every label that fits is written, the rest kept as
/// tooltips. `fmt` writes an axis or tooltip value.
pub fn bars(labels: &[String], values: &[f64], fmt: &dyn Fn(f64) -> String, label: &str) -> String {
    let (w, h, left, bottom, top) = (900.0, 240.0, 70.0, 40.0, 10.0);
    let mut s = Svg::new(w, h);
    let max = values.iter().cloned().fold(0.0, f64::max).max(1.0);
    let n = values.len().max(1) as f64;
    let plot_w = w - left - 10.0;
    let plot_h = h - bottom - top;
    axis_y(&mut s, left, top, plot_w, plot_h, max, fmt);
    let step = plot_w / n;
    let every = (n / 24.0).ceil().max(1.0) as usize;
    for (i, (l, v)) in labels.iter().zip(values).enumerate() {
        let bh = v / max * plot_h;
        let x = left + i as f64 * step;
        s.rect(
            x + step * 0.1,
            top + plot_h - bh,
            (step * 0.8).max(0.5),
            bh,
            BLUE,
            &format!("{l}: {}", fmt(*v)),
        );
        if i % every == 0 {
            s.text(x + step / 2.0, h - bottom + 16.0, "middle", 10.0, l);
        }
    }
    s.finish(label)
}

fn axis_y(s: &mut Svg, left: f64, top: f64, plot_w: f64, plot_h: f64, max: f64, fmt: &dyn Fn(f64) -> String) {
    for k in 0..=4 {
        let y = top + plot_h - plot_h * k as f64 / 4.0;
        s.line(left, y, left + plot_w, y, GRID);
        s.text(left - 6.0, y + 4.0, "end", 10.0, &fmt(max * k as f64 / 4.0));
    }
}

/// Hour-of-week heatmap: `counts[dow][hour]`, Sunday first.
pub fn heatmap(counts: &[[u64; 24]; 7], weekdays: [&str; 7], label: &str) -> String {
    let (w, h, left, top) = (900.0, 230.0, 50.0, 20.0);
    let cell_w = (w - left - 10.0) / 24.0;
    let cell_h = (h - top - 10.0) / 7.0;
    let max = counts.iter().flatten().cloned().max().unwrap_or(0).max(1) as f64;
    let mut s = Svg::new(w, h);
    for hour in 0..24 {
        s.text(left + hour as f64 * cell_w + cell_w / 2.0, top - 6.0, "middle", 10.0, &format!("{hour}"));
    }
    for (d, row) in counts.iter().enumerate() {
        let y = top + d as f64 * cell_h;
        s.text(left - 8.0, y + cell_h / 2.0 + 4.0, "end", 11.0, weekdays[d]);
        for (hour, &c) in row.iter().enumerate() {
            let x = left + hour as f64 * cell_w;
            let fill = if c == 0 { "#f7fafc".to_string() } else { shade(c as f64 / max) };
            s.rect(
                x + 1.0,
                y + 1.0,
                cell_w - 2.0,
                cell_h - 2.0,
                &fill,
                &format!("{} {hour}:00 {c}", weekdays[d]),
            );
        }
    }
    s.finish(label)
}

/// A blue from pale (0) to full (1), on a square-root scale so small counts still show.
pub fn shade(frac: f64) -> String {
    let f = frac.clamp(0.0, 1.0).sqrt();
    let mix = |a: f64, b: f64| (a + (b - a) * (0.15 + 0.85 * f)).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(235.0, 43.0), mix(244.0, 108.0), mix(255.0, 176.0))
}

/// Dots at (x, y) with x and y in their own units; `x_label` writes the x ticks.
pub fn scatter(points: &[(f64, f64)], x_label: &dyn Fn(f64) -> String, label: &str) -> String {
    let (w, h, left, bottom, top) = (900.0, 260.0, 70.0, 40.0, 10.0);
    let mut s = Svg::new(w, h);
    let (x0, x1) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let ymax = points.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0);
    let plot_w = w - left - 10.0;
    let plot_h = h - bottom - top;
    axis_y(&mut s, left, top, plot_w, plot_h, ymax, &|v| format!("{v:.0}"));
    let span = (x1 - x0).max(1.0);
    for k in 0..=4 {
        let x = x0 + span * k as f64 / 4.0;
        s.text(left + plot_w * k as f64 / 4.0, h - bottom + 16.0, "middle", 10.0, &x_label(x));
    }
    for &(x, y) in points {
        s.dot(left + (x - x0) / span * plot_w, top + plot_h - y / ymax * plot_h, 2.0, BLUE);
    }
    s.finish(label)
}

/// One source's row in the coverage chart: a colour per hour column ("" for outside its span).
pub struct CoverageRow {
    pub label: String,
    pub cells: Vec<(String, String)>,
}

/// Sources down, hours across; `ticks` are (column, label) pairs for the top axis.
pub fn coverage(rows: &[CoverageRow], columns: usize, ticks: &[(usize, String)], label: &str) -> String {
    let left = 230.0;
    let w = 900.0;
    let row_h = 18.0;
    let top = 24.0;
    let h = top + row_h * rows.len() as f64 + 6.0;
    let cell_w = (w - left - 10.0) / columns.max(1) as f64;
    let mut s = Svg::new(w, h);
    for (col, text) in ticks {
        let x = left + *col as f64 * cell_w;
        s.line(x, top - 4.0, x, h - 4.0, GRID);
        s.text(x + 2.0, top - 8.0, "start", 10.0, text);
    }
    for (i, r) in rows.iter().enumerate() {
        let y = top + i as f64 * row_h;
        s.text(left - 6.0, y + row_h / 2.0 + 4.0, "end", 10.0, &r.label);
        for (c, (fill, title)) in r.cells.iter().enumerate() {
            if !fill.is_empty() {
                s.rect(left + c as f64 * cell_w, y + 2.0, cell_w.max(0.6), row_h - 4.0, fill, title);
            }
        }
    }
    s.finish(label)
}

/// Bytes as a short figure: 1.2 GB, 340 kB.
pub fn bytes(v: f64) -> String {
    let units = [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")];
    units.iter().find(|(u, _)| v >= *u).map_or(format!("{v:.0} B"), |(u, n)| format!("{:.1} {n}", v / u))
}

/// A count as a short figure.
pub fn count(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}
