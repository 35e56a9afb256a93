//! Subgroup shuffles for the split-K step's lane sums (`lanes_subgroup.wgsl`), where the
//! adapter has them (`wgpu::Features::SUBGROUP`) and a probe confirms how a workgroup
//! lies on its subgroups; everywhere else the portable form (`lanes_portable.wgsl`).
//! Both sum in the same order, so results are the same bits either way.

/// Whether to use subgroups where the adapter has them: `LSTM_SUBGROUPS` = `0`, `false`
/// or `off` turns them off (comparisons, a driver that gets them wrong); anything else
/// or unset, on.
pub(crate) fn wanted(option: Option<bool>) -> bool {
    let off = |v: String| ["0", "false", "off"].contains(&v.to_ascii_lowercase().as_str());
    option.unwrap_or_else(|| !std::env::var("LSTM_SUBGROUPS").is_ok_and(off))
}

/// The feature to request: `SUBGROUP` where wanted and the adapter has it.
pub(crate) fn feature(adapter: &wgpu::Adapter, wanted: bool) -> wgpu::Features {
    match wanted {
        true => adapter.features() & wgpu::Features::SUBGROUP,
        false => wgpu::Features::empty(),
    }
}

/// How many neighbouring lanes of a unit `lanes_sum` may sum by shuffles (its
/// `SHUFFLE_BELOW`): the adapter's smallest subgroup size (at most 32, the lanes of a
/// unit; at least 4, the rows whose sums the lanes below it return) if the device has
/// `SUBGROUP` and the probe saw every invocation where the shuffles assume it; 1 (none:
/// the portable form) otherwise, a failed probe included.
pub(crate) fn shuffle_lanes(device: &wgpu::Device, queue: &wgpu::Queue, smallest: u32) -> u32 {
    if !device.features().contains(wgpu::Features::SUBGROUP) {
        return 1;
    }
    let smallest = smallest.min(32);
    if smallest < 4 || !smallest.is_power_of_two() {
        return 1;
    }
    match probe(device, queue) {
        Some(sizes) if sizes.iter().all(|&s| s >= smallest) => smallest,
        _ => 1,
    }
}

/// Runs `probe_subgroups.wgsl` once, while the context is being made (so on the bare
/// device, with its own readback): what each of 64 invocations saw (0: a lane or a
/// shuffle not where assumed; else its subgroup's size), or `None` on any error.
fn probe(device: &wgpu::Device, queue: &wgpu::Queue) -> Option<Vec<u32>> {
    // Every kind of error (a driver that fails to compile the probe reports Internal):
    // caught here, none is left for the context's first call.
    let filters = [
        wgpu::ErrorFilter::Validation,
        wgpu::ErrorFilter::OutOfMemory,
        wgpu::ErrorFilter::Internal,
    ];
    let scopes = filters.map(|f| device.push_error_scope(f));
    let words = run_probe(device, queue);
    let mut failed = false;
    for scope in scopes.into_iter().rev() {
        failed |= pollster::block_on(scope.pop()).is_some();
    }
    words.filter(|_| !failed)
}

fn run_probe(device: &wgpu::Device, queue: &wgpu::Queue) -> Option<Vec<u32>> {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("probe_subgroups"),
        source: wgpu::ShaderSource::Wgsl(super::kernels::PROBE_SUBGROUPS.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("probe_subgroups"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    // Zero-filled: an invocation that writes nothing reads as a failed check.
    let buffer = |usage| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("probe_subgroups"),
            size: 64 * 4,
            usage,
            mapped_at_creation: false,
        })
    };
    let seen = buffer(wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC);
    let staging = buffer(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
    let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("probe_subgroups"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: seen.as_entire_binding(),
        }],
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(1, 1, 1);
    }
    encoder.copy_buffer_to_buffer(&seen, 0, &staging, 0, 64 * 4);
    queue.submit([encoder.finish()]);
    let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
    staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    device.poll(wgpu::PollType::wait_indefinitely()).ok()?;
    pollster::block_on(rx.receive())?.ok()?;
    let words = staging
        .get_mapped_range(..)
        .map(|view| bytemuck::cast_slice::<u8, u32>(&view).to_vec())
        .ok();
    staging.unmap();
    words
}
