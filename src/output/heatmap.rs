//! Density pictures of histogram counts: a 2D heatmap with a colour bar, or a 1D bar profile,
//! with axes in data coordinates and a title.
//!
//! Everything is drawn pixel by pixel with integer geometry, the bundled font8x8 bitmap font
//! and `libm` for logarithms, so the same counts give the same PNG bytes on every machine
//! (cluster nodes without system fonts included). The picture's size depends only on the
//! histogram spec, never on the counts, so every snapshot of a run can be a frame of one GIF.

use crate::error::{Error, Result};
use crate::scenario::{HeatmapSpec, HistogramSpec, Scale};
use colorous::Gradient;
use font8x8::UnicodeFonts;
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder, Rgb, RgbImage};

const COLORMAPS: &[&str] = &[
    "viridis", "magma", "inferno", "plasma", "cividis", "turbo", "greys",
];

/// The colormap names `heatmap.colormap` accepts.
pub fn colormap_names() -> &'static [&'static str] {
    COLORMAPS
}

/// The colorous gradient called `name` (one of [`colormap_names`]).
pub fn colormap(name: &str) -> Option<Gradient> {
    Some(match name {
        "viridis" => colorous::VIRIDIS,
        "magma" => colorous::MAGMA,
        "inferno" => colorous::INFERNO,
        "plasma" => colorous::PLASMA,
        "cividis" => colorous::CIVIDIS,
        "turbo" => colorous::TURBO,
        "greys" => colorous::GREYS,
        _ => return None,
    })
}

const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
const INK: Rgb<u8> = Rgb([34, 34, 34]);
/// Empty bins on a log scale (log 0 has no colour) when the colormap's low end is dark.
const EMPTY: Rgb<u8> = Rgb([255, 255, 255]);
/// Empty bins on a log scale when the colormap's low end is itself near white (greys), so
/// that "no particles" still differs from "one particle".
const EMPTY_ON_LIGHT: Rgb<u8> = Rgb([214, 228, 245]);

/// Text is font8x8 at twice its size: 16 px glyphs stay legible next to a ~500 px plot.
const TEXT_SCALE: u32 = 2;
const CHAR: u32 = 8 * TEXT_SCALE;
const PAD: u32 = 12;
const TICK: u32 = 5;
/// Largest plot side: each bin becomes a block of the largest integer size that keeps the side
/// at or under this (at least one pixel per bin).
const PLOT_MAX: u32 = 520;
const PLOT_1D_HEIGHT: u32 = 400;
/// More bins than this per axis would make a picture of hundreds of megabytes.
const MAX_BINS_PER_AXIS: u32 = 8192;
const COLORBAR_GAP: u32 = 32;
const COLORBAR_WIDTH: u32 = 20;
/// Count labels are at most this many characters (see [`count_labels`]); the margins reserve
/// that room whatever the counts are, which keeps the picture size independent of them.
const COUNT_LABEL_CHARS: u32 = 6;

/// PNG bytes of the density picture; see [`render_density_image`].
pub fn render_density_png(
    counts: &[u64],
    spec: &HistogramSpec,
    heat: &HeatmapSpec,
    title: &str,
    axis_names: &[String],
) -> Result<Vec<u8>> {
    png_bytes(&render_density_image(
        counts, spec, heat, title, axis_names,
    )?)
}

/// PNG bytes of an RGB picture (deterministic: fixed encoder settings).
pub fn png_bytes(image: &RgbImage) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    PngEncoder::new(&mut buf)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            ExtendedColorType::Rgb8,
        )
        .map_err(|e| Error::Output(format!("cannot encode PNG: {e}")))?;
    Ok(buf)
}

/// The density picture of `counts` (numpy `histogram2d` order: `counts[i * bins[1] + j]` is
/// bin i of the first axis, drawn left to right, and bin j of the second, drawn bottom to top).
/// A 2D spec gives a heatmap with a colour bar; a 1D spec gives a bar profile of the counts.
/// `axis_names` label the axes (missing names fall back to `x<axis>`); `title` goes on top.
pub fn render_density_image(
    counts: &[u64],
    spec: &HistogramSpec,
    heat: &HeatmapSpec,
    title: &str,
    axis_names: &[String],
) -> Result<RgbImage> {
    validate(counts, spec)?;
    let gradient = colormap(&heat.colormap).ok_or_else(|| {
        Error::Output(format!(
            "unknown colormap {:?}; known: {}",
            heat.colormap,
            COLORMAPS.join(", ")
        ))
    })?;
    let name = |k: usize| match axis_names.get(k) {
        Some(n) => n.clone(),
        None => format!("x{}", spec.axes.get(k).copied().unwrap_or(k as u32)),
    };
    if spec.bins.len() == 1 {
        Ok(render_1d(
            counts,
            spec,
            heat.scale,
            gradient,
            title,
            &name(0),
        ))
    } else {
        Ok(render_2d(
            counts,
            spec,
            heat.scale,
            gradient,
            title,
            &name(0),
            &name(1),
        ))
    }
}

fn validate(counts: &[u64], spec: &HistogramSpec) -> Result<()> {
    let d = spec.bins.len();
    if !(1..=2).contains(&d) || spec.range.len() != d {
        return Err(Error::Output(format!(
            "a density picture needs a 1D or 2D histogram, got {d} bin counts and {} ranges",
            spec.range.len()
        )));
    }
    for (k, (&b, r)) in spec.bins.iter().zip(&spec.range).enumerate() {
        if b == 0 || b > MAX_BINS_PER_AXIS {
            return Err(Error::Output(format!(
                "cannot draw {b} bins on histogram axis {k}: 1 to {MAX_BINS_PER_AXIS} are drawable"
            )));
        }
        if !(r[0].is_finite() && r[1].is_finite() && r[0] < r[1]) {
            return Err(Error::Output(format!(
                "cannot draw histogram axis {k} with range [{}, {}]",
                r[0], r[1]
            )));
        }
    }
    if counts.len() != spec.total_bins() {
        return Err(Error::Output(format!(
            "histogram has {} counts but its bins {:?} need {}",
            counts.len(),
            spec.bins,
            spec.total_bins()
        )));
    }
    Ok(())
}

