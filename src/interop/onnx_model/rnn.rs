//! What the LSTM and GRU nodes share: where they run, their `direction` and `layout`
//! attributes, the attributes this crate's kernels cannot honour, and the moves between
//! ONNX's tensor layouts and the crate's (time-major `[T, B, ·]`, states `[D, B, H]`).

use std::sync::Arc;

use ndarray::{s, Array3, ArrayD, Axis, Ix3};

use super::node::Node;
use crate::error::{LstmError, Result};
use crate::gpu::GpuContext;

/// Where a model's RNN nodes run; the glue ops always run on the host.
#[derive(Clone)]
pub enum Device {
    /// The CPU reference path (`cpu::forward`, `cpu::gru_forward`).
    Cpu,
    /// The GPU kernels on this context (`GpuLstm`, `GpuGru`).
    Gpu(Arc<GpuContext>),
}

/// ONNX's `direction` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reverse,
    Bidirectional,
}

impl Direction {
    pub fn count(self) -> usize {
        if self == Direction::Bidirectional {
            2
        } else {
            1
        }
    }
}

/// The attributes both RNN ops read, checked.
pub struct RnnAttrs {
    pub direction: Direction,
    /// `hidden_size` when given (else told by `R`).
    pub hidden_size: Option<usize>,
    /// `layout = 1`: X is `[B, T, I]`, Y `[B, T, D, H]`, states `[B, D, H]`.
    pub batch_first: bool,
}

impl RnnAttrs {
    /// Reads `direction`, `hidden_size`, `layout`; refuses the attributes that change the
    /// cell's math, which this crate's kernels fix: `activations` other than `defaults`
    /// (per direction), `activation_alpha`/`activation_beta`, `clip`.
    pub fn read(n: &Node, defaults: &[&str]) -> Result<Self> {
        let direction = match n.string_attr("direction")?.as_deref() {
            None | Some("forward") => Direction::Forward,
            Some("reverse") => Direction::Reverse,
            Some("bidirectional") => Direction::Bidirectional,
            Some(other) => {
                return Err(unsupported(
                    "direction",
                    format!("'{other}' is not forward, reverse or bidirectional"),
                ))
            }
        };
        if let Some(a) = n.attr("activations") {
            let names: Vec<String> = a
                .strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into())
                .collect();
            let default = names.len().is_multiple_of(defaults.len())
                && names
                    .iter()
                    .enumerate()
                    .all(|(i, s)| s.eq_ignore_ascii_case(defaults[i % defaults.len()]));
            if !default {
                return Err(unsupported(
                    "activations",
                    format!("{names:?}: only the default {defaults:?} is supported"),
                ));
            }
        }
        for name in ["activation_alpha", "activation_beta"] {
            if n.attr(name).is_some_and(|a| !a.floats.is_empty()) {
                return Err(unsupported(
                    name,
                    "the default activations take no alpha or beta",
                ));
            }
        }
        if n.attr("clip").is_some() {
            return Err(unsupported(
                "clip",
                "clipping the gate inputs is not supported",
            ));
        }
        let hidden_size = match n.int_attr("hidden_size", 0)? {
            0 => None,
            h => Some(
                usize::try_from(h)
                    .map_err(|_| unsupported("hidden_size", format!("{h} is negative")))?,
            ),
        };
        let batch_first = match n.int_attr("layout", 0)? {
            0 => false,
            1 => true,
            l => return Err(unsupported("layout", format!("{l} is not 0 or 1"))),
        };
        Ok(RnnAttrs {
            direction,
            hidden_size,
            batch_first,
        })
    }

    /// Input `X` as time-major `[T, B, I]`.
    pub fn time_major_x(&self, x: &ArrayD<f32>) -> Result<Array3<f32>> {
        let x = three_d(
            x,
            "input 0 (X)",
            if self.batch_first {
                "[B, T, I]"
            } else {
                "[T, B, I]"
            },
        )?;
        Ok(if self.batch_first {
            x.permuted_axes([1, 0, 2]).as_standard_layout().into_owned()
        } else {
            x
        })
    }

    /// An initial state input as `[D, B, H]` (`[B, D, H]` under layout 1), checked.
    pub fn state(
        &self,
        v: Option<&ArrayD<f32>>,
        what: &str,
        want: [usize; 3],
    ) -> Result<Option<Array3<f32>>> {
        let Some(v) = v else { return Ok(None) };
        let [d, b, h] = want;
        let (file_shape, layout) = if self.batch_first {
            ([b, d, h], "[B, D, H]")
        } else {
            (want, "[D, B, H]")
        };
        if v.shape() != file_shape {
            return Err(LstmError::shape(
                what,
                format!("{layout} = {file_shape:?}"),
                format!("{:?}", v.shape()),
            ));
        }
        let a = three_d(v, what, layout)?;
        Ok(Some(if self.batch_first {
            a.permuted_axes([1, 0, 2]).as_standard_layout().into_owned()
        } else {
            a
        }))
    }

    /// The crate's `y` `[T, B, D·H]` as ONNX's `Y`: `[T, D, B, H]`, or `[B, T, D, H]` under layout 1.
    pub fn y_output(&self, y: Array3<f32>, d: usize) -> ArrayD<f32> {
        let (t, b, dh) = y.dim();
        let y4 = y
            .into_shape_with_order((t, b, d, dh / d))
            .expect("D·H columns");
        let perm = if self.batch_first {
            [1, 0, 2, 3]
        } else {
            [0, 2, 1, 3]
        };
        y4.permuted_axes(perm)
            .as_standard_layout()
            .into_owned()
            .into_dyn()
    }

    /// A final state `[D, B, H]` as ONNX's `Y_h`/`Y_c` (`[B, D, H]` under layout 1).
    pub fn state_output(&self, s: Array3<f32>) -> ArrayD<f32> {
        let s = if self.batch_first {
            s.permuted_axes([1, 0, 2]).as_standard_layout().into_owned()
        } else {
            s
        };
        s.into_dyn()
    }
}

