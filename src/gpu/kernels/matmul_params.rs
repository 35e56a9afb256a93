//! `matmul.wgsl`'s uniform (a leaf: the GEMM's forms, `matmul` and `matmul_quads`,
//! both read it), its flags and the grids of the tiled and software forms.

use bytemuck::{Pod, Zeroable};

/// Mirrors `MatmulParams` in `shaders/matmul.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct MatmulParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub flags: u32,
    pub lda: u32,
    pub ldb: u32,
    pub ldc: u32,
    pub a_off: u32,
    pub b_off: u32,
    pub c_off: u32,
    /// `main`'s K slice per workgroup z (0: no split; the weight gradients on hardware GPUs).
    pub k_chunk: u32,
    pub _pad: u32,
}

#[allow(dead_code)] // the transposed and accumulating forms serve training
impl MatmulParams {
    pub const A_TRANS: u32 = 1;
    pub const B_TRANS: u32 = 2;
    pub const ACCUMULATE: u32 = 4;
    pub const BIAS: u32 = 8;
    /// `main_rows` only: lanes over column blocks instead of row blocks (set by
    /// [`MatmulParams::for_software`] when there are too few rows to fill the lanes).
    pub const LANES_OVER_COLS: u32 = 16;

    /// `c[m, n] = a[m, k] · b[k, n]`, all row-major and packed.
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        MatmulParams {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            flags: 0,
            lda: k as u32,
            ldb: n as u32,
            ldc: n as u32,
            a_off: 0,
            b_off: 0,
            c_off: 0,
            k_chunk: 0,
            _pad: 0,
        }
    }
    /// `a` is stored `[k, m]` and used transposed.
    pub fn a_trans(mut self) -> Self {
        self.flags |= Self::A_TRANS;
        self.lda = self.m;
        self
    }
    /// `b` is stored `[n, k]` and used transposed.
    pub fn b_trans(mut self) -> Self {
        self.flags |= Self::B_TRANS;
        self.ldb = self.k;
        self
    }
    pub fn accumulate(mut self) -> Self {
        self.flags |= Self::ACCUMULATE;
        self
    }
    pub fn bias(mut self) -> Self {
        self.flags |= Self::BIAS;
        self
    }
    pub fn lda(mut self, ld: usize) -> Self {
        self.lda = ld as u32;
        self
    }
    pub fn ldb(mut self, ld: usize) -> Self {
        self.ldb = ld as u32;
        self
    }
    pub fn ldc(mut self, ld: usize) -> Self {
        self.ldc = ld as u32;
        self
    }
    /// Element offsets of `a`, `b` and `c` in their buffers.
    pub fn offsets(mut self, a: usize, b: usize, c: usize) -> Self {
        self.a_off = a as u32;
        self.b_off = b as u32;
        self.c_off = c as u32;
        self
    }
    pub fn grid(&self) -> (u32, u32) {
        (self.n.div_ceil(MATMUL_TILE), self.m.div_ceil(MATMUL_TILE))
    }
    /// These parameters for the `main_rows` entry point: with fewer than 64 rows its
    /// eight lanes (eight row blocks each) would mostly compute clamped copies of the
    /// last row — 64× the work at M = 1 — so the lanes take column blocks instead.
    /// Every output is summed in the same order either way.
    pub fn for_software(mut self) -> Self {
        if self.m < 64 {
            self.flags |= Self::LANES_OVER_COLS;
        }
        self
    }
    /// Grid of the `main_rows` entry point (software adapters), for [`Self::for_software`]'s parameters.
    pub fn grid_rows(&self) -> (u32, u32) {
        if self.flags & Self::LANES_OVER_COLS != 0 {
            (self.n.div_ceil(64), self.m.div_ceil(MATMUL_ROWS_COLS))
        } else {
            (self.n.div_ceil(MATMUL_ROWS_COLS), self.m.div_ceil(64))
        }
    }
}

/// Workgroups a split-K product aims for: enough to fill the largest GPUs (a 132-SM
/// H100 holds two of these 256-invocation workgroups per SM and more).
pub(crate) const SPLIT_TARGET_GROUPS: u32 = 512;
/// The shortest K slice worth a workgroup of its own (a multiple of `main`'s K tile).
pub(crate) const SPLIT_MIN_CHUNK: u32 = 256;

impl MatmulParams {
    /// `(slices, k_chunk)` of `main` for this product: one slice (no split) where the
    /// output's tiles already reach [`SPLIT_TARGET_GROUPS`] or K is under two
    /// [`SPLIT_MIN_CHUNK`]s; else enough slices of at least that length to reach it,
    /// as few as `max_scratch_bytes` (slices × M × N floats) and `max_groups` allow.
    pub(crate) fn split_k(&self, max_scratch_bytes: u64, max_groups: u32) -> (u32, u32) {
        let (x, y) = self.grid();
        let tiles = x * y;
        let few = (1..SPLIT_TARGET_GROUPS).contains(&tiles);
        if !few || self.m > max_groups {
            return (1, 0);
        }
        let slice_bytes = 4 * u64::from(self.m) * u64::from(self.n);
        let fit = (max_scratch_bytes / slice_bytes.max(1)).min(u64::from(max_groups)) as u32;
        split_len((tiles, self.k), fit, 16)
    }
}

/// `(slices, chunk)` of a sum over `len` terms (K, or rows) by `groups` workgroups: none
/// (`(1, 0)`) where there are under two of [`SPLIT_MIN_CHUNK`]; else enough slices of at
/// least that length (a multiple of `align`) to reach [`SPLIT_TARGET_GROUPS`]
/// workgroups, and at most `fit`.
pub(crate) fn split_len((groups, len): (u32, u32), fit: u32, align: u32) -> (u32, u32) {
    let slices = SPLIT_TARGET_GROUPS
        .div_ceil(groups)
        .min(len / SPLIT_MIN_CHUNK)
        .min(fit);
    if slices < 2 {
        return (1, 0);
    }
    let chunk = len.div_ceil(slices).next_multiple_of(align);
    (len.div_ceil(chunk), chunk)
}

/// Output tile of `matmul.wgsl` (rows and columns).
pub(crate) const MATMUL_TILE: u32 = 64;
/// Output columns of one `main_rows` workgroup of `matmul.wgsl` (its rows: 64).
pub(crate) const MATMUL_ROWS_COLS: u32 = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_k_fills_a_gpu_only_where_the_output_has_few_tiles() {
        let big = 1 << 30;
        // The seed model's dW_ih (4H × I over T·B = 28 · 128): 16 tiles → 14 slices of 256.
        let d_ih = MatmulParams::new(1024, 28, 3584).a_trans();
        assert_eq!(d_ih.split_k(big, 65535), (14, 256));
        // Its dW_hh (4H × H): 64 tiles → 8 slices of 448.
        let d_hh = MatmulParams::new(1024, 256, 3584).a_trans();
        assert_eq!(d_hh.split_k(big, 65535), (8, 448));
        // Enough tiles already (512), or K too short for two slices: no split.
        assert_eq!(
            MatmulParams::new(2048, 1024, 8192).split_k(big, 65535),
            (1, 0)
        );
        assert_eq!(MatmulParams::new(64, 64, 511).split_k(big, 65535), (1, 0));
        // The scratch must fit: room for 3 slices of [1024, 28] gives 3.
        assert_eq!(d_ih.split_k(3 * 4 * 1024 * 28, 65535), (3, 1200));
        // M rows of sum_splits' grid must fit a dimension.
        assert_eq!(d_ih.split_k(big, 1000), (1, 0));
    }
}
