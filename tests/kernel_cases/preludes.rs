//! The storage preludes compiled in front of the kernels (see tests/kernels.rs): the
//! GEMM's operands (`matmul_operands_f32*.wgsl`) and the step's ping-pong state
//! (`state_f32*.wgsl`), each read through its accessors by the forms that use it.

use super::matmul_case;
use crate::common::*;
use lstm_wgpu::gpu::kernels;
use lstm_wgpu::gpu::kernels::matmul::MatmulParams;
use lstm_wgpu::{
    cpu, ForwardOptions, GpuContext, GpuGru, GpuLstm, GruConfig, GruOptions, GruWeights,
    LstmConfig, LstmWeights, Peephole,
};
use std::sync::Arc;

/// A software-form context with the written-out forms on or off.
fn software(quads: bool) -> Option<GpuContext> {
    let mut ctx = try_context()?;
    ctx.set_software_kernels(true);
    ctx.set_quad_forms(quads);
    Some(ctx)
}

/// Products whose operands start at each of the four floats of a vec4 and end at the
/// last float of their buffer (every offset and leading dimension aligned, or not).
fn products() -> Vec<MatmulParams> {
    let mut all = Vec::new();
    for (n, off) in [0, 4, 8, 12].into_iter().enumerate() {
        let (m, cols, k) = (5 + 4 * n, 8, 12);
        all.push(MatmulParams::new(m, cols, k).b_trans().offsets(off, off, n));
        all.push(
            MatmulParams::new(m + 3, cols, k)
                .a_trans()
                .offsets(off, 4, 0),
        );
        all.push(MatmulParams::new(m, cols, k).offsets(4, off, 1));
    }
    all
}

/// `matmul_operands_f32.wgsl`: the plain forms read every element of a and b through
/// `a_at`/`b_at`, aligned or not (the written-out forms off), against the CPU.
pub fn matmul_operands_f32_cases() {
    let Some(ctx) = software(false) else { return };
    for (n, p) in products().into_iter().enumerate() {
        matmul_case(&ctx, "operands f32", p, 2500 + 10 * n as u64);
        let shifted = p.offsets(p.a_off as usize + 1, p.b_off as usize + 3, 2);
        matmul_case(
            &ctx,
            "operands f32 unaligned",
            shifted,
            2505 + 10 * n as u64,
        );
    }
}

/// `matmul_operands_f32x4.wgsl`: the written-out forms read a and b as vec4s
/// (`a_at4`/`b_at4`: element i is vec4 i / 4) from every aligned start, up to the
/// buffer's last vec4: the same bits as the f32 operands, and the CPU's values.
pub fn matmul_operands_f32x4_cases() {
    let (Some(quads), Some(plain)) = (software(true), software(false)) else {
        return;
    };
    for (n, p) in products().into_iter().enumerate() {
        let seed = 2600 + 10 * n as u64;
        matmul_case(&quads, "operands f32x4", p, seed);
        let rows_a = if p.flags & MatmulParams::A_TRANS != 0 {
            p.k
        } else {
            p.m
        };
        let rows_b = if p.flags & MatmulParams::B_TRANS != 0 {
            p.n
        } else {
            p.k
        };
        // The operands end exactly at their last element: a whole number of vec4s.
        let whole = |off: u32, rows: u32, ld: u32| ((off + rows * ld) as usize).next_multiple_of(4);
        let a = random(whole(p.a_off, rows_a, p.lda), seed + 1).to_vec();
        let b = random(whole(p.b_off, rows_b, p.ldb), seed + 2).to_vec();
        let c = random((p.c_off + p.m * p.ldc) as usize, seed + 3).to_vec();
        let run = |ctx: &GpuContext| kernels::matmul::run(ctx, p, &a, &b, None, &c).unwrap();
        let (got, want) = (run(&quads), run(&plain));
        let same = got
            .iter()
            .zip(&want)
            .all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "operands f32x4 vs f32 {p:?}: results differ");
    }
}

/// The state preludes across a whole sequence: each step reads the half the previous
/// one wrote (`state_get`, and `state_get4` for the written-out form), rows past their
/// length keep theirs, and the reset-before GRU parks r ⊙ h in the read half's c block
/// (`state_set` into the half being read). `quads` picks `state_f32x4.wgsl` (on) or
/// `state_f32.wgsl` (off); either way the CPU's values, and with `bits` the other
/// prelude's bits too.
pub fn state_cases(quads: bool) {
    let Some(ctx) = software(quads).map(Arc::new) else {
        return;
    };
    let Some(other) = software(!quads).map(Arc::new) else {
        return;
    };
    let (t, b, lens) = (6, 5, [6, 2, 5, 1, 6]);
    let lstm = LstmConfig::new(3, 12)
        .peephole(Peephole::Full)
        .bidirectional(true);
    let w = LstmWeights::init(&lstm, 2700).unwrap();
    let x = random_input(&lstm, t, b, 2701);
    let init = random_state(&lstm, b, 2702);
    let opts = ForwardOptions {
        initial: Some(&init),
        seq_lens: Some(&lens),
    };
    let want = cpu::forward(&w, x.view(), opts).unwrap();
    let run = |ctx: &Arc<GpuContext>| {
        GpuLstm::new(ctx.clone(), &w)
            .unwrap()
            .forward(x.view(), opts)
            .unwrap()
    };
    let (got, twin) = (run(&ctx), run(&other));
    let tag = format!("state quads={quads}");
    assert_close(&format!("{tag} y"), &got.y, &want.y, GPU_ATOL, GPU_RTOL);
    assert_close(
        &format!("{tag} c_n"),
        &got.c_n,
        &want.c_n,
        GPU_ATOL,
        GPU_RTOL,
    );
    assert!(
        got.y
            .iter()
            .zip(&twin.y)
            .all(|(p, q)| p.to_bits() == q.to_bits()),
        "{tag}: y bits"
    );
    let gru = GruConfig::new(3, 12).reset_after(false);
    let gw = GruWeights::init(&gru, 2703).unwrap();
    let gx = random((t, b, 3), 2704);
    let h0 = random((1, b, 12), 2705);
    let gopts = GruOptions {
        initial: Some(&h0),
        seq_lens: Some(&lens),
    };
    let want = cpu::gru_forward(&gw, gx.view(), gopts).unwrap();
    let run = |ctx: &Arc<GpuContext>| {
        GpuGru::new(ctx.clone(), &gw)
            .unwrap()
            .forward(gx.view(), gopts)
            .unwrap()
    };
    let (got, twin) = (run(&ctx), run(&other));
    assert_close(&format!("{tag} GRU y"), &got.y, &want.y, GPU_ATOL, GPU_RTOL);
    assert!(
        got.y
            .iter()
            .zip(&twin.y)
            .all(|(p, q)| p.to_bits() == q.to_bits()),
        "{tag}: GRU y bits"
    );
}
