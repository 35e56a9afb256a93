//! `matmul_quads.wgsl` alone (see tests/kernels.rs): `main_quads` on the products it
//! takes (op(b) = bᵀ, 4 | K, lda, ldb and the offsets) against the CPU twin, and bit for
//! bit against `main_rows` on the same numbers placed one float off alignment (which
//! sends them to `main_rows`).

use super::matmul_case;
use crate::common::*;
use lstm_wgpu::gpu::kernels;
use lstm_wgpu::gpu::kernels::matmul::MatmulParams;
use lstm_wgpu::GpuContext;

/// (M, N, K): one element; rows past a 16-row block and columns past a 64-column
/// workgroup, each partly filled; K of one quad and of many.
const SHAPES: [(usize, usize, usize); 4] = [(1, 1, 4), (17, 70, 8), (33, 7, 36), (130, 65, 64)];

pub fn matmul_quads_cases(ctx: &GpuContext) {
    for (n, &(m, cols, k)) in SHAPES.iter().enumerate() {
        for flags in [0, MatmulParams::ACCUMULATE, MatmulParams::BIAS] {
            let mut p = MatmulParams::new(m, cols, k).b_trans();
            p.flags |= flags;
            let seed = 2000 + 10 * (n as u64 * 3 + flags as u64);
            matmul_case(ctx, "quads", p, seed);
            // Padded rows and offsets, still multiples of 4 (and a c offset of any size).
            let padded = p.lda(k + 4).ldb(k + 8).ldc(cols + 3).offsets(8, 4, 5);
            matmul_case(ctx, "quads padded", padded, seed + 1);
            same_bits_as_rows(ctx, padded, seed + 2);
        }
    }
}

/// `p` (aligned: quads) and the same operands one float further on (rows) agree bitwise.
fn same_bits_as_rows(ctx: &GpuContext, p: MatmulParams, seed: u64) {
    let len = |off: u32, rows: u32, ld: u32| (off + rows * ld) as usize;
    let a = random(len(p.a_off, p.m, p.lda), seed).to_vec();
    let b = random(len(p.b_off, p.n, p.ldb), seed + 1).to_vec();
    let c = random(len(p.c_off, p.m, p.ldc), seed + 2).to_vec();
    let bias = (p.flags & MatmulParams::BIAS != 0).then(|| random(p.n as usize, seed + 3).to_vec());
    let shifted = |v: &[f32]| [&[f32::NAN][..], v].concat();
    let quads = kernels::matmul::run(ctx, p, &a, &b, bias.as_deref(), &c).unwrap();
    let off = p.offsets(p.a_off as usize + 1, p.b_off as usize + 1, p.c_off as usize);
    let rows =
        kernels::matmul::run(ctx, off, &shifted(&a), &shifted(&b), bias.as_deref(), &c).unwrap();
    let same = quads
        .iter()
        .zip(&rows)
        .all(|(q, r)| q.to_bits() == r.to_bits());
    assert!(same, "matmul quads vs rows {p:?}: results differ");
}
