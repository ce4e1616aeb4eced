//! Plots drawn with plotters' bitmap backend: time series (distances, free energy) and
//! heatmaps of real-valued densities (reference, particle | reference | difference panels)
//! with axes in data coordinates and a colour bar.
//!
//! Text uses DejaVu Sans compiled into the binary (assets/fonts, Bitstream Vera licence) and
//! rasterised by ab_glyph, never a system font, so a picture is the same bytes on every
//! machine. Picture sizes are fixed, independent of the data.

use crate::error::{Error, Result};
use crate::scenario::{HistogramSpec, Scale};
use colorous::Gradient;
use image::RgbImage;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use std::sync::Once;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "fokker-sans";

fn font(size: u32) -> TextStyle<'static> {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // The bundled file is a valid TrueType font; a failure would show as missing text.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
    (FAMILY, size).into_font().color(&RGBColor(34, 34, 34))
}

fn plot_error(e: impl std::fmt::Display) -> Error {
    Error::Output(format!("cannot draw a plot: {e}"))
}

/// Renders into an RGB buffer of `w` x `h` pixels.
fn render(
    w: u32,
    h: u32,
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
) -> Result<RgbImage> {
    render_with(w, h, draw).map(|(image, ())| image)
}

/// [`render`], also returning what `draw` returns.
fn render_with<T>(
    w: u32,
    h: u32,
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<T>,
) -> Result<(RgbImage, T)> {
    let mut buf = vec![255u8; (w * h * 3) as usize];
    let drawn = {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let drawn = draw(&root)?;
        root.present().map_err(plot_error)?;
        drawn
    };
    let image = RgbImage::from_raw(w, h, buf).ok_or_else(|| plot_error("buffer size"))?;
    Ok((image, drawn))
}

/// One line of a time-series plot.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
}

/// Line colours, in order (colour-blind friendly, Okabe–Ito).
const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
];

/// A line chart of `series` against x, with a legend; `log_y` plots log10 of positive values
/// (non-positive points are left out).
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
) -> Result<RgbImage> {
    line_chart_axes(title, x_label, y_label, series, false, log_y)
}

/// [`line_chart`] with a choice of logarithmic axes (points with a non-positive coordinate
/// on a log axis are left out).
pub fn line_chart_axes(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_x: bool,
    log_y: bool,
) -> Result<RgbImage> {
    line_chart_pixels(title, x_label, y_label, series, log_x, log_y).map(|(image, _)| image)
}

/// Per series, the pixel each of its points was drawn at.
pub type Pixels = Vec<Vec<(i32, i32)>>;

/// [`line_chart_axes`], also returning where each series' points were drawn (pixels).
pub fn line_chart_pixels(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_x: bool,
    log_y: bool,
) -> Result<(RgbImage, Pixels)> {
    let keep = |v: f64, log: bool| v.is_finite() && (!log || v > 0.0);
    let kept: Vec<Series> = series
        .iter()
        .map(|s| Series {
            points: s
                .points
                .iter()
                .copied()
                .filter(|p| keep(p.0, log_x) && keep(p.1, log_y))
                .collect(),
            ..s.clone()
        })
        .collect();
    let bounds = |pick: fn(&(f64, f64)) -> f64, log: bool| {
        let (lo, hi) = kept
            .iter()
            .flat_map(|s| s.points.iter())
            .map(pick)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        if !lo.is_finite() {
            return if log { (0.1, 1.0) } else { (0.0, 1.0) };
        }
        if log {
            (lo / 1.5, hi * 1.5)
        } else if hi > lo {
            let pad = 0.05 * (hi - lo);
            (lo - pad, hi + pad)
        } else {
            (lo - 0.5, hi + 0.5)
        }
    };
    let (x0, x1) = bounds(|p| p.0, log_x);
    let (x0, x1) = if log_x || kept.iter().all(|s| s.points.len() < 2) {
        (x0, x1)
    } else {
        // No padding along x for time series: the lines start and end at the frame.
        let (lo, hi) = kept
            .iter()
            .flat_map(|s| s.points.iter())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p.0), b.max(p.0))
            });
        if hi > lo { (lo, hi) } else { (x0, x1) }
    };
    let (y0, y1) = bounds(|p| p.1, log_y);
    let args = (title, x_label, y_label, kept.as_slice());
    render_with(900, 560, |root| match (log_x, log_y) {
        (false, false) => chart_lines(root, args, x0..x1, y0..y1),
        (false, true) => chart_lines(root, args, x0..x1, (y0..y1).log_scale()),
        (true, false) => chart_lines(root, args, (x0..x1).log_scale(), y0..y1),
        (true, true) => chart_lines(root, args, (x0..x1).log_scale(), (y0..y1).log_scale()),
    })
}

