//! The `inspect` picture (feature `plot`): one digit, its gradient × input attribution,
//! and heatmaps over the time steps of the input, forget and output gates, the cell
//! state and the hidden state. Time runs down every panel, one step per image row of the
//! digit beside it; units run across, in one shared order.

use image::{Rgb, RgbImage};
use ndarray::{Array2, ArrayView2, Axis};

use super::record_gates::GateTrace;
use super::render::{blit, blit_xy, caption, diverging, grey, sequential};
use crate::error::{LstmError, Result};

/// Vertical pixels per time step (and per digit pixel).
pub const STEP_PX: u32 = 8;
const MARGIN: u32 = 12;
const TITLE: u32 = 30;
const LABEL: u32 = 20;

/// What the figure shows.
pub struct InspectPanels<'a> {
    /// `[T, I]`: the digit, one row per step.
    pub digit: ArrayView2<'a, f32>,
    /// `[T, I]`: gradient × input.
    pub attribution: ArrayView2<'a, f32>,
    /// The layer-direction to show.
    pub trace: &'a GateTrace,
    /// Which sequence of the trace's batch.
    pub index: usize,
    /// Unit order (a permutation of `0..H`).
    pub order: &'a [usize],
    pub title: &'a str,
}

/// Horizontal pixels per unit: heatmaps about 256 px wide whatever H.
fn unit_px(hidden: usize) -> u32 {
    (256 / hidden.max(1)).max(1) as u32
}

/// Size of the figure for `steps` steps, `inputs` values per step and `hidden` units.
pub fn inspect_size(steps: usize, inputs: usize, hidden: usize) -> (u32, u32) {
    let (ph, dw, hw) = panel_dims(steps, inputs, hidden);
    (
        MARGIN + dw + 3 * (MARGIN + hw) + MARGIN,
        TITLE + 2 * (LABEL + ph + MARGIN),
    )
}

/// Panel height, digit width, heatmap width.
fn panel_dims(steps: usize, inputs: usize, hidden: usize) -> (u32, u32, u32) {
    (
        steps as u32 * STEP_PX,
        inputs as u32 * STEP_PX,
        hidden as u32 * unit_px(hidden),
    )
}

