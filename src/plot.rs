//! Training curves as a PNG: loss per epoch on the left, train and test accuracy on
//! the right.
//!
//! Text is drawn with an embedded font (Liberation Sans, SIL OFL 1.1, in
//! `assets/fonts/`) through plotters' `ab_glyph` feature, so plotting works on a machine
//! with no system fonts and needs no font lookup at run time.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::error::{LstmError, Result};

/// One epoch's numbers. Accuracies are fractions in `[0, 1]`; the plot shows percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochPoint {
    pub epoch: usize,
    pub train_loss: f64,
    /// Fraction of training examples classified correctly, `[0, 1]`.
    pub train_acc: f64,
    /// Fraction of test examples classified correctly, `[0, 1]`.
    pub test_acc: f64,
}

/// Size of the PNG that [`plot_training`] writes, in pixels.
pub const PLOT_SIZE: (u32, u32) = (900, 450);

/// The embedded font: Liberation Sans Regular 2.1.5 (SIL Open Font License 1.1).
static FONT: &[u8] = include_bytes!("../assets/fonts/LiberationSans-Regular.ttf");
const FAMILY: &str = "sans-serif";

const TRAIN_COLOUR: RGBColor = RGBColor(31, 119, 180);
const TEST_COLOUR: RGBColor = RGBColor(230, 110, 0);

/// Registers the embedded font under plotters' "sans-serif" family, once per process.
fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    if *REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT).is_ok()) {
        Ok(())
    } else {
        Err(LstmError::format(
            "embedded plot font",
            "assets/fonts/LiberationSans-Regular.ttf could not be parsed",
        ))
    }
}

