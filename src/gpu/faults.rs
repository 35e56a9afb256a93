//! What wgpu reports outside a call's error scopes, kept for the next call.

use std::sync::{Arc, Mutex};

use crate::error::{LstmError, Result};

/// What wgpu reports outside a call's error scopes: a lost device, or an error no
/// scope caught (wgpu's default would panic). The next call returns it as an error.
#[derive(Default)]
pub(crate) struct Faults {
    lost: Mutex<Option<String>>,
    uncaptured: Mutex<Option<wgpu::Error>>,
}

impl Faults {
    /// Routes the device's lost callback and uncaptured errors here.
    pub(crate) fn watch(device: &wgpu::Device) -> Arc<Faults> {
        let faults = Arc::new(Faults::default());
        let f = faults.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut lost) = f.lost.lock() {
                *lost = Some(format!("{reason:?}: {msg}"));
            }
        });
        let f = faults.clone();
        device.on_uncaptured_error(Arc::new(move |e| {
            if let Ok(mut slot) = f.uncaptured.lock() {
                slot.get_or_insert(e);
            }
        }));
        faults
    }

    /// A lost device, or an error that no scope caught since the last check.
    pub(crate) fn check(&self, during: &'static str) -> Result<()> {
        if let Some(why) = self.lost.lock().ok().and_then(|l| l.clone()) {
            return Err(LstmError::DeviceLost(why));
        }
        match self.uncaptured.lock().ok().and_then(|mut e| e.take()) {
            Some(source) => Err(LstmError::Gpu { during, source }),
            None => Ok(()),
        }
    }
}
