//! A small line plot (series of (x, y) points, log10 y axis) as PNG bytes, for MMD^2 against
//! step. Self-contained on purpose: it is meant to move onto the plotting module once the
//! project has one. Text uses the bundled 8x8 font, so the bytes are the same everywhere.

use crate::error::Result;
use font8x8::UnicodeFonts;
use image::{Rgb, RgbImage};

const WIDTH: u32 = 720;
const HEIGHT: u32 = 480;
const LEFT: u32 = 96;
const RIGHT: u32 = 24;
const TOP: u32 = 48;
const BOTTOM: u32 = 64;
const INK: Rgb<u8> = Rgb([34, 34, 34]);
const GRID: Rgb<u8> = Rgb([225, 225, 225]);
/// Colours of successive series (matplotlib's first three).
pub const SERIES_COLOURS: [[u8; 3]; 4] =
    [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40]];

/// One named curve.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: &'a [(f64, f64)],
}

struct Canvas(RgbImage);

impl Canvas {
    fn dot(&mut self, x: i64, y: i64, c: Rgb<u8>) {
        if x >= 0 && y >= 0 && x < i64::from(WIDTH) && y < i64::from(HEIGHT) {
            self.0.put_pixel(x as u32, y as u32, c);
        }
    }

    fn rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: Rgb<u8>) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.dot(xx, yy, c);
            }
        }
    }

    /// A line two pixels wide (Bresenham).
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: Rgb<u8>) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.rect(x, y, 2, 2, c);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    fn text(&mut self, x: i64, y: i64, text: &str) {
        for (k, ch) in text.chars().enumerate() {
            let glyph = font8x8::BASIC_FONTS
                .get(ch)
                .or_else(|| font8x8::BASIC_FONTS.get('?'))
                .unwrap_or([0; 8]);
            for (gy, row) in glyph.iter().enumerate() {
                for gx in 0..8 {
                    if row >> gx & 1 == 1 {
                        self.rect(x + k as i64 * 16 + gx * 2, y + gy as i64 * 2, 2, 2, INK);
                    }
                }
            }
        }
    }
}

fn text_width(text: &str) -> i64 {
    text.chars().count() as i64 * 16
}

/// Shortest label for a tick value: integers as such, others in 3 significant digits.
fn label(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e7 {
        format!("{v}")
    } else {
        format!("{v:.3}")
    }
}

/// Renders the series with a log10 y axis (values <= 0 sit on the bottom edge). Points
/// with non-finite coordinates are skipped.
pub fn render_line_plot(
    title: &str,
    x_name: &str,
    y_name: &str,
    series: &[Series<'_>],
) -> Result<Vec<u8>> {
    let finite = || {
        series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let (mut x_lo, mut x_hi) = finite().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.0), b.max(p.0))
    });
    let positive = finite().map(|p| p.1).filter(|&y| y > 0.0);
    let (y_min, y_max) = positive.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    if !(x_lo.is_finite() && x_hi > x_lo) {
        x_lo = if x_lo.is_finite() { x_lo - 1.0 } else { 0.0 };
        x_hi = x_lo + 2.0;
    }
    // Whole decades around the positive values.
    let (e_lo, e_hi) = if y_min.is_finite() {
        let lo = y_min.log10().floor();
        let hi = y_max.log10().ceil();
        (lo, if hi > lo { hi } else { lo + 1.0 })
    } else {
        (-1.0, 0.0)
    };
    let mut c = Canvas(RgbImage::from_pixel(WIDTH, HEIGHT, Rgb([255, 255, 255])));
    let (pw, ph) = (
        i64::from(WIDTH - LEFT - RIGHT),
        i64::from(HEIGHT - TOP - BOTTOM),
    );
    let (left, top) = (i64::from(LEFT), i64::from(TOP));
    let px = |x: f64| left + ((x - x_lo) / (x_hi - x_lo) * pw as f64).round() as i64;
    let py = |y: f64| {
        let t = if y > 0.0 {
            ((y.log10() - e_lo) / (e_hi - e_lo)).clamp(0.0, 1.0)
        } else {
            0.0
        };
        top + ph - (t * ph as f64).round() as i64
    };
    let decades = (e_hi - e_lo) as i64;
    let every = (decades / 6 + 1).max(1);
    for k in (0..=decades).step_by(every as usize) {
        let e = e_lo + k as f64;
        let y = py(10f64.powf(e));
        c.rect(left, y, pw, 1, GRID);
        let text = format!("1e{e}");
        c.text(left - 8 - text_width(&text), y - 8, &text);
    }
    for k in 0..=4 {
        let x = x_lo + (x_hi - x_lo) * f64::from(k) / 4.0;
        let xp = px(x);
        c.rect(xp, top, 1, ph, GRID);
        let text = label((x * 100.0).round() / 100.0);
        c.text(xp - text_width(&text) / 2, top + ph + 10, &text);
    }
    c.rect(left - 1, top - 1, pw + 2, 1, INK);
    c.rect(left - 1, top + ph, pw + 2, 1, INK);
    c.rect(left - 1, top, 1, ph, INK);
    c.rect(left + pw, top, 1, ph, INK);
    c.text(left + pw / 2 - text_width(title) / 2, 12, title);
    c.text(
        left + pw / 2 - text_width(x_name) / 2,
        top + ph + 36,
        x_name,
    );
    c.text(8, top - 30, y_name);
    for (k, s) in series.iter().enumerate() {
        let [r, g, b] = SERIES_COLOURS[k % SERIES_COLOURS.len()];
        let colour = Rgb([r, g, b]);
        let mut last: Option<(i64, i64)> = None;
        for &(x, y) in s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
        {
            let p = (px(x), py(y));
            if let Some(q) = last {
                c.line(q, p, colour);
            }
            c.rect(p.0 - 2, p.1 - 2, 5, 5, colour);
            last = Some(p);
        }
        // Legend, top right.
        let ly = top + 10 + 22 * k as i64;
        let lx = left + pw - 16 - text_width(s.name) - 28;
        c.rect(lx, ly + 6, 20, 4, colour);
        c.text(lx + 28, ly, s.name);
    }
    super::png_bytes(&c.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_curves_in_their_colours_and_survives_degenerate_input() {
        let a = [(0.0, 1.0), (10.0, 0.1), (20.0, 0.001)];
        let b = [(0.0, 0.5), (10.0, -1.0), (20.0, f64::NAN)];
        let png = render_line_plot(
            "MMD^2",
            "step",
            "mmd2",
            &[
                Series {
                    name: "sd_flow",
                    points: &a,
                },
                Series {
                    name: "svgd",
                    points: &b,
                },
            ],
        )
        .expect("png");
        let img = image::load_from_memory(&png).expect("decode").to_rgb8();
        assert_eq!(img.dimensions(), (WIDTH, HEIGHT));
        let [r, g, bl] = SERIES_COLOURS[0];
        assert!(img.pixels().any(|p| *p == Rgb([r, g, bl])));
        for degenerate in [&[][..], &[(3.0, 0.0)][..], &[(f64::NAN, 1.0)][..]] {
            let png = render_line_plot(
                "t",
                "x",
                "y",
                &[Series {
                    name: "s",
                    points: degenerate,
                }],
            );
            assert!(png.is_ok());
        }
    }
}
