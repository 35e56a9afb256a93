//! Choosing where a classifier runs.

use std::sync::Arc;

use super::cpu::CpuClassifier;
use super::gpu::GpuClassifier;
use super::gru_cpu::GruClassifier;
use super::model::GruClassifierParams;
use super::model::{Classifier, ClassifierParams};
use crate::error::Result;
use crate::gpu::GpuContext;
use crate::train::optimizer::TrainConfig;

/// Where a classifier runs.
#[derive(Clone)]
pub enum Device {
    /// The CPU reference path.
    Cpu,
    /// The GPU path on this context.
    Gpu(Arc<GpuContext>),
}

impl Device {
    /// A classifier with `params` and `cfg` on this device.
    pub fn classifier(
        &self,
        params: &ClassifierParams,
        cfg: TrainConfig,
    ) -> Result<Box<dyn Classifier>> {
        Ok(match self {
            Device::Cpu => Box::new(CpuClassifier::new(params.clone(), cfg)?),
            Device::Gpu(ctx) => Box::new(GpuClassifier::new(ctx.clone(), params, cfg)?),
        })
    }

    /// A GRU classifier with `params` and `cfg` on this device.
    pub fn gru_classifier(
        &self,
        params: &GruClassifierParams,
        cfg: TrainConfig,
    ) -> Result<Box<dyn Classifier>> {
        Ok(match self {
            Device::Cpu => Box::new(GruClassifier::new(params.clone(), cfg)?),
            Device::Gpu(ctx) => Box::new(GpuClassifier::new_gru(ctx.clone(), params, cfg)?),
        })
    }
}
