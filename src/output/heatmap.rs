//! Density pictures of histogram counts: a 2D heatmap with a colour bar, or a 1D profile,
//! with axes in data coordinates and a title, drawn by the shared plotters module
//! ([`super::plot`]) with the bundled font, so the same counts give the same PNG bytes on
//! every machine. The picture's size depends only on the histogram's dimension, never on the
//! counts, so every snapshot of a run can be a frame of one GIF.

use crate::error::{Error, Result};
use crate::scenario::{HeatmapSpec, HistogramSpec};
use colorous::Gradient;
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder, RgbImage};

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
/// A 2D spec gives a heatmap with a colour bar in counts (on a log scale empty bins are
/// white); a 1D spec gives a profile of the counts. `axis_names` label the axes (missing
/// names fall back to `x<axis>`); `title` goes on top.
pub fn render_density_image(
    counts: &[u64],
    spec: &HistogramSpec,
    heat: &HeatmapSpec,
    title: &str,
    axis_names: &[String],
) -> Result<RgbImage> {
    let names: Vec<String> = (0..spec.bins.len())
        .map(|k| match axis_names.get(k) {
            Some(n) => n.clone(),
            None => format!("x{}", spec.axes.get(k).copied().unwrap_or(k as u32)),
        })
        .collect();
    let values: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
    super::plot::density_image(
        &values,
        spec,
        &heat.colormap,
        heat.scale,
        title,
        &names,
        "count",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scale;

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

    /// One hot bin at (i, j) of an otherwise empty histogram.
    fn hot(bins: [u32; 2], i: usize, j: usize) -> Vec<u64> {
        let mut v = vec![0; (bins[0] * bins[1]) as usize];
        v[i * bins[1] as usize + j] = 1000;
        v
    }

    /// Mean row and column of the pixels that are neither white nor grey (the hot bin;
    /// the colour bar lies to the right of `plot_width`).
    fn centroid(img: &RgbImage, plot_width: u32) -> (f64, f64) {
        let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
        for (x, y, p) in img.enumerate_pixels() {
            let [r, g, b] = p.0;
            let grey = r.abs_diff(g) < 12 && g.abs_diff(b) < 12;
            if x < plot_width && !grey {
                sx += f64::from(x);
                sy += f64::from(y);
                n += 1.0;
            }
        }
        assert!(n > 0.0, "no coloured pixels");
        (sx / n, sy / n)
    }

    #[test]
    fn colormaps_resolve_and_unknown_is_an_error() {
        for name in colormap_names() {
            assert!(colormap(name).is_some());
        }
        let spec = spec_2d([8, 8]);
        let err = render_density_png(
            &hot([8, 8], 1, 1),
            &spec,
            &heat("jet", Scale::Log),
            "",
            &names(),
        );
        assert!(err.is_err());
    }

    #[test]
    fn same_inputs_same_bytes_and_size_depends_on_the_spec_only() {
        let spec = spec_2d([16, 12]);
        let h = heat("viridis", Scale::Log);
        let a = render_density_png(&hot([16, 12], 3, 4), &spec, &h, "t", &names()).unwrap();
        let b = render_density_png(&hot([16, 12], 3, 4), &spec, &h, "t", &names()).unwrap();
        assert_eq!(a, b);
        let c = render_density_image(&hot([16, 12], 9, 1), &spec, &h, "t", &names()).unwrap();
        let d = render_density_image(&vec![7; 16 * 12], &spec, &h, "t", &names()).unwrap();
        assert_eq!(c.dimensions(), d.dimensions());
        let wrong = render_density_png(&[1, 2, 3], &spec, &h, "t", &names());
        assert!(wrong.is_err());
    }

    #[test]
    fn the_first_axis_runs_right_and_the_second_up() {
        let spec = spec_2d([8, 8]);
        // Log scale: empty bins are white, only the hot one has colour.
        let h = heat("viridis", Scale::Log);
        let img = |i, j| render_density_image(&hot([8, 8], i, j), &spec, &h, "", &names()).unwrap();
        let plot_width = img(0, 0).width() - 120;
        let (left, _) = centroid(&img(0, 4), plot_width);
        let (right, _) = centroid(&img(7, 4), plot_width);
        assert!(right > left + 100.0, "{left} {right}");
        let (_, low) = centroid(&img(4, 0), plot_width);
        let (_, high) = centroid(&img(4, 7), plot_width);
        // Image rows grow downwards: a high bin sits nearer the top.
        assert!(high + 100.0 < low, "{high} {low}");
    }
}