type ChartText<'a> = (&'a str, &'a str, &'a str, &'a [Series]);

fn chart_lines<X, Y>(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    (title, x_label, y_label, series): ChartText<'_>,
    x: X,
    y: Y,
) -> Result<Pixels>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(root)
        .caption(title, font(22))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x, y)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(236, 236, 236))
        .bold_line_style(RGBColor(210, 210, 210))
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(font(15))
        .axis_desc_style(font(17))
        .y_label_formatter(&|v| short_number(*v))
        .x_label_formatter(&|v| short_number(*v))
        .draw()
        .map_err(plot_error)?;
    let mut pixels = Vec::with_capacity(series.len());
    for (k, s) in series.iter().enumerate() {
        let colour = PALETTE[k % PALETTE.len()];
        let style = colour.stroke_width(2);
        let points: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        // A marker at every point as well as the line, so that a short series (one point is
        // a line of no length) still shows; the legend shows both. Where points lie closer
        // than two marker widths apart on average (a profile over many bins) the markers
        // would merge into a thick line and hide its shape, so such a series is a line only.
        let width = chart.plotting_area().dim_in_pixel().0 as usize;
        let marked = points.len() * 4 * MARKER_RADIUS as usize <= width;
        let radius = if marked { MARKER_RADIUS } else { 0 };
        let legend = move |(x, y): (i32, i32)| {
            EmptyElement::at((x, y))
                + PathElement::new(vec![(0, 0), (24, 0)], style)
                + Circle::new((12, 0), radius, colour.filled())
        };
        pixels.push(points.iter().map(|&p| chart.backend_coord(&p)).collect());
        let markers: Vec<_> = points
            .iter()
            .filter(|_| marked)
            .map(|&p| Circle::new(p, MARKER_RADIUS, colour.filled()))
            .collect();
        if s.dashed {
            chart
                .draw_series(DashedLineSeries::new(points.clone(), 8, 5, style))
                .map_err(plot_error)?
                .label(s.name.as_str())
                .legend(legend);
        } else {
            chart
                .draw_series(LineSeries::new(points.clone(), style))
                .map_err(plot_error)?
                .label(s.name.as_str())
                .legend(legend);
        }
        chart.draw_series(markers).map_err(plot_error)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .label_font(font(15))
        .draw()
        .map_err(plot_error)?;
    Ok(pixels)
}

/// Radius in pixels of the markers on every line chart's points.
const MARKER_RADIUS: i32 = 3;

/// Paths of traced particles in the plane (or coordinate against time), over fixed `x` and
/// `y` ranges: one colour per path, a hollow circle where it starts and a filled one where it
/// ends.
pub fn path_chart(
    title: &str,
    labels: (&str, &str),
    paths: &[Vec<(f64, f64)>],
    x: [f64; 2],
    y: [f64; 2],
) -> Result<RgbImage> {
    render(760, 720, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, font(20))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(x[0]..x[1], y[0]..y[1])
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(236, 236, 236))
            .bold_line_style(RGBColor(210, 210, 210))
            .x_desc(labels.0)
            .y_desc(labels.1)
            .label_style(font(15))
            .axis_desc_style(font(17))
            .y_label_formatter(&|v| short_number(*v))
            .x_label_formatter(&|v| short_number(*v))
            .draw()
            .map_err(plot_error)?;
        for (k, path) in paths.iter().enumerate() {
            let colour = PALETTE[k % PALETTE.len()];
            let points: Vec<(f64, f64)> = path
                .iter()
                .copied()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map_err(plot_error)?;
            if let (Some(&first), Some(&last)) = (points.first(), points.last()) {
                chart
                    .draw_series([
                        Circle::new(first, 5, colour.stroke_width(2)),
                        Circle::new(last, 5, colour.filled()),
                    ])
                    .map_err(plot_error)?;
            }
        }
        Ok(())
    })
}