/// Pixels per bin along an axis of `bins` bins.
fn block(bins: u32) -> u32 {
    (PLOT_MAX / bins).max(1)
}

// ---------------------------------------------------------------------------------------------
// Colour scales

/// Where a count sits on the colour scale, 0..=1, or None for an empty bin on a log scale.
/// Linear: count / max. Log: ln(count) / ln(max) for count >= 1; with max = 1 every non-empty
/// bin is at the top (it holds the maximum). max = 0 (nothing in range) maps everything to 0.
fn scale_position(count: u64, max: u64, scale: Scale) -> Option<f64> {
    match scale {
        Scale::Linear if max == 0 => Some(0.0),
        Scale::Linear => Some(count as f64 / max as f64),
        Scale::Log if count == 0 => None,
        Scale::Log if max <= 1 => Some(1.0),
        Scale::Log => Some(libm::log(count as f64) / libm::log(max as f64)),
    }
}

/// Colour-bar ticks as (position 0..=1, count) for counts whose maximum is `max`.
fn colorbar_ticks(max: u64, scale: Scale) -> Vec<(f64, u64)> {
    match scale {
        Scale::Linear => {
            let top = max.max(1);
            linear_count_ticks(top)
                .into_iter()
                .map(|v| (v as f64 / top as f64, v))
                .collect()
        }
        Scale::Log if max <= 1 => vec![(1.0, 1)],
        Scale::Log => log_count_ticks(max)
            .into_iter()
            .filter_map(|v| scale_position(v, max, Scale::Log).map(|t| (t, v)))
            .collect(),
    }
}

/// Multiples of the smallest 1-2-5 integer step that gives at most 5 ticks in 0..=top.
fn linear_count_ticks(top: u64) -> Vec<u64> {
    let mut power = 1u64;
    loop {
        for m in [1u64, 2, 5] {
            let Some(step) = power.checked_mul(m) else {
                return vec![0];
            };
            if top / step < 5 {
                return (0..=top / step).map(|k| k * step).collect();
            }
        }
        match power.checked_mul(10) {
            Some(p) => power = p,
            None => return vec![0],
        }
    }
}

/// Log-scale ticks in 1..=max: the finest of 1-2-5 per decade, 1-3 per decade, or every
/// k-th decade that gives at most 5 ticks.
fn log_count_ticks(max: u64) -> Vec<u64> {
    let per_decade = |mantissas: &[u64]| -> Vec<u64> {
        let mut out = Vec::new();
        let mut power = 1u64;
        loop {
            for &m in mantissas {
                match power.checked_mul(m) {
                    Some(v) if v <= max => out.push(v),
                    _ => return out,
                }
            }
            match power.checked_mul(10) {
                Some(p) => power = p,
                None => return out,
            }
        }
    };
    for mantissas in [&[1u64, 2, 5][..], &[1, 3]] {
        let ticks = per_decade(mantissas);
        if ticks.len() <= 5 {
            return ticks;
        }
    }
    let decades = per_decade(&[1]);
    let stride = decades.len().div_ceil(5);
    decades.into_iter().step_by(stride).collect()
}

