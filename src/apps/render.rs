//! The PNGs of `generate` and `inspect` (feature `plot`): digit grids, completions and
//! gate heatmaps, drawn pixel by pixel into an `image::RgbImage` (exact sizes, no
//! resampling), with captions through plotters and the crate's embedded font.

use std::path::Path;
use std::sync::OnceLock;

use image::{Rgb, RgbImage};
use ndarray::{ArrayView2, ArrayView3};
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::error::{LstmError, Result};

/// Pixels per digit pixel in grids and completions.
pub const DIGIT_SCALE: u32 = 2;
/// Gap between digits in a grid, and its margin.
pub const GAP: u32 = 2;
/// Digit side in pixels.
const SIDE: u32 = 28;

/// The embedded font (Liberation Sans, SIL OFL 1.1; the one `plot` uses).
static FONT: &[u8] = include_bytes!("../../assets/fonts/LiberationSans-Regular.ttf");
const FAMILY: &str = "sans-serif";

fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    if *REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT).is_ok()) {
        Ok(())
    } else {
        Err(LstmError::format("embedded font", "could not be parsed"))
    }
}

/// Writes `img` as a PNG.
pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| LstmError::io(dir, e))?;
    }
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| LstmError::io(path, std::io::Error::other(e.to_string())))
}

/// Size of a grid of `rows × cols` digits.
pub fn grid_size(rows: u32, cols: u32) -> (u32, u32) {
    let cell = SIDE * DIGIT_SCALE + GAP;
    (cols * cell + GAP, rows * cell + GAP)
}

/// A grid of digits `[N, 28, 28]` (intensities in `[0, 1]`, white on black), `cols`
/// per row, filled row by row.
pub fn digit_grid(images: ArrayView3<f32>, cols: usize) -> Result<RgbImage> {
    let n = images.dim().0;
    check_digits(images)?;
    if cols == 0 {
        return Err(LstmError::value("grid columns", "must be ≥ 1"));
    }
    let rows = n.div_ceil(cols);
    let (w, h) = grid_size(rows as u32, cols as u32);
    let mut img = RgbImage::from_pixel(w, h, Rgb([40, 40, 40]));
    for (k, digit) in images.outer_iter().enumerate() {
        let (x0, y0) = cell_origin(k / cols, k % cols);
        blit(&mut img, digit, x0, y0, DIGIT_SCALE, grey);
    }
    Ok(img)
}

/// Originals and their completions side by side, `pairs_per_row` pairs per row: the
/// given rows (`..given`) in grey, the generated ones in amber, so what the model drew
/// shows at a glance.
pub fn completion_grid(
    originals: ArrayView3<f32>,
    completions: ArrayView3<f32>,
    given: usize,
    pairs_per_row: usize,
) -> Result<RgbImage> {
    check_digits(originals)?;
    check_digits(completions)?;
    if originals.dim() != completions.dim() || pairs_per_row == 0 {
        return Err(LstmError::shape(
            "originals and completions",
            "the same shape, ≥ 1 pair per row",
            format!("{:?} and {:?}", originals.shape(), completions.shape()),
        ));
    }
    let n = originals.dim().0;
    let (w, h) = completion_size(n, pairs_per_row);
    let mut img = RgbImage::from_pixel(w, h, Rgb([40, 40, 40]));
    for k in 0..n {
        let (r, c) = (k / pairs_per_row, 2 * (k % pairs_per_row));
        let (x0, y0) = cell_origin(r, c);
        let x0 = x0 + (c as u32 / 2) * GAP * 2;
        blit(
            &mut img,
            originals.index_axis(ndarray::Axis(0), k),
            x0,
            y0,
            DIGIT_SCALE,
            grey,
        );
        let x1 = x0 + SIDE * DIGIT_SCALE + GAP;
        let done = completions.index_axis(ndarray::Axis(0), k);
        for (t, row) in done.outer_iter().enumerate() {
            let colour = if t < given { grey } else { amber };
            let one = row.insert_axis(ndarray::Axis(0));
            blit(
                &mut img,
                one,
                x1,
                y0 + t as u32 * DIGIT_SCALE,
                DIGIT_SCALE,
                colour,
            );
        }
    }
    Ok(img)
}