/// A tick label: up to 4 significant digits, exponent form for very large or small values.
fn short_number(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.1e}");
        return s.replace(".0e", "e");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// How values map to colours.
#[derive(Debug, Clone, Copy)]
enum ColourScale {
    Linear {
        lo: f64,
        hi: f64,
    },
    /// Values <= 0 are empty (white).
    Log {
        lo: f64,
        hi: f64,
    },
    /// Symmetric about 0, blue (negative) to red (positive).
    Diverging {
        limit: f64,
    },
}

impl ColourScale {
    fn for_values(values: &[&[f64]], scale: Scale) -> ColourScale {
        let hi = values
            .iter()
            .flat_map(|v| v.iter())
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        let hi = if hi > 0.0 { hi } else { 1.0 };
        match scale {
            Scale::Linear => ColourScale::Linear { lo: 0.0, hi },
            Scale::Log => {
                let min_positive = values
                    .iter()
                    .flat_map(|v| v.iter())
                    .copied()
                    .filter(|&v| v > 0.0)
                    .fold(hi, f64::min);
                // Six decades at most: below that a colour bar says nothing.
                let lo = min_positive.max(hi * 1e-6);
                let lo = if lo < hi { lo } else { hi / 10.0 };
                ColourScale::Log { lo, hi }
            }
        }
    }

    /// Position in [0, 1] of v, None for "empty".
    fn position(self, v: f64) -> Option<f64> {
        if !v.is_finite() {
            return None;
        }
        let s = match self {
            ColourScale::Linear { lo, hi } => (v - lo) / (hi - lo),
            ColourScale::Log { lo, hi } => {
                if v <= 0.0 {
                    return None;
                }
                (v / lo).ln() / (hi / lo).ln()
            }
            // colorous' RED_BLUE runs red -> blue: positive (more particles) in red.
            ColourScale::Diverging { limit } => 0.5 - 0.5 * v / limit,
        };
        Some(s.clamp(0.0, 1.0))
    }

    fn range(self) -> (f64, f64) {
        match self {
            ColourScale::Linear { lo, hi } | ColourScale::Log { lo, hi } => (lo, hi),
            ColourScale::Diverging { limit } => (-limit, limit),
        }
    }
}

fn colour_at(gradient: Gradient, scale: ColourScale, v: f64) -> RGBColor {
    match scale.position(v) {
        Some(s) => {
            let c = gradient.eval_continuous(s);
            RGBColor(c.r, c.g, c.b)
        }
        None => WHITE,
    }
}

/// Draws one heatmap (2D) with its colour bar into `area`.
#[allow(clippy::too_many_arguments)]
fn heatmap_panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    values: &[f64],
    spec: &HistogramSpec,
    gradient: Gradient,
    scale: ColourScale,
    title: &str,
    names: &[String],
    bar_label: &str,
) -> Result<()> {
    let (w, _) = area.dim_in_pixel();
    let (plot, bar) = area.split_horizontally(w.saturating_sub(120));
    let [x0, x1] = spec.range[0];
    let [y0, y1] = spec.range[1];
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, font(18))
        .margin(10)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(names[0].as_str())
        .y_desc(names[1].as_str())
        .label_style(font(14))
        .axis_desc_style(font(16))
        .x_label_formatter(&|v| short_number(*v))
        .y_label_formatter(&|v| short_number(*v))
        .draw()
        .map_err(plot_error)?;
    // A colour per distinct value, evaluated once: the cells of a histogram of counts
    // share few values (small integers), and the gradient's spline and the log scale were
    // a third of a snapshot heatmap's time.
    let mut memo: std::collections::HashMap<u64, RGBColor> = Default::default();
    let colours: Vec<RGBColor> = values
        .iter()
        .map(|&v| {
            *memo
                .entry(v.to_bits())
                .or_insert_with(|| colour_at(gradient, scale, v))
        })
        .collect();
    draw_cells(&chart, &plot, spec, &colours)?;
    let (lo, hi) = scale.range();
    match scale {
        ColourScale::Log { .. } => {
            colour_bar(&bar, gradient, scale, (lo..hi).log_scale(), bar_label)
        }
        _ => colour_bar(&bar, gradient, scale, lo..hi, bar_label),
    }
}

