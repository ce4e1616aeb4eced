//! The animated `density.gif`: every snapshot's heatmap, in order, looping forever.

use crate::error::{Error, Result};
use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, RgbImage, RgbaImage};

/// NeuQuant sampling factor (1 = every pixel, 30 = fastest). 10 is the gif crate's suggested
/// balance: at speed 1 a run with many snapshots spends seconds per frame on the palette,
/// for no difference one can see in a smooth colormap.
const QUANTIZE_SPEED: i32 = 10;

/// Browsers replace frame delays under 20 ms with about 100 ms, so shorter ones are raised
/// to this instead of silently playing slower.
const MIN_DELAY_MS: u32 = 20;

/// An animated GIF of `frames` in order, each shown `frame_delay_ms` (GIF stores centiseconds,
/// so the delay is rounded down to 10 ms, and raised to at least 20 ms), looping forever.
/// The frames must all have the size of the first (the GIF's screen size).
pub fn encode_gif(frames: &[RgbImage], frame_delay_ms: u32) -> Result<Vec<u8>> {
    let first = frames
        .first()
        .ok_or_else(|| Error::Output("cannot write a GIF with no frames".into()))?;
    let (w, h) = first.dimensions();
    if w > u32::from(u16::MAX) || h > u32::from(u16::MAX) {
        return Err(Error::Output(format!(
            "frames of {w} x {h} pixels are too large for a GIF (at most 65535 per side)"
        )));
    }
    if let Some((i, f)) = frames
        .iter()
        .enumerate()
        .find(|(_, f)| f.dimensions() != (w, h))
    {
        return Err(Error::Output(format!(
            "GIF frame {i} is {} x {} pixels but frame 0 is {w} x {h}",
            f.width(),
            f.height()
        )));
    }
    let delay_ms = frame_delay_ms.max(MIN_DELAY_MS) / 10 * 10;
    let delay = Delay::from_numer_denom_ms(delay_ms, 1);
    let mut buf = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut buf, QUANTIZE_SPEED);
        encoder.set_repeat(Repeat::Infinite).map_err(gif_error)?;
        for f in frames {
            let rgba = RgbaImage::from_fn(w, h, |x, y| {
                let [r, g, b] = f.get_pixel(x, y).0;
                image::Rgba([r, g, b, 255])
            });
            encoder
                .encode_frame(Frame::from_parts(rgba, 0, 0, delay))
                .map_err(gif_error)?;
        }
    }
    Ok(buf)
}

fn gif_error(e: image::ImageError) -> Error {
    Error::Output(format!("cannot encode the GIF: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::AnimationDecoder;
    use image::codecs::gif::GifDecoder;
    use std::io::Cursor;

    fn frame(shade: u8) -> RgbImage {
        RgbImage::from_fn(40, 30, |x, _| {
            image::Rgb([shade, (x * 6) as u8, 255 - shade])
        })
    }

    #[test]
    fn decodes_with_all_frames_in_order() {
        let frames: Vec<RgbImage> = [0u8, 80, 160, 240].iter().map(|&s| frame(s)).collect();
        let bytes = encode_gif(&frames, 200).unwrap();
        assert_eq!(&bytes[..6], b"GIF89a");
        // The NETSCAPE2.0 extension with loop count 0 means "repeat forever".
        let pos = bytes
            .windows(11)
            .position(|w| w == b"NETSCAPE2.0")
            .expect("looping extension");
        assert_eq!(&bytes[pos + 11..pos + 15], &[3, 1, 0, 0]);
        let decoded = GifDecoder::new(Cursor::new(&bytes))
            .unwrap()
            .into_frames()
            .collect_frames()
            .unwrap();
        assert_eq!(decoded.len(), 4);
        for (d, s) in decoded.iter().zip([0u8, 80, 160, 240]) {
            assert_eq!(d.delay().numer_denom_ms(), (200, 1));
            assert_eq!(d.buffer().dimensions(), (40, 30));
            let red = d.buffer().get_pixel(0, 0).0[0];
            assert!((i32::from(red) - i32::from(s)).abs() <= 8, "{red} vs {s}");
        }
        assert_eq!(encode_gif(&frames, 200).unwrap(), bytes);
    }

    #[test]
    fn rejects_empty_and_mismatched_frames() {
        assert!(matches!(encode_gif(&[], 100), Err(Error::Output(_))));
        let frames = vec![frame(0), RgbImage::new(10, 10)];
        assert!(matches!(encode_gif(&frames, 100), Err(Error::Output(_))));
    }
}