/// Size of a [`completion_grid`] of `n` pairs.
pub fn completion_size(n: usize, pairs_per_row: usize) -> (u32, u32) {
    let rows = n.div_ceil(pairs_per_row.max(1)) as u32;
    let (w, h) = grid_size(rows, 2 * pairs_per_row as u32);
    (w + pairs_per_row as u32 * GAP * 2, h)
}

fn cell_origin(row: usize, col: usize) -> (u32, u32) {
    let cell = SIDE * DIGIT_SCALE + GAP;
    (GAP + col as u32 * cell, GAP + row as u32 * cell)
}

fn check_digits(images: ArrayView3<f32>) -> Result<()> {
    let (n, r, c) = images.dim();
    if n == 0 || r != SIDE as usize || c != SIDE as usize {
        return Err(LstmError::shape(
            "digits",
            "[N ≥ 1, 28, 28]",
            format!("{:?}", images.shape()),
        ));
    }
    Ok(())
}

/// Draws `a` `[rows, cols]` at `(x0, y0)`, each value a `scale × scale` square.
pub(crate) fn blit(
    img: &mut RgbImage,
    a: ArrayView2<f32>,
    x0: u32,
    y0: u32,
    scale: u32,
    colour: impl Fn(f32) -> [u8; 3],
) {
    blit_xy(img, a, x0, y0, (scale, scale), colour);
}

/// [`blit`] with separate horizontal and vertical scales.
pub(crate) fn blit_xy(
    img: &mut RgbImage,
    a: ArrayView2<f32>,
    x0: u32,
    y0: u32,
    (sx, sy): (u32, u32),
    colour: impl Fn(f32) -> [u8; 3],
) {
    for ((r, c), &v) in a.indexed_iter() {
        let px = Rgb(colour(v));
        for dy in 0..sy {
            for dx in 0..sx {
                let (x, y) = (x0 + c as u32 * sx + dx, y0 + r as u32 * sy + dy);
                if x < img.width() && y < img.height() {
                    img.put_pixel(x, y, px);
                }
            }
        }
    }
}

fn unit(v: f32) -> f32 {
    if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// White on black.
pub fn grey(v: f32) -> [u8; 3] {
    let g = (unit(v) * 255.0).round() as u8;
    [g, g, g]
}

/// Amber on black: generated rows.
pub fn amber(v: f32) -> [u8; 3] {
    let v = unit(v);
    [(v * 255.0) as u8, (v * 176.0) as u8, (v * 32.0) as u8]
}

/// A perceptual sequential map for `[0, 1]` (viridis, five stops interpolated).
pub fn sequential(v: f32) -> [u8; 3] {
    const STOPS: [[f32; 3]; 5] = [
        [68.0, 1.0, 84.0],
        [59.0, 82.0, 139.0],
        [33.0, 145.0, 140.0],
        [94.0, 201.0, 98.0],
        [253.0, 231.0, 37.0],
    ];
    let x = unit(v) * 4.0;
    let i = (x.floor() as usize).min(3);
    let f = x - i as f32;
    let mix = |k: usize| (STOPS[i][k] + f * (STOPS[i + 1][k] - STOPS[i][k])).round() as u8;
    [mix(0), mix(1), mix(2)]
}

/// Blue (−1) – white (0) – red (+1).
pub fn diverging(v: f32) -> [u8; 3] {
    let v = if v.is_finite() {
        v.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let a = v.abs();
    let (hi, lo) = (255.0, 255.0 * (1.0 - a));
    let (r, g, b) = if v >= 0.0 {
        (hi, lo * 0.9 + 0.1 * (1.0 - a) * 255.0, lo)
    } else {
        (lo, lo * 0.9 + 0.1 * (1.0 - a) * 255.0, hi)
    };
    [r.round() as u8, g.round() as u8, b.round() as u8]
}

/// Writes `text` with its top-left corner at `(x, y)`, `size` px high, dark grey.
pub(crate) fn caption(img: &mut RgbImage, text: &str, (x, y): (i32, i32), size: u32) -> Result<()> {
    ensure_font()?;
    let (w, h) = img.dimensions();
    let draw = |buf: &mut [u8]| -> std::result::Result<(), String> {
        let root = BitMapBackend::with_buffer(buf, (w, h)).into_drawing_area();
        let style = TextStyle::from((FAMILY, size as f64).into_font()).color(&RGBColor(30, 30, 30));
        root.draw_text(text, &style, (x, y))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())
    };
    draw(img.as_mut()).map_err(|e| LstmError::format("caption", e))
}