/// The chart a 2D density is drawn on.
type DensityChart<'a, 'b> = ChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// Fills the histogram's cells (numpy order, `colours[i * bins[1] + j]`) into `chart`, drawn
/// on `plot`. One bitmap, drawn at once, pixel for pixel what drawing each cell as a filled
/// `Rectangle` gives (its corners mapped by the chart, the pixels [min, max) between them,
/// later cells over earlier ones, on the white of the plotting area), without plotters'
/// work per element: a third of a snapshot heatmap's time before. The chart maps x and y
/// apart, so each cell's corners come from its column's and its row's.
fn draw_cells(
    chart: &DensityChart<'_, '_>,
    plot: &DrawingArea<BitMapBackend<'_>, Shift>,
    spec: &HistogramSpec,
    colours: &[RGBColor],
) -> Result<()> {
    let [x0, x1] = spec.range[0];
    let [y0, y1] = spec.range[1];
    let (n0, n1) = (spec.bins[0] as usize, spec.bins[1] as usize);
    let (dx, dy) = ((x1 - x0) / n0 as f64, (y1 - y0) / n1 as f64);
    let span = |a: i32, b: i32| (a.min(b), a.max(b));
    let column_px: Vec<(i32, i32)> = (0..n0)
        .map(|i| {
            let xa = x0 + i as f64 * dx;
            span(
                chart.backend_coord(&(xa, y0)).0,
                chart.backend_coord(&(xa + dx, y0)).0,
            )
        })
        .collect();
    let row_px: Vec<(i32, i32)> = (0..n1)
        .map(|j| {
            let ya = y0 + j as f64 * dy;
            span(
                chart.backend_coord(&(x0, ya)).1,
                chart.backend_coord(&(x0, ya + dy)).1,
            )
        })
        .collect();
    let left = column_px.iter().map(|c| c.0).min().unwrap_or(0);
    let right = column_px.iter().map(|c| c.1).max().unwrap_or(0);
    let top = row_px.iter().map(|r| r.0).min().unwrap_or(0);
    let bottom = row_px.iter().map(|r| r.1).max().unwrap_or(0);
    let (w, h) = (
        (right - left).max(0) as usize,
        (bottom - top).max(0) as usize,
    );
    let mut pixels = vec![255u8; w * h * 3];
    for (k, &RGBColor(r, g, b)) in colours.iter().enumerate().take(n0 * n1) {
        let (c, row) = (column_px[k / n1], row_px[k % n1]);
        let (x_from, x_to) = ((c.0 - left) as usize * 3, (c.1 - left) as usize * 3);
        for y in (row.0 - top) as usize..(row.1 - top) as usize {
            for pixel in pixels[y * w * 3..][x_from..x_to].chunks_exact_mut(3) {
                pixel.copy_from_slice(&[r, g, b]);
            }
        }
    }
    let (base_x, base_y) = plot.get_base_pixel();
    let cells = BitMapElement::with_owned_buffer(
        (left - base_x, top - base_y),
        (w as u32, h as u32),
        pixels,
    )
    .ok_or_else(|| plot_error("heatmap buffer size"))?;
    plot.draw(&cells).map_err(plot_error)
}

fn colour_bar<Y>(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    gradient: Gradient,
    scale: ColourScale,
    y: Y,
    label: &str,
) -> Result<()>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let (lo, hi) = scale.range();
    let mut chart = ChartBuilder::on(area)
        .caption(label, font(14))
        .margin_top(12)
        .margin_bottom(54)
        .margin_right(4)
        .right_y_label_area_size(76)
        .build_cartesian_2d(0.0..1.0, y)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .label_style(font(13))
        .y_label_formatter(&|v| short_number(*v))
        .draw()
        .map_err(plot_error)?;
    const SLICES: usize = 200;
    let value_at = |s: f64| match scale {
        ColourScale::Log { .. } => lo * (hi / lo).powf(s),
        _ => lo + s * (hi - lo),
    };
    chart
        .draw_series((0..SLICES).map(|k| {
            let (a, b) = (k as f64 / SLICES as f64, (k + 1) as f64 / SLICES as f64);
            // The slice's value coloured as the heatmap colours it (a diverging scale runs
            // its gradient from the top down).
            let mid = (a + b) / 2.0;
            let c = gradient.eval_continuous(scale.position(value_at(mid)).unwrap_or(mid));
            Rectangle::new(
                [(0.0, value_at(a)), (1.0, value_at(b))],
                RGBColor(c.r, c.g, c.b).filled(),
            )
        }))
        .map_err(plot_error)?;
    Ok(())
}

