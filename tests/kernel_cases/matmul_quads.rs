//! `matmul_quads.wgsl` alone (see tests/kernels.rs): `main_quads` (op(b) = bᵀ, 4 | K),
//! `main_quads_tn` (op(a) = aᵀ, 4 | M and N) and `main_quads_nn` (no transposes, 4 | K
//! and N), 4 | lda, ldb and the offsets, against
//! the CPU twin, and bit for bit against `main_rows` on the same numbers placed one
//! float off alignment (which sends them to `main_rows`).

use super::matmul_case;
use crate::common::*;
use lstm_wgpu::gpu::kernels;
use lstm_wgpu::gpu::kernels::matmul::MatmulParams;
use lstm_wgpu::GpuContext;

/// (M, N, K) of `main_quads`: one element; rows past a 16-row block and columns past a
/// 64-column workgroup, each partly filled; K of one quad and of many.
const ALONG_K: [(usize, usize, usize); 4] = [(1, 1, 4), (17, 70, 8), (33, 7, 36), (130, 65, 64)];
/// (M, N, K) of `main_quads_tn`: one quad each way; M and N past a block, any K.
const ALONG_ROWS: [(usize, usize, usize); 4] =
    [(4, 4, 1), (20, 72, 7), (36, 8, 33), (128, 68, 130)];
/// (M, N, K) of `main_quads_nn`: one row and one quad; M, N past a block; K of many quads.
const ALONG_K_COLS: [(usize, usize, usize); 4] =
    [(1, 4, 4), (17, 72, 8), (33, 8, 36), (130, 68, 64)];

pub fn matmul_quads_cases(ctx: &GpuContext) {
    let forms = [
        (ALONG_K, MatmulParams::B_TRANS),
        (ALONG_ROWS, MatmulParams::A_TRANS),
        (ALONG_K_COLS, 0),
    ];
    for (f, (shapes, trans)) in forms.into_iter().enumerate() {
        for (n, &(m, cols, k)) in shapes.iter().enumerate() {
            for flags in [0, MatmulParams::ACCUMULATE, MatmulParams::BIAS] {
                let mut p = match trans {
                    MatmulParams::A_TRANS => MatmulParams::new(m, cols, k).a_trans(),
                    MatmulParams::B_TRANS => MatmulParams::new(m, cols, k).b_trans(),
                    _ => MatmulParams::new(m, cols, k),
                };
                p.flags |= flags;
                let seed = 2000 + 100 * f as u64 + 10 * (n as u64 * 3 + flags as u64);
                matmul_case(ctx, "quads", p, seed);
                // Padded rows and offsets, still multiples of 4 (and a c offset of any size).
                let (lda, ldb) = (p.lda as usize, p.ldb as usize);
                let padded = p.lda(lda + 4).ldb(ldb + 8).ldc(cols + 3).offsets(8, 4, 5);
                matmul_case(ctx, "quads padded", padded, seed + 1);
                same_bits_as_rows(ctx, padded, seed + 2);
            }
        }
    }
}

/// `p` (aligned: quads) and the same operands one float further on (rows) agree bitwise.
fn same_bits_as_rows(ctx: &GpuContext, p: MatmulParams, seed: u64) {
    let flag = |f: u32| p.flags & f != 0;
    let rows_a = if flag(MatmulParams::A_TRANS) {
        p.k
    } else {
        p.m
    };
    let rows_b = if flag(MatmulParams::B_TRANS) {
        p.n
    } else {
        p.k
    };
    let len = |off: u32, rows: u32, ld: u32| (off + rows * ld) as usize;
    let a = random(len(p.a_off, rows_a, p.lda), seed).to_vec();
    let b = random(len(p.b_off, rows_b, p.ldb), seed + 1).to_vec();
    let c = random(len(p.c_off, p.m, p.ldc), seed + 2).to_vec();
    let bias = flag(MatmulParams::BIAS).then(|| random(p.n as usize, seed + 3).to_vec());
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