/// Writes a `PLOT_SIZE` PNG to `path`: loss per epoch on the left, train and test
/// accuracy (%) per epoch on the right, each with axes, tick labels and a legend, under
/// `title`. Points may come in any order; non-finite values (a diverged loss) are left
/// out of the curves.
///
/// Errors: [`LstmError::Value`] for no points or an accuracy outside `[0, 1]`;
/// [`LstmError::Io`] when the PNG cannot be drawn or written (e.g. a missing folder).
pub fn plot_training(path: &Path, title: &str, points: &[EpochPoint]) -> Result<()> {
    if points.is_empty() {
        return Err(LstmError::value("training plot", "no epochs to plot"));
    }
    for p in points {
        for (name, v) in [("train_acc", p.train_acc), ("test_acc", p.test_acc)] {
            if v.is_finite() && !(0.0..=1.0).contains(&v) {
                return Err(LstmError::value(
                    format!("{name} of epoch {}", p.epoch),
                    format!("{v} is not a fraction in [0, 1]"),
                ));
            }
        }
    }
    ensure_font()?;
    let mut points = points.to_vec();
    points.sort_by_key(|p| p.epoch);
    draw(path, title, &points).map_err(|e| {
        LstmError::io(
            path,
            std::io::Error::other(format!("drawing the training plot: {e}")),
        )
    })
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// `(epoch, value)` pairs of the finite values of one series.
fn series(points: &[EpochPoint], f: impl Fn(&EpochPoint) -> f64, scale: f64) -> Vec<(f64, f64)> {
    points
        .iter()
        .map(|p| (p.epoch as f64, f(p) * scale))
        .filter(|(_, v)| v.is_finite())
        .collect()
}

type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
type Panel<'b> = DrawingArea<BitMapBackend<'b>, Shift>;

/// The epoch axis, shared by both panels: padded so the end markers are not clipped,
/// ticks only on whole epochs.
struct EpochAxis {
    range: std::ops::Range<f64>,
    ticks: usize,
}

impl EpochAxis {
    /// `points` sorted by epoch, not empty.
    fn new(points: &[EpochPoint]) -> Self {
        let (first, last) = (points[0].epoch, points[points.len() - 1].epoch);
        let pad = ((last as f64 - first as f64) * 0.04).max(0.3);
        EpochAxis {
            range: (first as f64 - pad)..(last as f64 + pad),
            ticks: (last - first).saturating_add(1).clamp(2, 10),
        }
    }

    fn label(x: &f64) -> String {
        if (x - x.round()).abs() < 1e-6 {
            format!("{}", x.round())
        } else {
            String::new()
        }
    }
}

fn draw(path: &Path, title: &str, points: &[EpochPoint]) -> DrawResult {
    let root = BitMapBackend::new(path, PLOT_SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let body = root.titled(title, (FAMILY, 24).into_font().color(&BLACK))?;
    let (left, right) = body.split_horizontally(PLOT_SIZE.0 / 2);
    let axis = EpochAxis::new(points);
    draw_loss(&left, &axis, points)?;
    draw_accuracy(&right, &axis, points)?;
    root.present()?;
    Ok(())
}

/// A panel's chart with its caption, axes, grid and axis labels.
fn chart<'a, 'b>(
    panel: &'a Panel<'b>,
    caption: &str,
    axis: &EpochAxis,
    y_range: std::ops::Range<f64>,
    y_labels: usize,
    y_format: &dyn Fn(&f64) -> String,
    y_desc: &str,
) -> std::result::Result<Chart<'a, 'b>, Box<dyn std::error::Error>> {
    let mut chart = ChartBuilder::on(panel)
        .caption(caption, (FAMILY, 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(axis.range.clone(), y_range)?;
    chart
        .configure_mesh()
        .x_labels(axis.ticks)
        .x_label_formatter(&EpochAxis::label)
        .y_labels(y_labels)
        .y_label_formatter(y_format)
        .x_desc("epoch")
        .y_desc(y_desc)
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .bold_line_style(RGBColor(210, 210, 210))
        .light_line_style(RGBColor(240, 240, 240))
        .max_light_lines(1)
        .draw()?;
    Ok(chart)
}

/// One series: a line with a marker on each point, and its legend entry.
fn draw_curve(
    chart: &mut Chart,
    data: &[(f64, f64)],
    colour: RGBColor,
    label: String,
) -> DrawResult {
    chart
        .draw_series(LineSeries::new(data.to_vec(), colour.stroke_width(2)))?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    chart.draw_series(
        data.iter()
            .map(move |&(x, y)| Circle::new((x, y), 3, colour.filled())),
    )?;
    Ok(())
}

fn draw_legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, position: SeriesLabelPosition) -> DrawResult {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FAMILY, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .draw()?;
    Ok(())
}

/// Left panel: training loss.
fn draw_loss(panel: &Panel, axis: &EpochAxis, points: &[EpochPoint]) -> DrawResult {
    let loss = series(points, |p| p.train_loss, 1.0);
    let loss_max = loss.iter().map(|&(_, v)| v).fold(0.0f64, f64::max);
    let loss_min = loss.iter().map(|&(_, v)| v).fold(0.0f64, f64::min);
    let loss_hi = if loss_max > loss_min {
        loss_max + (loss_max - loss_min) * 0.08
    } else {
        loss_min + 1.0
    };
    let mut chart = chart(
        panel,
        "Training loss",
        axis,
        loss_min..loss_hi,
        8,
        &|v| format!("{v:.2}"),
        "cross-entropy loss",
    )?;
    let last_loss = format!("{:.4}", points[points.len() - 1].train_loss);
    draw_curve(
        &mut chart,
        &loss,
        TRAIN_COLOUR,
        format!("train loss (last {last_loss})"),
    )?;
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// Right panel: accuracy in percent, zoomed to the range the curves use.
fn draw_accuracy(panel: &Panel, axis: &EpochAxis, points: &[EpochPoint]) -> DrawResult {
    let train = series(points, |p| p.train_acc, 100.0);
    let test = series(points, |p| p.test_acc, 100.0);
    let acc_min = train
        .iter()
        .chain(&test)
        .map(|&(_, v)| v)
        .fold(100.0f64, f64::min);
    let acc_lo = (((acc_min - 1.0) / 5.0).floor() * 5.0).clamp(0.0, 95.0);
    let acc_hi = 100.0 + (100.0 - acc_lo) * 0.04;
    let mut chart = chart(
        panel,
        "Accuracy",
        axis,
        acc_lo..acc_hi,
        10,
        &|v| format!("{v:.0}%"),
        "accuracy (%)",
    )?;
    let last_point = points[points.len() - 1];
    for (name, data, last, colour) in [
        ("train", &train, last_point.train_acc, TRAIN_COLOUR),
        ("test", &test, last_point.test_acc, TEST_COLOUR),
    ] {
        let last = if last.is_finite() {
            format!("{:.2}%", last * 100.0)
        } else {
            format!("{last}")
        };
        draw_curve(&mut chart, data, colour, format!("{name} (last {last})"))?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::LowerRight)
}
