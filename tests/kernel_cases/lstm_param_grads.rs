//! `lstm_param_grads.wgsl` alone against `cpu::lstm_param_grads` (see tests/kernels.rs).

use crate::common::*;
use lstm_wgpu::cpu;
use lstm_wgpu::gpu::kernels;
use lstm_wgpu::GpuContext;

pub fn lstm_param_grads_cases(ctx: &GpuContext, form: &str) {
    // (R, H): one row of one unit; H off the 64-unit workgroup and past one; many rows;
    // 600 and 1100 rows, which the tiled form splits (2 and 4 slices, the last short).
    let shapes = [
        (1, 1),
        (5, 7),
        (34, 33),
        (2, 65),
        (130, 9),
        (600, 9),
        (1100, 70),
    ];
    for diagonal in [false, true] {
        for (n, &(rows, h)) in shapes.iter().enumerate() {
            let seed = 200 + 10 * n as u64;
            let dz = random((rows, 4 * h), seed);
            let gates = random_gates(rows, h, seed + 1);
            let c_prev = random((rows, h), seed + 2) * 2.0;
            let (dzv, gv, cv) = (dz.view(), gates.view(), c_prev.view());
            let want = cpu::lstm_param_grads(dzv, gv, cv, diagonal).unwrap();
            let got = kernels::lstm_param_grads::run(ctx, dzv, gv, cv, diagonal, true).unwrap();
            let tag = format!("{form} diagonal={diagonal} R={rows} H={h}");
            assert_close(&format!("db {tag}"), &got.0, &want.0, GPU_ATOL, GPU_RTOL);
            match (&got.1, &want.1) {
                (Some(g), Some(w)) => assert_close(&format!("dp {tag}"), g, w, GPU_ATOL, GPU_RTOL),
                (None, None) => {}
                (g, w) => panic!("dp {tag}: got {g:?}, want {w:?}"),
            }
            // Accumulate mode (chunked training): the sums are added to what is there.
            let (db0, dp0) = (random(4 * h, seed + 3), random(3 * h, seed + 4));
            let onto = Some((db0.view(), dp0.view()));
            let got = kernels::lstm_param_grads::run_onto(ctx, dzv, gv, cv, diagonal, true, onto)
                .unwrap();
            let db_want = &want.0 + &db0;
            assert_close(
                &format!("db onto {tag}"),
                &got.0,
                &db_want,
                GPU_ATOL,
                GPU_RTOL,
            );
            if let (Some(g), Some(w)) = (&got.1, &want.1) {
                assert_close(
                    &format!("dp onto {tag}"),
                    g,
                    &(w + &dp0),
                    GPU_ATOL,
                    GPU_RTOL,
                );
            }
        }
    }
}
