//! Where the Dense head meets the recurrent layers, for any cell: which rows it reads
//! (the top layer's final states, or every step's output) and how its input gradient
//! flows back (into `h_n`, or into `y`). The CPU backends share it.

use ndarray::{s, Array2, Array3, Axis};

use crate::config::LstmConfig;
use crate::train::optimizer::Target;

/// The Dense layer's input rows: the top layer's final states `[B, D·H]` (last step)
/// or the output sequence as time-major rows `[T·B, D·H]` (every step).
pub(crate) fn head_features(
    c: &LstmConfig,
    target: Target,
    y: &Array3<f32>,
    h_n: &Array3<f32>,
) -> Array2<f32> {
    match target {
        Target::LastStep => {
            let (d, b, h) = (c.num_directions(), h_n.dim().1, c.hidden_size);
            let top = (c.num_layers - 1) * d;
            let mut f = Array2::zeros((b, d * h));
            for k in 0..d {
                f.slice_mut(s![.., k * h..(k + 1) * h])
                    .assign(&h_n.index_axis(Axis(0), top + k));
            }
            f
        }
        Target::EveryStep => {
            let y = if c.batch_first {
                y.view().permuted_axes([1, 0, 2])
            } else {
                y.view()
            };
            let y = y.as_standard_layout().into_owned();
            let (t, b, f) = y.dim();
            y.into_shape_with_order((t * b, f))
                .expect("standard layout")
        }
    }
}

/// The gradient of the features ([`head_features`]) sent back as `(∂L/∂h_n, ∂L/∂y)`:
/// `y_dim` and `h_n_dim` are the forward's output shapes.
pub(crate) fn head_upstream(
    c: &LstmConfig,
    target: Target,
    dfeat: Array2<f32>,
    y_dim: (usize, usize, usize),
    h_n_dim: (usize, usize, usize),
) -> (Array3<f32>, Option<Array3<f32>>) {
    let (d, h) = (c.num_directions(), c.hidden_size);
    let mut dh_n = Array3::<f32>::zeros(h_n_dim);
    match target {
        Target::LastStep => {
            let top = (c.num_layers - 1) * d;
            for k in 0..d {
                dh_n.index_axis_mut(Axis(0), top + k)
                    .assign(&dfeat.slice(s![.., k * h..(k + 1) * h]));
            }
            (dh_n, None)
        }
        Target::EveryStep => {
            let (t, b) = if c.batch_first {
                (y_dim.1, y_dim.0)
            } else {
                (y_dim.0, y_dim.1)
            };
            let tm = dfeat
                .into_shape_with_order((t, b, d * h))
                .expect("rows are time-major");
            let dy = if c.batch_first {
                tm.permuted_axes([1, 0, 2])
                    .as_standard_layout()
                    .into_owned()
            } else {
                tm
            };
            (dh_n, Some(dy))
        }
    }
}