/// One heatmap: name, `[T, H]` values, (column, row) in the figure, ± scale if signed.
type Panel = (&'static str, Array2<f32>, (u32, u32), Option<f32>);

/// Draws the figure.
pub fn inspect_figure(p: &InspectPanels) -> Result<RgbImage> {
    let (t, i) = p.digit.dim();
    let tr = p.trace;
    let (tt, b, h) = tr.hidden.dim();
    let mut sorted = p.order.to_vec();
    sorted.sort_unstable();
    if tt != t
        || p.attribution.dim() != (t, i)
        || p.index >= b
        || sorted != (0..h).collect::<Vec<_>>()
    {
        return Err(LstmError::shape(
            "inspect panels",
            format!("digit and attribution [T, I], a trace of T = {t} steps, index < B, an order of 0..H"),
            format!("digit {:?}, attribution {:?}, trace {:?}, index {}", p.digit.dim(), p.attribution.dim(), tr.hidden.dim(), p.index),
        ));
    }
    let (w, hgt) = inspect_size(t, i, h);
    let (ph, dw, hw) = panel_dims(t, i, h);
    let mut img = RgbImage::from_pixel(w, hgt, Rgb([255, 255, 255]));
    let x_of = |col: u32| {
        if col == 0 {
            MARGIN
        } else {
            2 * MARGIN + dw + (col - 1) * (hw + MARGIN)
        }
    };
    let y_of = |row: u32| TITLE + row * (LABEL + ph + MARGIN) + LABEL;
    caption(&mut img, p.title, (MARGIN as i32, 6), 18)?;
    draw_digit(&mut img, p, (x_of(0), y_of(0)), (x_of(0), y_of(1)))?;
    let pick = |a: &ndarray::Array3<f32>| -> Array2<f32> {
        a.index_axis(Axis(1), p.index).select(Axis(1), p.order)
    };
    let (cmax, hmax) = (robust_max(&pick(&tr.cell)), robust_max(&pick(&tr.hidden)));
    // (name, [T, H] in the unit order, (column, row), ± scale of a signed panel)
    let panels: [Panel; 5] = [
        ("input gate i", pick(&tr.input), (1, 0), None),
        ("forget gate f", pick(&tr.forget), (2, 0), None),
        ("output gate o", pick(&tr.output), (3, 0), None),
        ("cell state c", pick(&tr.cell), (1, 1), Some(cmax)),
        ("hidden state h", pick(&tr.hidden), (2, 1), Some(hmax)),
    ];
    let scale = (unit_px(h), STEP_PX);
    for (name, a, (col, row), signed) in panels {
        let (x, y) = (x_of(col), y_of(row));
        match signed {
            Some(m) => blit_xy(&mut img, a.view(), x, y, scale, |v| diverging(v / m)),
            None => blit_xy(&mut img, a.view(), x, y, scale, sequential),
        }
        let range = if let Some(m) = signed {
            format!(" (±{m:.2})")
        } else {
            " (0…1)".into()
        };
        caption(
            &mut img,
            &format!("{name}{range}"),
            (x as i32, y as i32 - 17),
            14,
        )?;
    }
    legend(&mut img, x_of(3), y_of(1), hw)?;
    Ok(img)
}

/// The digit at `at`, and below it (at `attr_at`) the attribution over a faint copy.
fn draw_digit(
    img: &mut RgbImage,
    p: &InspectPanels,
    at: (u32, u32),
    attr_at: (u32, u32),
) -> Result<()> {
    blit(img, p.digit, at.0, at.1, STEP_PX, grey);
    caption(
        img,
        "digit (row t = step t)",
        (at.0 as i32, at.1 as i32 - 17),
        14,
    )?;
    let amax = p.attribution.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
    let shaded = ndarray::Zip::from(&p.attribution)
        .and(&p.digit)
        .map_collect(|&a, &d| (a / amax, d));
    draw_pairs(img, shaded.view(), attr_at.0, attr_at.1);
    let label = format!("gradient × input (±{amax:.2})");
    caption(img, &label, (attr_at.0 as i32, attr_at.1 as i32 - 17), 14)
}

/// The 98th percentile of `|a|`: the colour scale of a state panel, so that a few
/// saturated units do not wash out the rest (values beyond it show at full colour).
fn robust_max(a: &Array2<f32>) -> f32 {
    let mut v: Vec<f32> = a
        .iter()
        .map(|x| x.abs())
        .filter(|x| x.is_finite())
        .collect();
    if v.is_empty() {
        return 1.0;
    }
    let k = ((v.len() - 1) as f32 * 0.98) as usize;
    let (_, m, _) = v.select_nth_unstable_by(k, f32::total_cmp);
    m.max(1e-6)
}

/// Attribution in the diverging map, darkened where the digit has ink.
fn draw_pairs(img: &mut RgbImage, a: ArrayView2<(f32, f32)>, x0: u32, y0: u32) {
    for ((r, c), &(v, ink)) in a.indexed_iter() {
        let k = 1.0 - 0.35 * ink.clamp(0.0, 1.0);
        let [cr, cg, cb] = diverging(v);
        let px = Rgb([
            (cr as f32 * k) as u8,
            (cg as f32 * k) as u8,
            (cb as f32 * k) as u8,
        ]);
        for dy in 0..STEP_PX {
            for dx in 0..STEP_PX {
                img.put_pixel(
                    x0 + c as u32 * STEP_PX + dx,
                    y0 + r as u32 * STEP_PX + dy,
                    px,
                );
            }
        }
    }
}

/// Colour keys and how to read the panels.
fn legend(img: &mut RgbImage, x: u32, y: u32, w: u32) -> Result<()> {
    let bar = |img: &mut RgbImage, y: u32, f: &dyn Fn(f32) -> [u8; 3]| {
        for dx in 0..w {
            let v = dx as f32 / (w.max(2) - 1) as f32;
            for dy in 0..12 {
                img.put_pixel(x + dx, y + dy, Rgb(f(v)));
            }
        }
    };
    bar(img, y + 4, &sequential);
    caption(img, "gates: 0 → 1", (x as i32, y as i32 + 18), 13)?;
    bar(img, y + 44, &|v| diverging(2.0 * v - 1.0));
    caption(
        img,
        "states, attribution: − 0 +",
        (x as i32, y as i32 + 58),
        13,
    )?;
    let notes = [
        "time runs down (28 steps);",
        "units run across, sorted by the",
        "step of their peak |h|",
    ];
    for (k, n) in notes.iter().enumerate() {
        caption(img, n, (x as i32, (y + 92 + 17 * k as u32) as i32), 13)?;
    }
    Ok(())
}