/// 1D: the profiles as lines over the bin centres into `area`.
fn profile_panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    spec: &HistogramSpec,
    profiles: &[(&str, &[f64])],
    title: &str,
    x_name: &str,
    y_label: &str,
) -> Result<()> {
    let [x0, x1] = spec.range[0];
    let n = spec.bins[0] as usize;
    let dx = (x1 - x0) / n as f64;
    let series: Vec<Series> = profiles
        .iter()
        .enumerate()
        .map(|(k, (name, v))| Series {
            name: name.to_string(),
            points: v
                .iter()
                .enumerate()
                .map(|(i, &p)| (x0 + (i as f64 + 0.5) * dx, p))
                .collect(),
            dashed: k > 0,
        })
        .collect();
    let (lo, hi) = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let pad = 0.05 * (hi - lo);
    chart_lines(
        area,
        (title, x_name, y_label, &series),
        x0..x1,
        (lo - pad)..(hi + pad),
    )
    .map(|_| ())
}

fn check_shape(values: &[f64], spec: &HistogramSpec) -> Result<()> {
    if values.len() != spec.total_bins() || !(1..=2).contains(&spec.bins.len()) {
        return Err(Error::Output(format!(
            "{} values for a histogram of bins {:?}",
            values.len(),
            spec.bins
        )));
    }
    Ok(())
}

fn gradient_of(name: &str) -> Result<Gradient> {
    super::colormap(name).ok_or_else(|| {
        Error::Output(format!(
            "unknown colormap {name:?}; known: {}",
            super::colormap_names().join(", ")
        ))
    })
}

/// The picture of one real-valued density on the histogram's bins (a heatmap with a colour
/// bar in 2D, a profile in 1D).
pub fn density_image(
    values: &[f64],
    spec: &HistogramSpec,
    colormap: &str,
    scale: Scale,
    title: &str,
    names: &[String],
    label: &str,
) -> Result<RgbImage> {
    check_shape(values, spec)?;
    let gradient = gradient_of(colormap)?;
    if spec.bins.len() == 1 {
        return render(760, 520, |root| {
            profile_panel(root, spec, &[(label, values)], title, &names[0], label)
        });
    }
    let scale = ColourScale::for_values(&[values], scale);
    render(760, 620, |root| {
        heatmap_panel(root, values, spec, gradient, scale, title, names, label)
    })
}