/// An error naming an attribute this crate cannot honour.
pub fn unsupported(attr: &str, reason: impl Into<String>) -> LstmError {
    LstmError::format(
        format!("attribute {attr}"),
        format!("{} (not supported by lstm-wgpu)", reason.into()),
    )
}

/// A 3-D view of `a`, or a shape error naming it.
pub fn three_d(a: &ArrayD<f32>, what: &str, layout: &str) -> Result<Array3<f32>> {
    a.view()
        .into_dimensionality::<Ix3>()
        .map(|v| v.to_owned())
        .map_err(|_| LstmError::shape(what, layout, format!("{:?}", a.shape())))
}

/// The `sequence_lens` input (`[B]`) as lengths in `1..=T`.
pub fn lengths(v: Option<&ArrayD<i64>>, t: usize, b: usize) -> Result<Option<Vec<usize>>> {
    let Some(v) = v else { return Ok(None) };
    if v.shape() != [b] {
        return Err(LstmError::shape(
            "input sequence_lens",
            format!("[B] = [{b}]"),
            format!("{:?}", v.shape()),
        ));
    }
    v.iter()
        .enumerate()
        .map(|(i, &l)| {
            usize::try_from(l)
                .ok()
                .filter(|l| (1..=t).contains(l))
                .ok_or_else(|| {
                    LstmError::value(
                        format!("sequence_lens[{i}]"),
                        format!("{l} is outside 1..={t}"),
                    )
                })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Each sequence's valid steps in reverse order (`out[t, b] = x[len_b - 1 - t, b]`),
/// zeros past its length: a direction="reverse" node runs as a forward pass over this,
/// and the same map turns its output back.
pub fn reverse_in_time(x: &Array3<f32>, lens: &[usize]) -> Array3<f32> {
    let mut out = Array3::zeros(x.dim());
    for (b, &len) in lens.iter().enumerate() {
        for t in 0..len {
            out.slice_mut(s![t, b, ..])
                .assign(&x.slice(s![len - 1 - t, b, ..]));
        }
    }
    out
}

/// `[D, B, H]` zeros when a node gives one of `initial_h`/`initial_c` but not the other.
pub fn zeros_like(a: &Array3<f32>) -> Array3<f32> {
    Array3::zeros(a.dim())
}

/// Lengths, all `T` when the node gives none.
pub fn all_lengths(lens: &Option<Vec<usize>>, x: &Array3<f32>) -> Vec<usize> {
    lens.clone()
        .unwrap_or_else(|| vec![x.len_of(Axis(0)); x.len_of(Axis(1))])
}