/// Labels for count ticks, each at most [`COUNT_LABEL_CHARS`] characters (tick counts have at
/// most two significant digits): plain below 100000, else like `2.5e6`. On a linear axis one
/// large tick puts every non-zero label in that style (`5e4`, `1e5`, `1.5e5`), since mixed
/// styles are hard to compare at a glance; a log axis reads fine as `1`, `100`, `1e6`.
fn count_labels(values: &[u64], scale: Scale) -> Vec<String> {
    let all_scientific = scale == Scale::Linear && values.iter().any(|&v| v >= 100_000);
    values
        .iter()
        .map(|&v| {
            if v == 0 || (v < 100_000 && !all_scientific) {
                return v.to_string();
            }
            let digits = v.to_string();
            let exponent = digits.len() - 1;
            let significant = digits.trim_end_matches('0');
            let (first, rest) = significant.split_at(1);
            let dot = if rest.is_empty() { "" } else { "." };
            format!("{first}{dot}{rest}e{exponent}")
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Data-axis ticks

/// A tick on a data axis: its value and its label.
struct Tick {
    value: f64,
    label: String,
}

/// 10^n by repeated multiplication: exact up to 1e22, the same on every machine beyond.
fn pow10(n: i32) -> f64 {
    let mut p = 1.0f64;
    for _ in 0..n.unsigned_abs().min(400) {
        p *= 10.0;
    }
    if n < 0 { 1.0 / p } else { p }
}

/// Labels for the decimal numbers j * 10^e (one e for the whole axis), built from digits, not
/// from floats (which would print 0.30000000000000004). Fixed notation with -e decimals when
/// every label stays short, else scientific (`2.5e-7`) for all of them: one axis, one style.
fn decimal_labels(js: &[i64], e: i32) -> Vec<String> {
    // Decimal exponent of the leading digit of j * 10^e.
    let leading = |j: i64| j.unsigned_abs().to_string().len() as i32 - 1 + e;
    let fixed = (-6..=8).contains(&e)
        && js
            .iter()
            .filter(|&&j| j != 0)
            .all(|&j| (-4..6).contains(&leading(j)));
    js.iter()
        .map(|&j| {
            let sign = if j < 0 { "-" } else { "" };
            let digits = j.unsigned_abs().to_string();
            if fixed && e >= 0 {
                if j == 0 {
                    "0".into()
                } else {
                    format!("{sign}{digits}{}", "0".repeat(e as usize))
                }
            } else if fixed {
                let decimals = e.unsigned_abs() as usize;
                let padded = format!("{digits:0>width$}", width = decimals + 1);
                let (int, frac) = padded.split_at(padded.len() - decimals);
                format!("{sign}{int}.{frac}")
            } else if j == 0 {
                "0".into()
            } else {
                let significant = digits.trim_end_matches('0');
                let (first, rest) = significant.split_at(1);
                let dot = if rest.is_empty() { "" } else { "." };
                format!("{sign}{first}{dot}{rest}e{}", leading(j))
            }
        })
        .collect()
}

/// Ticks at the multiples of m * 10^e inside [lo, hi]; None when there would be absurdly many
/// or the numbers do not fit an i64.
fn ticks_at_step(lo: f64, hi: f64, m: i64, e: i32) -> Option<Vec<Tick>> {
    let step = m as f64 * pow10(e);
    let k0 = (lo / step - 1e-9).ceil();
    let k1 = (hi / step + 1e-9).floor();
    if !(k0.is_finite() && k1.is_finite()) || k0.abs() > 1e15 || k1.abs() > 1e15 {
        return None;
    }
    let (k0, k1) = (k0 as i64, k1 as i64);
    if k1 - k0 > 1000 {
        return None;
    }
    let js: Vec<i64> = (k0..=k1).map(|k| k * m).collect();
    let labels = decimal_labels(&js, e);
    Some(
        js.iter()
            .zip(labels)
            .map(|(&j, label)| Tick {
                value: if e >= 0 {
                    j as f64 * pow10(e)
                } else {
                    j as f64 / pow10(-e)
                },
                label,
            })
            .collect(),
    )
}

/// Round ticks (1-2-5 steps) for [lo, hi]: the finest step with 2 to 7 ticks for which `fits`
/// holds (labels do not collide), else the coarsest such step, else the two ends.
fn axis_ticks(lo: f64, hi: f64, fits: impl Fn(&[Tick]) -> bool) -> Vec<Tick> {
    let span = hi - lo;
    let start = libm::floor(libm::log10(span / 10.0));
    let mut e = if start.is_finite() {
        start.clamp(-320.0, 320.0) as i32
    } else {
        0
    };
    let mut coarsest: Option<Vec<Tick>> = None;
    'search: for _ in 0..40 {
        for m in [1, 2, 5] {
            let Some(ticks) = ticks_at_step(lo, hi, m, e) else {
                continue;
            };
            if ticks.len() < 2 {
                break 'search;
            }
            if ticks.len() <= 7 {
                if fits(&ticks) {
                    return ticks;
                }
                coarsest = Some(ticks);
            }
        }
        e += 1;
    }
    coarsest.unwrap_or_else(|| {
        [lo, hi]
            .into_iter()
            .map(|value| Tick {
                value,
                label: format!("{value}"),
            })
            .collect()
    })
}

/// Pixels between neighbouring ticks when [lo, hi] spans `pixels`.
fn tick_spacing(ticks: &[Tick], lo: f64, hi: f64, pixels: u32) -> f64 {
    match ticks {
        [a, b, ..] => (b.value - a.value) / (hi - lo) * f64::from(pixels),
        _ => f64::INFINITY,
    }
}

fn x_ticks(lo: f64, hi: f64, width: u32) -> Vec<Tick> {
    axis_ticks(lo, hi, |t| {
        let widest = t.iter().map(|t| text_width(&t.label, TEXT_SCALE)).max();
        tick_spacing(t, lo, hi, width) >= f64::from(widest.unwrap_or(0) + 12)
    })
}

fn y_ticks(lo: f64, hi: f64, height: u32) -> Vec<Tick> {
    axis_ticks(lo, hi, |t| {
        tick_spacing(t, lo, hi, height) >= f64::from(CHAR + 10)
    })
}

// ---------------------------------------------------------------------------------------------
// Drawing

/// The font8x8 glyph for `c`: Basic Latin, Latin-1 and Greek as they are, common typographic
/// dashes and quotes as their ASCII look-alikes, anything else as `?`.
fn glyph(c: char) -> [u8; 8] {
    let c = match c {
        '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
        '\u{2018}' | '\u{2019}' => '\'',
        '\u{201C}' | '\u{201D}' => '"',
        c if c.is_control() => ' ',
        c => c,
    };
    font8x8::BASIC_FONTS
        .get(c)
        .or_else(|| font8x8::LATIN_FONTS.get(c))
        .or_else(|| font8x8::GREEK_FONTS.get(c))
        .or_else(|| font8x8::BASIC_FONTS.get('?'))
        .unwrap_or([0; 8])
}

fn text_width(text: &str, scale: u32) -> u32 {
    text.chars().count() as u32 * 8 * scale
}

/// `text` and a scale that fit in `max_width` pixels: 2x; else 2x with runs of spaces
/// squeezed to one; else 1x; else 1x cut short with "...".
fn fit_text(text: &str, max_width: u32) -> (String, u32) {
    if text_width(text, TEXT_SCALE) <= max_width {
        return (text.to_string(), TEXT_SCALE);
    }
    let squeezed = text
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if text_width(&squeezed, TEXT_SCALE) <= max_width {
        return (squeezed, TEXT_SCALE);
    }
    if text_width(text, 1) <= max_width {
        return (text.to_string(), 1);
    }
    let keep = (max_width / 8).saturating_sub(3) as usize;
    (text.chars().take(keep).chain("...".chars()).collect(), 1)
}

struct Canvas {
    img: RgbImage,
}

impl Canvas {
    fn new(width: u32, height: u32) -> Self {
        Canvas {
            img: RgbImage::from_pixel(width, height, BACKGROUND),
        }
    }

    fn fill(&mut self, x: i64, y: i64, w: i64, h: i64, c: Rgb<u8>) {
        let x1 = (x + w).min(i64::from(self.img.width()));
        let y1 = (y + h).min(i64::from(self.img.height()));
        for yy in y.max(0)..y1 {
            for xx in x.max(0)..x1 {
                self.img.put_pixel(xx as u32, yy as u32, c);
            }
        }
    }

    /// A one-pixel frame just outside the `w` x `h` area at (x, y).
    fn frame(&mut self, x: i64, y: i64, w: i64, h: i64) {
        self.fill(x - 1, y - 1, w + 2, 1, INK);
        self.fill(x - 1, y + h, w + 2, 1, INK);
        self.fill(x - 1, y, 1, h, INK);
        self.fill(x + w, y, 1, h, INK);
    }

    /// Horizontal text with its top-left corner at (x, y).
    fn text(&mut self, x: i64, y: i64, text: &str, scale: u32) {
        let s = i64::from(scale);
        for (k, c) in text.chars().enumerate() {
            let g = glyph(c);
            let cx = x + k as i64 * 8 * s;
            for (gy, row) in g.iter().enumerate() {
                for gx in 0..8 {
                    if row >> gx & 1 == 1 {
                        self.fill(cx + gx * s, y + gy as i64 * s, s, s, INK);
                    }
                }
            }
        }
    }

    /// Text reading bottom to top (rotated a quarter turn anticlockwise), its first character's
    /// bottom-left corner at (x, y_bottom).
    fn text_up(&mut self, x: i64, y_bottom: i64, text: &str, scale: u32) {
        let s = i64::from(scale);
        for (k, c) in text.chars().enumerate() {
            let g = glyph(c);
            let base = y_bottom - k as i64 * 8 * s;
            for (gy, row) in g.iter().enumerate() {
                for gx in 0..8 {
                    if row >> gx & 1 == 1 {
                        self.fill(x + gy as i64 * s, base - (gx + 1) * s, s, s, INK);
                    }
                }
            }
        }
    }

    fn text_centered(&mut self, cx: i64, y: i64, text: &str, scale: u32) {
        self.text(cx - i64::from(text_width(text, scale)) / 2, y, text, scale);
    }
}

/// Pixel placement of the plot: top-left corner of the data area and its size.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Plot {
    x0: u32,
    y0: u32,
    w: u32,
    h: u32,
}

impl Plot {
    fn x_of(&self, v: f64, lo: f64, hi: f64) -> i64 {
        let px = f64::from(self.x0) + (v - lo) / (hi - lo) * f64::from(self.w);
        (px.round() as i64).clamp(i64::from(self.x0), i64::from(self.x0 + self.w - 1))
    }

    /// Row of position t (0 bottom, 1 top) within the plot height.
    fn y_of_fraction(&self, t: f64) -> i64 {
        let py = f64::from(self.y0 + self.h) - t * f64::from(self.h);
        (py.round() as i64).clamp(i64::from(self.y0), i64::from(self.y0 + self.h - 1))
    }
}

/// Top margin: the title line and a gap.
const TOP: u32 = PAD + CHAR + 14;
/// Below the plot: tick marks, tick labels, the axis name.
const BOTTOM: u32 = 1 + TICK + 4 + CHAR + 10 + CHAR + PAD;

/// Left margin for y labels at most `label_width` wide: the rotated axis name, labels, ticks.
fn left_margin(label_width: u32) -> u32 {
    PAD + CHAR + 10 + label_width + 4 + TICK + 1
}

/// The 2D layout: plot placement and total picture size, from the spec alone.
struct Layout2d {
    plot: Plot,
    sx: u32,
    sy: u32,
    colorbar_x: u32,
    width: u32,
    height: u32,
    x_ticks: Vec<Tick>,
    y_ticks: Vec<Tick>,
}

fn layout_2d(spec: &HistogramSpec) -> Layout2d {
    let (nx, ny) = (spec.bins[0], spec.bins[1]);
    let (sx, sy) = (block(nx), block(ny));
    let (w, h) = (nx * sx, ny * sy);
    let [xlo, xhi] = spec.range[0];
    let [ylo, yhi] = spec.range[1];
    let x_ticks = x_ticks(xlo, xhi, w);
    let y_ticks = y_ticks(ylo, yhi, h);
    let label_width = y_ticks
        .iter()
        .map(|t| text_width(&t.label, TEXT_SCALE))
        .max()
        .unwrap_or(0);
    let plot = Plot {
        x0: left_margin(label_width),
        y0: TOP,
        w,
        h,
    };
    let colorbar_x = plot.x0 + w + COLORBAR_GAP;
    let width = colorbar_x + COLORBAR_WIDTH + 1 + TICK + 4 + COUNT_LABEL_CHARS * CHAR + PAD;
    Layout2d {
        plot,
        sx,
        sy,
        colorbar_x,
        width,
        height: TOP + h + BOTTOM,
        x_ticks,
        y_ticks,
    }
}

fn rgb(c: colorous::Color) -> Rgb<u8> {
    Rgb(c.as_array())
}

/// The colour of empty bins on a log scale: white, unless the colormap starts near white.
fn empty_colour(gradient: Gradient) -> Rgb<u8> {
    let [r, g, b] = gradient.eval_continuous(0.0).as_array();
    if r.min(g).min(b) >= 200 {
        EMPTY_ON_LIGHT
    } else {
        EMPTY
    }
}

/// Ticks and labels along the bottom of the plot, and the axis name under them.
fn draw_x_axis(c: &mut Canvas, plot: Plot, ticks: &[Tick], lo: f64, hi: f64, name: &str) {
    let base = i64::from(plot.y0 + plot.h) + 1;
    for t in ticks {
        let x = plot.x_of(t.value, lo, hi);
        c.fill(x, base, 1, i64::from(TICK), INK);
        c.text_centered(x, base + i64::from(TICK) + 4, &t.label, TEXT_SCALE);
    }
    let (name, scale) = fit_text(name, plot.w);
    let y = base + i64::from(TICK + 4 + CHAR + 10);
    c.text_centered(i64::from(plot.x0 + plot.w / 2), y, &name, scale);
}

/// Ticks and right-aligned labels along the left of the plot (positions 0..=1 from the
/// bottom), and the axis name, rotated, at the far left.
fn draw_y_axis(c: &mut Canvas, plot: Plot, ticks: &[(f64, String)], name: &str) {
    let right = i64::from(plot.x0) - 1;
    for (t, label) in ticks {
        let y = plot.y_of_fraction(*t);
        c.fill(right - i64::from(TICK), y, i64::from(TICK), 1, INK);
        let w = i64::from(text_width(label, TEXT_SCALE));
        let top = y - i64::from(CHAR) / 2;
        c.text(right - i64::from(TICK) - 4 - w, top, label, TEXT_SCALE);
    }
    let (name, scale) = fit_text(name, plot.h);
    let len = i64::from(text_width(&name, scale));
    let x = i64::from(PAD) + i64::from(CHAR - 8 * scale) / 2;
    c.text_up(
        x,
        i64::from(plot.y0) + (i64::from(plot.h) + len) / 2,
        &name,
        scale,
    );
}

/// The title line: centred over the plot, shifted to stay inside the picture (it may run over
/// the colour bar's column, which starts below it).
fn draw_title(c: &mut Canvas, plot: Plot, title: &str) {
    let width = c.img.width();
    let (title, scale) = fit_text(title, width.saturating_sub(2 * PAD));
    let w = text_width(&title, scale);
    let centre = plot.x0 + plot.w / 2;
    let x = centre
        .saturating_sub(w / 2)
        .min(width.saturating_sub(PAD + w))
        .max(PAD);
    let y = PAD + (CHAR - 8 * scale) / 2;
    c.text(i64::from(x), i64::from(y), &title, scale);
}

fn render_2d(
    counts: &[u64],
    spec: &HistogramSpec,
    scale: Scale,
    gradient: Gradient,
    title: &str,
    x_name: &str,
    y_name: &str,
) -> RgbImage {
    let layout = layout_2d(spec);
    let plot = layout.plot;
    let (nx, ny) = (spec.bins[0] as usize, spec.bins[1] as usize);
    let max = counts.iter().copied().max().unwrap_or(0);
    let empty = empty_colour(gradient);
    let mut c = Canvas::new(layout.width, layout.height);

    for i in 0..nx {
        for j in 0..ny {
            let colour = match scale_position(counts[i * ny + j], max, scale) {
                Some(t) => rgb(gradient.eval_continuous(t)),
                None => empty,
            };
            // Row ny-1-j: bin 0 of the second axis is at the bottom (y up).
            c.fill(
                i64::from(plot.x0) + (i * layout.sx as usize) as i64,
                i64::from(plot.y0) + ((ny - 1 - j) * layout.sy as usize) as i64,
                i64::from(layout.sx),
                i64::from(layout.sy),
                colour,
            );
        }
    }
    c.frame(
        i64::from(plot.x0),
        i64::from(plot.y0),
        i64::from(plot.w),
        i64::from(plot.h),
    );
    let [xlo, xhi] = spec.range[0];
    let [ylo, yhi] = spec.range[1];
    draw_x_axis(&mut c, plot, &layout.x_ticks, xlo, xhi, x_name);
    let y_ticks: Vec<(f64, String)> = layout
        .y_ticks
        .iter()
        .map(|t| ((t.value - ylo) / (yhi - ylo), t.label.clone()))
        .collect();
    draw_y_axis(&mut c, plot, &y_ticks, y_name);

    // Colour bar: bottom = scale position 0, top = 1, framed, ticks and counts on its right.
    let cb = Plot {
        x0: layout.colorbar_x,
        y0: plot.y0,
        w: COLORBAR_WIDTH,
        h: plot.h,
    };
    for row in 0..cb.h {
        let t = if cb.h > 1 {
            f64::from(cb.h - 1 - row) / f64::from(cb.h - 1)
        } else {
            1.0
        };
        c.fill(
            i64::from(cb.x0),
            i64::from(cb.y0 + row),
            i64::from(cb.w),
            1,
            rgb(gradient.eval_continuous(t)),
        );
    }
    c.frame(
        i64::from(cb.x0),
        i64::from(cb.y0),
        i64::from(cb.w),
        i64::from(cb.h),
    );
    let tick_x = i64::from(cb.x0 + cb.w + 1);
    let ticks = colorbar_ticks(max, scale);
    let values: Vec<u64> = ticks.iter().map(|&(_, v)| v).collect();
    for ((t, _), label) in ticks.into_iter().zip(count_labels(&values, scale)) {
        let y = cb.y_of_fraction(t);
        c.fill(tick_x, y, i64::from(TICK), 1, INK);
        let top = (y - i64::from(CHAR) / 2).clamp(0, i64::from(layout.height - CHAR));
        c.text(tick_x + i64::from(TICK) + 4, top, &label, TEXT_SCALE);
    }
    draw_title(&mut c, plot, title);
    c.img
}

fn render_1d(
    counts: &[u64],
    spec: &HistogramSpec,
    scale: Scale,
    gradient: Gradient,
    title: &str,
    x_name: &str,
) -> RgbImage {
    let n = spec.bins[0];
    let s = block(n);
    let [lo, hi] = spec.range[0];
    let x_ticks = x_ticks(lo, hi, n * s);
    let widest = x_ticks
        .iter()
        .map(|t| text_width(&t.label, TEXT_SCALE))
        .max()
        .unwrap_or(0);
    let plot = Plot {
        x0: left_margin(COUNT_LABEL_CHARS * CHAR),
        y0: TOP,
        w: n * s,
        h: PLOT_1D_HEIGHT,
    };
    let width = plot.x0 + plot.w + PAD.max(widest / 2 + 4);
    let height = TOP + plot.h + BOTTOM;
    let mut c = Canvas::new(width, height);

    // Vertical position of a count: linear from 0, or logarithmic from half a particle so that
    // a bin holding one particle still shows; 5% headroom above the tallest bar.
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let position = |v: f64| -> f64 {
        match scale {
            Scale::Linear => v / (max * 1.05),
            Scale::Log => {
                let bottom = libm::log(0.5);
                let top = libm::log(max);
                let top = top + 0.05 * (top - bottom);
                (libm::log(v) - bottom) / (top - bottom)
            }
        }
    };
    let fill = rgb(gradient.eval_continuous(0.45));
    let heights: Vec<i64> = counts
        .iter()
        .map(|&v| {
            if v == 0 {
                0
            } else {
                let px = (position(v as f64) * f64::from(plot.h)).round() as i64;
                px.clamp(1, i64::from(plot.h))
            }
        })
        .collect();
    let base = i64::from(plot.y0 + plot.h);
    let mut previous_top = base;
    for (i, &hp) in heights.iter().enumerate() {
        let x = i64::from(plot.x0) + i as i64 * i64::from(s);
        let top = base - hp;
        c.fill(x, top, i64::from(s), hp, fill);
        // Step outline: the bar's top edge, and a riser from the previous bar's top.
        if hp > 0 {
            c.fill(x, top, i64::from(s), 1, INK);
        }
        if i > 0 {
            let (a, b) = (previous_top.min(top), previous_top.max(top));
            if b > a {
                c.fill(x, a, 1, b - a + 1, INK);
            }
        }
        previous_top = top;
    }
    c.frame(
        i64::from(plot.x0),
        i64::from(plot.y0),
        i64::from(plot.w),
        i64::from(plot.h),
    );
    draw_x_axis(&mut c, plot, &x_ticks, lo, hi, x_name);
    let top_count = max as u64;
    let tick_values = match scale {
        Scale::Linear => linear_count_ticks(top_count),
        Scale::Log => log_count_ticks(top_count),
    };
    let y_ticks: Vec<(f64, String)> = tick_values
        .iter()
        .zip(count_labels(&tick_values, scale))
        .map(|(&v, label)| (position(v as f64), label))
        .collect();
    let y_name = match scale {
        Scale::Linear => "count",
        Scale::Log => "count (log scale)",
    };
    draw_y_axis(&mut c, plot, &y_ticks, y_name);
    draw_title(&mut c, plot, title);
    c.img
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_2d(bins: [u32; 2]) -> HistogramSpec {
        HistogramSpec {
            axes: vec![0, 1],
            bins: bins.to_vec(),
            range: vec![[-2.5, 2.5], [-1.0, 3.0]],
        }
    }

    fn heat(colormap: &str, scale: Scale) -> HeatmapSpec {
        HeatmapSpec {
            colormap: colormap.into(),
            scale,
        }
    }

    fn names() -> Vec<String> {
        vec!["x0".into(), "x1".into()]
    }

    /// A smooth two-bump density, as a run would produce.
    fn bumps(bins: [u32; 2]) -> Vec<u64> {
        let (nx, ny) = (bins[0] as usize, bins[1] as usize);
        let mut v = vec![0; nx * ny];
        for i in 0..nx {
            for j in 0..ny {
                let x = (i as f64 + 0.5) / nx as f64 * 5.0 - 2.5;
                let y = (j as f64 + 0.5) / ny as f64 * 4.0 - 1.0;
                let p = (-((x - 1.0).powi(2) + (y - 1.5).powi(2)) * 3.0).exp()
                    + 0.5 * (-((x + 1.2).powi(2) + (y - 0.2).powi(2)) * 2.0).exp();
                v[i * ny + j] = (p * 5000.0) as u64;
            }
        }
        v
    }

    fn decode(png: &[u8]) -> RgbImage {
        image::load_from_memory_with_format(png, image::ImageFormat::Png)
            .unwrap()
            .to_rgb8()
    }

    #[test]
    fn colormaps_resolve() {
        for name in colormap_names() {
            assert!(colormap(name).is_some(), "{name}");
        }
        assert!(colormap("jet").is_none());
        let spec = spec_2d([4, 4]);
        let err = render_density_png(&[0; 16], &spec, &heat("jet", Scale::Linear), "", &names())
            .unwrap_err();
        assert!(err.to_string().contains("viridis"), "{err}");
    }

    #[test]
    fn same_inputs_same_bytes() {
        let spec = spec_2d([64, 48]);
        let counts = bumps([64, 48]);
        for scale in [Scale::Linear, Scale::Log] {
            let h = heat("magma", scale);
            let a = render_density_png(&counts, &spec, &h, "t = 0.5", &names()).unwrap();
            let b = render_density_png(&counts, &spec, &h, "t = 0.5", &names()).unwrap();
            assert_eq!(a, b);
        }
    }

    #[test]
    fn dimensions_depend_on_the_spec_only() {
        let spec = spec_2d([128, 128]);
        let h = heat("viridis", Scale::Log);
        let a = render_density_image(&bumps([128, 128]), &spec, &h, "a", &names()).unwrap();
        let b = render_density_image(
            &vec![7; 128 * 128],
            &spec,
            &h,
            "a much longer title",
            &names(),
        )
        .unwrap();
        assert_eq!(a.dimensions(), b.dimensions());
        let layout = layout_2d(&spec);
        assert_eq!((layout.plot.w, layout.plot.h), (512, 512));
        assert_eq!(a.dimensions(), (layout.width, layout.height));
        // Plot sides stay near 400-520 px for typical bin counts.
        for bins in [50, 64, 100, 128, 200, 256] {
            let side = bins * block(bins);
            assert!((400..=520).contains(&side), "{bins} bins -> {side} px");
        }
    }

    #[test]
    fn hot_bin_is_drawn_with_y_up() {
        let bins = [16u32, 32];
        let spec = spec_2d(bins);
        let (i, j) = (3usize, 10usize);
        let mut counts = vec![0u64; 16 * 32];
        counts[i * 32 + j] = 5;
        let png = render_density_png(
            &counts,
            &spec,
            &heat("viridis", Scale::Linear),
            "hot",
            &names(),
        )
        .unwrap();
        let img = decode(&png);
        let layout = layout_2d(&spec);
        let centre = |i: usize, j: usize| {
            let x = layout.plot.x0 + i as u32 * layout.sx + layout.sx / 2;
            let y = layout.plot.y0 + (bins[1] - 1 - j as u32) * layout.sy + layout.sy / 2;
            img.get_pixel(x, y).0
        };
        let top = colorous::VIRIDIS.eval_continuous(1.0).as_array();
        let bottom = colorous::VIRIDIS.eval_continuous(0.0).as_array();
        assert_eq!(centre(i, j), top);
        // Neither transposed nor upside down.
        assert_eq!(centre(j % 16, i), bottom);
        assert_eq!(centre(i, 31 - j), bottom);
        assert_eq!(centre(i + 1, j), bottom);
        // The whole block is hot, and only it.
        let x0 = layout.plot.x0 + i as u32 * layout.sx;
        let y0 = layout.plot.y0 + (31 - j as u32) * layout.sy;
        for y in y0..y0 + layout.sy {
            for x in x0..x0 + layout.sx {
                assert_eq!(img.get_pixel(x, y).0, top);
            }
        }
        assert_eq!(img.get_pixel(x0 - 1, y0).0, bottom);
        assert_eq!(img.get_pixel(x0, y0 + layout.sy).0, bottom);
    }

    #[test]
    fn log_and_linear_differ_and_empty_bins_are_background() {
        let spec = spec_2d([32, 32]);
        let mut counts = bumps([32, 32]);
        counts[0] = 0;
        counts[31 * 32 + 31] = 1;
        let lin = render_density_image(
            &counts,
            &spec,
            &heat("viridis", Scale::Linear),
            "",
            &names(),
        )
        .unwrap();
        let log = render_density_image(&counts, &spec, &heat("viridis", Scale::Log), "", &names())
            .unwrap();
        assert_ne!(lin, log);
        let layout = layout_2d(&spec);
        let at = |img: &RgbImage, i: u32, j: u32| {
            img.get_pixel(
                layout.plot.x0 + i * layout.sx + 1,
                layout.plot.y0 + (31 - j) * layout.sy + 1,
            )
            .0
        };
        let bottom = colorous::VIRIDIS.eval_continuous(0.0).as_array();
        assert_eq!(at(&lin, 0, 0), bottom);
        assert_eq!(at(&log, 0, 0), EMPTY.0);
        // On a log scale one particle is the bottom colour, distinct from empty.
        assert_eq!(at(&log, 31, 31), bottom);
        // Greys starts at white: empty bins get a tint instead.
        let greys =
            render_density_image(&counts, &spec, &heat("greys", Scale::Log), "", &names()).unwrap();
        assert_eq!(at(&greys, 0, 0), EMPTY_ON_LIGHT.0);
    }

    #[test]
    fn degenerate_counts_do_not_panic() {
        let spec = spec_2d([8, 8]);
        let mut ones = vec![0; 64];
        ones[5] = 1;
        ones[9] = 1;
        for scale in [Scale::Linear, Scale::Log] {
            for colormap in colormap_names() {
                render_density_image(&[0; 64], &spec, &heat(colormap, scale), "", &names())
                    .unwrap();
            }
            let h = heat("viridis", scale);
            render_density_png(&ones, &spec, &h, "ones", &names()).unwrap();
            render_density_png(&[u64::MAX; 64], &spec, &h, "full", &names()).unwrap();
        }
        // max = 1 on a log scale: every particle is at the top colour.
        let mut ones = vec![0; 64];
        ones[0] = 1;
        let img =
            render_density_image(&ones, &spec, &heat("viridis", Scale::Log), "", &names()).unwrap();
        let l = layout_2d(&spec);
        let p = img.get_pixel(l.plot.x0 + 1, l.plot.y0 + 7 * l.sy + 1).0;
        assert_eq!(p, colorous::VIRIDIS.eval_continuous(1.0).as_array());
    }

    #[test]
    fn bad_input_is_an_error() {
        let h = heat("viridis", Scale::Linear);
        let spec = spec_2d([4, 4]);
        assert!(render_density_png(&[0; 15], &spec, &h, "", &names()).is_err());
        let mut bad = spec.clone();
        bad.range[0] = [1.0, 1.0];
        assert!(render_density_png(&[0; 16], &bad, &h, "", &names()).is_err());
        let mut bad = spec.clone();
        bad.range[1] = [0.0, f64::NAN];
        assert!(render_density_png(&[0; 16], &bad, &h, "", &names()).is_err());
        let three = HistogramSpec {
            axes: vec![0, 1, 2],
            bins: vec![2, 2, 2],
            range: vec![[0.0, 1.0]; 3],
        };
        assert!(render_density_png(&[0; 8], &three, &h, "", &names()).is_err());
    }

    #[test]
    fn one_dimensional_profile() {
        let spec = HistogramSpec {
            axes: vec![1],
            bins: vec![100],
            range: vec![[-3.0, 3.0]],
        };
        let counts: Vec<u64> = (0..100)
            .map(|i| {
                let x = (i as f64 + 0.5) / 100.0 * 6.0 - 3.0;
                (10_000.0 * (-x * x / 2.0).exp()) as u64
            })
            .collect();
        for scale in [Scale::Linear, Scale::Log] {
            let h = heat("viridis", scale);
            let a = render_density_png(&counts, &spec, &h, "1D", &[]).unwrap();
            assert_eq!(
                a,
                render_density_png(&counts, &spec, &h, "1D", &[]).unwrap()
            );
            let img = decode(&a);
            assert_eq!(img.height(), TOP + PLOT_1D_HEIGHT + BOTTOM);
            // The tallest bar (centre) is filled just above the baseline; the outermost bin,
            // holding ~111 particles, is barely visible on a linear scale.
            let x0 = left_margin(COUNT_LABEL_CHARS * CHAR);
            let base = TOP + PLOT_1D_HEIGHT - 2;
            let fill = colorous::VIRIDIS.eval_continuous(0.45).as_array();
            assert_eq!(img.get_pixel(x0 + 50 * 5 + 2, base).0, fill);
            assert_eq!(img.get_pixel(x0 + 50 * 5 + 2, TOP + 40).0, fill);
        }
        render_density_png(&[0; 100], &spec, &heat("turbo", Scale::Log), "", &[]).unwrap();
        render_density_png(&[0; 100], &spec, &heat("turbo", Scale::Linear), "", &[]).unwrap();
    }

    #[test]
    fn tick_labels() {
        let labels = |lo, hi, px| -> Vec<String> {
            x_ticks(lo, hi, px).into_iter().map(|t| t.label).collect()
        };
        assert_eq!(labels(-2.5, 2.5, 512), ["-2", "-1", "0", "1", "2"]);
        assert_eq!(
            labels(0.0, 1.0, 512),
            ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
        );
        assert_eq!(
            labels(0.1, 0.4, 512),
            ["0.10", "0.15", "0.20", "0.25", "0.30", "0.35", "0.40"]
        );
        assert_eq!(labels(0.0, 3e6, 512), ["0", "1e6", "2e6", "3e6"]);
        assert_eq!(
            labels(0.0, 1e-6, 512),
            ["0", "2e-7", "4e-7", "6e-7", "8e-7", "1e-6"]
        );
        // Labels never collide on plots of the sizes the layout makes.
        for (lo, hi) in [
            (-2.5, 2.5),
            (0.0, 1.0),
            (-0.37, 12.9),
            (1e3, 1.2e3),
            (-123456.0, 987654.0),
            (0.001, 0.0011),
            (-1e-9, 1e-9),
        ] {
            for px in [261, 300, 400, 512] {
                let t = x_ticks(lo, hi, px);
                assert!((2..=7).contains(&t.len()), "{lo}..{hi}: {} ticks", t.len());
                let widest = t.iter().map(|t| text_width(&t.label, TEXT_SCALE)).max();
                let gap = tick_spacing(&t, lo, hi, px);
                assert!(
                    gap >= f64::from(widest.unwrap() + 12),
                    "{lo}..{hi} at {px} px"
                );
            }
        }
        assert_eq!(decimal_labels(&[-25, 0, 5], -1), ["-2.5", "0.0", "0.5"]);
        assert_eq!(decimal_labels(&[0, 5], -2), ["0.00", "0.05"]);
        assert_eq!(decimal_labels(&[0, 5, 10], 5), ["0", "5e5", "1e6"]);
        assert_eq!(decimal_labels(&[-2, 0, 2], 3), ["-2000", "0", "2000"]);
        assert_eq!(decimal_labels(&[0, 25], -6), ["0", "2.5e-5"]);
        let lin = |v: &[u64]| count_labels(v, Scale::Linear);
        assert_eq!(lin(&[0, 50_000, 99_999]), ["0", "50000", "99999"]);
        assert_eq!(
            lin(&[0, 50_000, 100_000, 150_000]),
            ["0", "5e4", "1e5", "1.5e5"]
        );
        assert_eq!(
            count_labels(&[1, 100, 10_000, 1_000_000], Scale::Log),
            ["1", "100", "10000", "1e6"]
        );
        assert_eq!(linear_count_ticks(1), [0, 1]);
        assert_eq!(linear_count_ticks(7), [0, 2, 4, 6]);
        assert_eq!(linear_count_ticks(1000), [0, 500, 1000]);
        assert_eq!(log_count_ticks(20), [1, 2, 5, 10, 20]);
        assert_eq!(log_count_ticks(60), [1, 3, 10, 30]);
        assert_eq!(log_count_ticks(1000), [1, 10, 100, 1000]);
        assert_eq!(log_count_ticks(1_000_000), [1, 100, 10_000, 1_000_000]);
        for max in [1u64, 2, 9, 99, 12345, u64::MAX] {
            for (ticks, scale) in [
                (linear_count_ticks(max), Scale::Linear),
                (log_count_ticks(max), Scale::Log),
            ] {
                assert!(ticks.iter().all(|&v| v <= max));
                for label in count_labels(&ticks, scale) {
                    assert!(label.len() <= COUNT_LABEL_CHARS as usize, "{label}");
                }
            }
        }
    }

    #[test]
    fn example_picture() {
        // Written for eyeballing (see the module docs); not checked here.
        let bins = [128u32, 128];
        let spec = HistogramSpec {
            axes: vec![0, 1],
            bins: bins.to_vec(),
            range: vec![[-2.5, 2.5], [-1.0, 3.0]],
        };
        let png = render_density_png(
            &bumps(bins),
            &spec,
            &heat("viridis", Scale::Log),
            "double-well relaxation   t = 0.5000   step 500",
            &names(),
        )
        .unwrap();
        let Ok(dir) = std::env::var("FOKKER_EXAMPLE_PNG_DIR") else {
            return;
        };
        let dir = std::path::Path::new(&dir);
        std::fs::write(dir.join("example_heatmap.png"), &png).unwrap();
        let lin = render_density_png(
            &bumps(bins),
            &spec,
            &heat("greys", Scale::Linear),
            "t = 0.0000   step 0",
            &names(),
        )
        .unwrap();
        std::fs::write(dir.join("example_linear.png"), &lin).unwrap();
        let spec_1d = HistogramSpec {
            axes: vec![0],
            bins: vec![128],
            range: vec![[-2.5, 2.5]],
        };
        let counts: Vec<u64> = bumps(bins).chunks(128).map(|c| c.iter().sum()).collect();
        for (scale, file) in [
            (Scale::Linear, "example_1d.png"),
            (Scale::Log, "example_1d_log.png"),
        ] {
            let png = render_density_png(
                &counts,
                &spec_1d,
                &heat("viridis", scale),
                "1D profile",
                &[],
            )
            .unwrap();
            std::fs::write(dir.join(file), &png).unwrap();
        }
    }
}