/// Particle | reference | difference (particle - reference), probabilities per bin. The first
/// two share one colour scale; the difference uses a diverging scale symmetric about 0.
pub fn compare_image(
    particles: &[f64],
    reference: &[f64],
    spec: &HistogramSpec,
    colormap: &str,
    scale: Scale,
    title: &str,
    names: &[String],
) -> Result<RgbImage> {
    check_shape(particles, spec)?;
    check_shape(reference, spec)?;
    let gradient = gradient_of(colormap)?;
    let difference: Vec<f64> = particles
        .iter()
        .zip(reference)
        .map(|(p, q)| p - q)
        .collect();
    if spec.bins.len() == 1 {
        return render(900, 900, |root| {
            let (top, bottom) = root.split_vertically(500);
            profile_panel(
                &top,
                spec,
                &[("particles", particles), ("reference", reference)],
                title,
                &names[0],
                "probability per bin",
            )?;
            profile_panel(
                &bottom,
                spec,
                &[("particles - reference", &difference)],
                "difference",
                &names[0],
                "probability per bin",
            )
        });
    }
    let shared = ColourScale::for_values(&[particles, reference], scale);
    let limit = difference
        .iter()
        .map(|v| v.abs())
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let diverging = ColourScale::Diverging {
        limit: if limit > 0.0 { limit } else { 1.0 },
    };
    render(2100, 660, |root| {
        let (head, body) = root.split_vertically(40);
        head.draw(&Text::new(title.to_string(), (16, 10), font(20)))
            .map_err(plot_error)?;
        let panels = body.split_evenly((1, 3));
        heatmap_panel(
            &panels[0],
            particles,
            spec,
            gradient,
            shared,
            "particles",
            names,
            "probability",
        )?;
        heatmap_panel(
            &panels[1],
            reference,
            spec,
            gradient,
            shared,
            "reference",
            names,
            "probability",
        )?;
        heatmap_panel(
            &panels[2],
            &difference,
            spec,
            colorous::RED_BLUE,
            diverging,
            "particles - reference",
            names,
            "difference",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pixels of exactly `colour` within `r` pixels (Chebyshev) of `at`.
    fn pixels_near(image: &RgbImage, at: (i32, i32), r: i32, colour: RGBColor) -> usize {
        let mut n = 0;
        for dy in -r..=r {
            for dx in -r..=r {
                let (x, y) = (at.0 + dx, at.1 + dy);
                if x < 0 || y < 0 || x >= image.width() as i32 || y >= image.height() as i32 {
                    continue;
                }
                let p = image.get_pixel(x as u32, y as u32).0;
                n += usize::from(p == [colour.0, colour.1, colour.2]);
            }
        }
        n
    }

    #[test]
    fn a_series_of_one_point_is_drawn_as_a_marker() {
        let series = |dashed| Series {
            name: "tv".into(),
            points: vec![(1.0, 0.02)],
            dashed,
        };
        for (log_y, dashed) in [(false, false), (true, false), (true, true)] {
            let (image, pixels) =
                line_chart_pixels("one point", "t", "tv", &[series(dashed)], false, log_y).unwrap();
            let at = pixels[0][0];
            // A filled circle of radius 3 covers its centre and the 3 x 3 pixels about it in
            // the series' colour (its anti-aliased rim may blend); a line of one point
            // draws nothing there, and the grid lines are grey.
            let n = pixels_near(&image, at, 1, PALETTE[0]);
            assert_eq!(n, 9, "log_y {log_y}, dashed {dashed}: marker at {at:?}");
        }
    }

    #[test]
    fn dense_series_are_lines_without_markers() {
        // 400 points over a plot area about 800 pixels wide: 2 pixels apart, closer than two
        // marker widths (12), so no markers: about a point of a straight horizontal line the
        // 5 x 5 window holds only the stroke (width 2, which plotters rasterises over at most
        // 3 rows: 15 pixels), where a marker of radius 3 would fill all 25.
        let points: Vec<(f64, f64)> = (0..400).map(|i| (f64::from(i), 0.0)).collect();
        let s = Series {
            name: "flat".into(),
            points,
            dashed: false,
        };
        let (image, pixels) = line_chart_pixels("dense", "x", "y", &[s], false, false).unwrap();
        let at = pixels[0][200];
        let n = pixels_near(&image, at, 2, PALETTE[0]);
        assert!(n <= 15, "{n} pixels of the line's colour about {at:?}");
    }

    fn spec2() -> HistogramSpec {
        HistogramSpec {
            axes: vec![0, 1],
            bins: vec![20, 10],
            range: vec![[-2.0, 2.0], [-1.0, 1.0]],
        }
    }

    /// The cells drawn as one bitmap (`draw_cells`) are, pixel for pixel, the cells drawn
    /// one filled `Rectangle` each, on grids whose cell edges fall between pixels in every
    /// way (bin widths that are not whole pixels, a range of 2 pi, a tiny one, 1 x 1).
    #[test]
    fn cells_as_one_bitmap_are_the_rectangles_pixel_for_pixel() {
        let grids: [(u32, u32, [f64; 2], [f64; 2]); 6] = [
            (20, 10, [-2.0, 2.0], [-1.0, 1.0]),
            (7, 5, [0.0, 1.0], [-3.0, 3.0]),
            (100, 37, [-1e-3, 1e-3], [0.0, std::f64::consts::TAU]),
            (128, 128, [-2.5, 2.5], [-2.5, 2.5]),
            (333, 3, [-4.0, 4.0], [1e6, 1e6 + 1.0]),
            (1, 1, [0.0, 1.0], [0.0, 1.0]),
        ];
        for (n0, n1, rx, ry) in grids {
            let spec = HistogramSpec {
                axes: vec![0, 1],
                bins: vec![n0, n1],
                range: vec![rx, ry],
            };
            let colours: Vec<RGBColor> = (0..n0 * n1)
                .map(|k| RGBColor((k % 251) as u8, (k / 7 % 253) as u8, (k / 3 % 241) as u8))
                .collect();
            let draw = |bitmap: bool| {
                render(331, 257, |root| {
                    let mut chart = ChartBuilder::on(root)
                        .margin(7)
                        .x_label_area_size(23)
                        .y_label_area_size(31)
                        .build_cartesian_2d(rx[0]..rx[1], ry[0]..ry[1])
                        .map_err(plot_error)?;
                    chart
                        .configure_mesh()
                        .disable_mesh()
                        .label_style(font(11))
                        .draw()
                        .map_err(plot_error)?;
                    if bitmap {
                        return draw_cells(&chart, root, &spec, &colours);
                    }
                    let (dx, dy) = ((rx[1] - rx[0]) / n0 as f64, (ry[1] - ry[0]) / n1 as f64);
                    let (n0, n1) = (n0 as usize, n1 as usize);
                    chart
                        .draw_series((0..n0 * n1).map(|k| {
                            let (i, j) = (k / n1, k % n1);
                            let (xa, ya) = (rx[0] + i as f64 * dx, ry[0] + j as f64 * dy);
                            Rectangle::new([(xa, ya), (xa + dx, ya + dy)], colours[k].filled())
                        }))
                        .map_err(plot_error)?;
                    Ok(())
                })
                .unwrap()
            };
            let (cells, rectangles) = (draw(true), draw(false));
            let differing = cells
                .pixels()
                .zip(rectangles.pixels())
                .filter(|(a, b)| a != b)
                .count();
            assert_eq!(differing, 0, "{n0} x {n1} bins on {rx:?} x {ry:?}");
        }
    }

    #[test]
    fn pictures_are_deterministic_and_sized_independently_of_data() {
        let spec = spec2();
        let a: Vec<f64> = (0..200).map(|k| (k % 17) as f64 / 1000.0).collect();
        let b: Vec<f64> = (0..200).map(|k| (k % 13) as f64 / 900.0).collect();
        let names = vec!["x0".to_string(), "x1".to_string()];
        let one = compare_image(&a, &b, &spec, "viridis", Scale::Log, "t = 1", &names).unwrap();
        let two = compare_image(&a, &b, &spec, "viridis", Scale::Log, "t = 1", &names).unwrap();
        assert_eq!(one, two);
        let other = compare_image(&b, &a, &spec, "magma", Scale::Linear, "t", &names).unwrap();
        assert_eq!(one.dimensions(), other.dimensions());
        if let Ok(dir) = std::env::var("FOKKER_PLOT_DUMP") {
            one.save(format!("{dir}/compare.png")).unwrap();
        }
        // Text was drawn: some dark pixels in the title band.
        assert!((0..600).any(|x| (5..35).any(|y| one.get_pixel(x, y).0[0] < 100)));
        let d = density_image(&a, &spec, "viridis", Scale::Log, "q", &names, "p").unwrap();
        assert_eq!(d.dimensions(), (760, 620));
        assert!(density_image(&a[..5], &spec, "viridis", Scale::Log, "q", &names, "p").is_err());
    }

    #[test]
    fn line_charts_handle_log_scales_and_degenerate_data() {
        let s = vec![
            Series {
                name: "tv".into(),
                points: vec![(0.0, 0.5), (1.0, 0.01), (2.0, 0.0)],
                dashed: false,
            },
            Series {
                name: "floor".into(),
                points: vec![(0.0, 0.003), (2.0, 0.003)],
                dashed: true,
            },
        ];
        let img = line_chart("distances", "t", "distance", &s, true).unwrap();
        assert_eq!(img.dimensions(), (900, 560));
        line_chart("empty", "t", "F", &[], false).unwrap();
        let single = vec![Series {
            name: "F".into(),
            points: vec![(1.0, 2.0)],
            dashed: false,
        }];
        line_chart("one point", "t", "F", &single, false).unwrap();
    }

    #[test]
    fn short_numbers() {
        assert_eq!(short_number(0.5), "0.5");
        assert_eq!(short_number(2.0), "2");
        assert_eq!(short_number(1e-5), "1e-5");
        assert_eq!(short_number(-1.25), "-1.25");
    }
}
