//! Targets from images: the density is the pixel brightness (grey level, 0..1) over a
//! rectangle `range = [[x0, x1], [y0, y1]]`. Row 0 of the image is the top (y1), as the PNG
//! heatmaps draw it, so an image target comes out upright in the density pictures.

use crate::error::{Error, Result};
use crate::rng::{self, INIT_CHOICE_BLOCK, STREAM_TARGET};
use crate::scenario::data::SampleTable;
use sha2::{Digest, Sha256};
use std::path::Path;

/// Most pixels an image target may have (4096 x 4096).
pub const MAX_PIXELS: u64 = 1 << 24;

/// An image's brightness, row-major from the top row, and the sha256 of its bytes.
pub struct Brightness {
    pub width: u32,
    pub height: u32,
    pub values: Vec<f64>,
    pub sha256: String,
}

fn data_err(path: &Path, reason: String) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        reason,
    }
}

/// Reads a PNG (or any format the build decodes) as grey levels in [0, 1]. Fails when it
/// cannot be decoded, is larger than [`MAX_PIXELS`] or is black everywhere.
pub fn read_brightness(path: &Path) -> Result<Brightness> {
    let bytes = std::fs::read(path).map_err(|e| data_err(path, format!("cannot read: {e}")))?;
    let image = image::load_from_memory(&bytes)
        .map_err(|e| data_err(path, format!("not a readable image: {e}")))?;
    let (width, height) = (image.width(), image.height());
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(data_err(
            path,
            format!("{width} x {height} pixels; at most {MAX_PIXELS} pixels are allowed"),
        ));
    }
    let values: Vec<f64> = image
        .to_luma8()
        .pixels()
        .map(|p| f64::from(p.0[0]) / 255.0)
        .collect();
    if !values.iter().any(|&v| v > 0.0) {
        return Err(data_err(
            path,
            "the image is black everywhere: no density to sample".into(),
        ));
    }
    Ok(Brightness {
        width,
        height,
        values,
        sha256: crate::scenario::data::hex(&Sha256::digest(&bytes)),
    })
}

/// `count` points with density proportional to brightness over `range`, from `seed`: point
/// r picks its pixel by the first word of Philox block [`INIT_CHOICE_BLOCK`] of (r, stream
/// [`STREAM_TARGET`]) and its place inside the pixel uniformly from the next two words.
pub fn image_samples(b: &Brightness, range: [[f64; 2]; 2], count: u64, seed: u64) -> SampleTable {
    let key = rng::key_from_seed(seed);
    let mut cdf = Vec::with_capacity(b.values.len());
    let mut total = 0.0;
    for v in &b.values {
        total += v;
        cdf.push(total);
    }
    let (w, h) = (f64::from(b.width), f64::from(b.height));
    let [[x0, x1], [y0, y1]] = range;
    let mut values = Vec::with_capacity(2 * count as usize);
    for r in 0..count {
        let words = rng::philox4x32_10(rng::counter(r, INIT_CHOICE_BLOCK, STREAM_TARGET), key);
        let u = rng::unit_closed_open(words[0]) * total;
        // First pixel whose cumulative brightness exceeds u (never a black one).
        let pixel = cdf.partition_point(|&c| c <= u).min(cdf.len() - 1);
        let (row, col) = (
            (pixel / b.width as usize) as f64,
            (pixel % b.width as usize) as f64,
        );
        let (jx, jy) = (
            rng::unit_closed_open(words[1]),
            rng::unit_closed_open(words[2]),
        );
        values.push((x0 + (col + jx) / w * (x1 - x0)) as f32);
        values.push((y1 - (row + jy) / h * (y1 - y0)) as f32);
    }
    SampleTable {
        rows: count as usize,
        dim: 2,
        values,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_follow_brightness_and_stand_upright() {
        // 2 x 2 image: top-left 1, top-right 0, bottom-left 0, bottom-right 0.5.
        let b = Brightness {
            width: 2,
            height: 2,
            values: vec![1.0, 0.0, 0.0, 0.5],
            sha256: String::new(),
        };
        let s = image_samples(&b, [[0.0, 2.0], [0.0, 2.0]], 30_000, 5);
        let (mut top_left, mut bottom_right) = (0, 0);
        for p in s.values.chunks_exact(2) {
            assert!((0.0..=2.0).contains(&p[0]) && (0.0..=2.0).contains(&p[1]));
            match (p[0] < 1.0, p[1] >= 1.0) {
                (true, true) => top_left += 1,
                (false, false) => bottom_right += 1,
                _ => panic!("sample in a black pixel: {p:?}"),
            }
        }
        // 2/3 vs 1/3: the standard deviation of the count is 82.
        assert!((top_left as f64 - 20_000.0).abs() < 400.0, "{top_left}");
        assert_eq!(top_left + bottom_right, 30_000);
    }
}
