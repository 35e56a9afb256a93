//! How to train: the one settings type ([`TrainConfig`]) that the CPU and the GPU
//! classifier both read, and the per-step update rule both optimizer kernels take.

use crate::cpu::UpdateRule;

/// Parameter update rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    Adam { beta1: f32, beta2: f32, eps: f32 },
    Sgd { momentum: f32 },
}

impl Optimizer {
    /// torch.optim.Adam's defaults.
    pub fn adam() -> Self {
        Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// Where the labels sit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Target {
    /// Many-to-one: one label per sequence, read from the top layer's final state
    /// (both directions' `h_n` concatenated, as `torch.cat([h_n[-2], h_n[-1]], 1)`).
    #[default]
    LastStep,
    /// Many-to-many: one label per valid time step, read from the output sequence.
    EveryStep,
}

/// How to train.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    pub lr: f32,
    pub optimizer: Optimizer,
    /// L2 penalty added to the gradient (torch.optim's `weight_decay`).
    pub weight_decay: f32,
    /// Clip the gradient to this global L2 norm.
    pub clip_norm: Option<f32>,
    pub target: Target,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            lr: 1e-3,
            optimizer: Optimizer::adam(),
            weight_decay: 0.0,
            clip_norm: None,
            target: Target::LastStep,
        }
    }
}

impl TrainConfig {
    /// The settings of optimizer step `t` (from 1), as `cpu::optimizer_update` and
    /// `shaders/optimizer_update.wgsl` take them.
    pub fn update_rule(&self, t: u64) -> UpdateRule {
        let (adam, beta1, beta2, eps) = match self.optimizer {
            Optimizer::Adam { beta1, beta2, eps } => (true, beta1, beta2, eps),
            Optimizer::Sgd { momentum } => (false, momentum, 0.0, 0.0),
        };
        UpdateRule {
            adam,
            lr: self.lr,
            beta1,
            beta2,
            eps,
            weight_decay: self.weight_decay,
            max_norm: self.clip_norm.unwrap_or(0.0),
            t,
        }
    }
}
