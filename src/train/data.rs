//! A labelled data set of sequences and its batches, in the classifier's input layout.

use ndarray::{Array3, Axis};

use crate::data::Mnist;
use crate::error::{LstmError, Result};

/// `N` sequences, batch-first `[N, T, F]`, with one class label each.
#[derive(Clone, Debug)]
pub struct Dataset {
    x: Array3<f32>,
    labels: Vec<usize>,
}

impl Dataset {
    /// Checks that there is one label per sequence.
    pub fn new(x: Array3<f32>, labels: Vec<usize>) -> Result<Self> {
        if x.dim().0 != labels.len() {
            return Err(LstmError::shape(
                "dataset labels",
                format!("{} (one per sequence)", x.dim().0),
                labels.len().to_string(),
            ));
        }
        Ok(Dataset { x, labels })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// `[N, T, F]`.
    pub fn x(&self) -> &Array3<f32> {
        &self.x
    }

    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// Sequences `idx` as a batch-first `[B, T, F]` input and their labels.
    pub fn gather(&self, idx: &[usize]) -> Result<(Array3<f32>, Vec<usize>)> {
        if let Some(&i) = idx.iter().find(|&&i| i >= self.len()) {
            return Err(LstmError::value(
                "dataset index",
                format!("{i} is past the {} sequences", self.len()),
            ));
        }
        Ok((
            self.x.select(Axis(0), idx),
            idx.iter().map(|&i| self.labels[i]).collect(),
        ))
    }
}

impl From<&Mnist> for Dataset {
    /// Each image row is one time step: `[N, 28, 28]` is `[N, T = 28, F = 28]`.
    fn from(m: &Mnist) -> Self {
        Dataset {
            x: m.images.clone(),
            labels: m.labels.iter().map(|&l| l as usize).collect(),
        }
    }
}
