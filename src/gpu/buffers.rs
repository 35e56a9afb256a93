//! Every buffer and bind group the crate makes, and the GPU-resident data types.
//!
//! Creation goes through these functions so that `GpuContext` can count it (a
//! repeated call of the same job should create nothing: see
//! [`GpuContext::creation_counts`]).

use std::num::NonZeroU64;

use super::context::GpuContext;

/// A time-major `[T, B, F]` sequence that lives in a GPU buffer.
pub struct GpuSequence {
    pub buffer: wgpu::Buffer,
    pub t: usize,
    pub b: usize,
    pub features: usize,
}

/// Recurrent state `[L·D, B, H]` in GPU buffers (PyTorch's `h_n`/`c_n` layout).
pub struct GpuState {
    pub h: wgpu::Buffer,
    pub c: wgpu::Buffer,
}

impl GpuState {
    /// A host state `[L·D, B, H]` uploaded as two GPU buffers.
    pub(crate) fn upload(ctx: &GpuContext, s: &crate::sequence::LstmState) -> GpuState {
        let flat =
            |a: &ndarray::Array3<f32>| a.as_standard_layout().iter().copied().collect::<Vec<f32>>();
        GpuState {
            h: storage_init(ctx, "h_0", &flat(&s.h)),
            c: storage_init(ctx, "c_0", &flat(&s.c)),
        }
    }
}

const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

/// A storage buffer initialised from `data`.
pub(crate) fn storage_init(ctx: &GpuContext, label: &str, data: &[f32]) -> wgpu::Buffer {
    init_bytes(ctx, label, bytemuck::cast_slice(data), STORAGE)
}

/// A storage buffer of `floats` f32, NaN-filled when `poison` (tests: an element a
/// kernel forgets to write shows up), else zeroed by wgpu.
pub(crate) fn new_storage(
    ctx: &GpuContext,
    label: &str,
    floats: usize,
    poison: bool,
) -> wgpu::Buffer {
    if poison {
        return storage_init(ctx, label, &vec![f32::NAN; floats]);
    }
    ctx.count_buffer(4 * floats as u64);
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: 4 * floats as u64,
        usage: STORAGE,
        mapped_at_creation: false,
    })
}

/// A read-only storage buffer of `u32`s (sequence lengths, labels).
pub(crate) fn storage_u32(ctx: &GpuContext, label: &str, data: &[u32]) -> wgpu::Buffer {
    init_bytes(ctx, label, bytemuck::cast_slice(data), STORAGE)
}

/// A uniform buffer holding `value`.
pub(crate) fn uniform<T: bytemuck::Pod>(ctx: &GpuContext, label: &str, value: &T) -> wgpu::Buffer {
    // COPY_DST: a job keeps its uniforms and rewrites them per run.
    let usage = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST;
    init_bytes(ctx, label, bytemuck::bytes_of(value), usage)
}

fn init_bytes(
    ctx: &GpuContext,
    label: &str,
    bytes: &[u8],
    usage: wgpu::BufferUsages,
) -> wgpu::Buffer {
    ctx.count_buffer(bytes.len() as u64);
    // Not `create_buffer_init`: it panics when the buffer is invalid (beyond the
    // device's limits, or a lost device); this way wgpu reports a validation error to
    // the caller's error scope instead, and the context turns it into a typed error.
    let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.len() as u64,
        usage: usage | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    ctx.queue.write_buffer(&buffer, 0, bytes);
    buffer
}

/// A table of per-dispatch uniforms read through one dynamic-offset binding: entry `i`
/// sits at byte `i · align`. How a step kernel learns its time index inside one pass
/// (`queue.write_buffer` between dispatches would not work: all writes land before
/// the submit).
pub(crate) struct IndexTable {
    pub buffer: wgpu::Buffer,
    /// Bytes between entries: the device's uniform offset alignment (≥ 16).
    pub align: usize,
}

impl IndexTable {
    /// Fails (with the caller's words) when the table would exceed the device's limits.
    pub fn new<T: bytemuck::Pod>(
        ctx: &GpuContext,
        label: &str,
        entries: &[T],
    ) -> crate::Result<IndexTable> {
        let align = (ctx.limits().min_uniform_buffer_offset_alignment as usize).max(16);
        let len = entries.len().max(1) * align;
        if len as u64 > ctx.limits().max_buffer_size || len > u32::MAX as usize {
            return Err(crate::LstmError::DeviceLimit(format!(
                "{} entries of the {label} table exceed the buffer size the device allows",
                entries.len()
            )));
        }
        let mut bytes = vec![0u8; len];
        for (i, e) in entries.iter().enumerate() {
            let e = bytemuck::bytes_of(e);
            bytes[i * align..i * align + e.len()].copy_from_slice(e);
        }
        let buffer = init_bytes(ctx, label, &bytes, wgpu::BufferUsages::UNIFORM);
        Ok(IndexTable { buffer, align })
    }

    /// The dynamic binding of one entry of `size` bytes.
    pub fn binding(&self, size: u64) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: 0,
            size: NonZeroU64::new(size),
        })
    }

    /// The dynamic offset of entry `i`.
    pub fn offset(&self, i: usize) -> u32 {
        (i * self.align) as u32
    }
}

/// A bind group whose entries are `resources` at bindings 0, 1, 2, …
pub(crate) fn bind_group(
    ctx: &GpuContext,
    layout: &wgpu::BindGroupLayout,
    resources: &[wgpu::BindingResource],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = resources
        .iter()
        .enumerate()
        .map(|(i, r)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: r.clone(),
        })
        .collect();
    ctx.count_bind_group();
    ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout,
        entries: &entries,
    })
}
