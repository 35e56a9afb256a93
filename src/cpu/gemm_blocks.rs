//! The packed product in blocks of rows (`PackedWeights::mul`'s driver): each block's
//! operands packed for the micro-kernels (`gemm_kernels.rs`), then every panel walked up
//! or down past them, and a step's input projection computed call by call.

use super::{BlockRows, Epilogue, InputProjection, PackedWeights};
use crate::cpu::gemm_kernels::{
    kernel_rows, pack_calls, tile, Dest, MR, NR, PACKED_ROWS, TILE_FLOATS,
};

/// Rows of `s` per pass over all panels (rounded up to [`MR`]): 256 rows of a 1024-wide
/// `s` (1 MiB, packed) stay in a 2 MiB L2 while every panel streams past them. (120
/// before BENCHMARKS.md §33: a step of 128 rows then took two passes over the weights;
/// S3 0.98, S4 0.99 with 256 on that Intel host's 2 MiB L2. A CPU with 1–1.25 MiB of L2
/// per core may want fewer.)
const MC: usize = 256;

thread_local! {
    /// Whether this thread's next row block walks the panels down (last to first). It
    /// turns at every block, so that a block starts on the panels the one before it
    /// ended on, still in L2: weights larger than L2 (H = 512: 4 MiB) then come from L3
    /// about an L2's worth less per step (BENCHMARKS.md §33). The order of the panels
    /// does not change a bit of the product. One turn per thread, not per matrix: a
    /// step with two products (Full peepholes: `W_hh`, then `W_ch`) walks each the same
    /// way every step, and gains nothing.
    pub(super) static WALK_BACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl PackedWeights {
    /// The product in blocks of rows, each block against every panel; `WIDE`: the
    /// AVX-512 micro-kernel (inlined into the caller that has its features).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub(super) unsafe fn row_blocks<const WIDE: bool>(
        &self,
        all: BlockRows,
        z: &mut [f32],
        epilogue: Epilogue,
    ) {
        let n = self.n;
        let rows = z.len() / n;
        // Blocks of about MC rows (at most MC rounded up to the AVX2 kernel's rows), of
        // equal size: a short last block would stream all the weights again for a few
        // rows.
        let block = rows.div_ceil(rows.div_ceil(MC).max(1)).next_multiple_of(MR);
        let mut packed = PACKED_ROWS.take();
        for chunk in (0..rows).step_by(block.max(1)) {
            let chunk_end = (chunk + block).min(rows);
            let block_rows = block_rows::<WIDE>(all, chunk..chunk_end, self.k, &mut packed);
            // Panel by panel (pair by pair) up or down, as WALK_BACK says (a loop, not
            // a closure: the kernels inline only into the AVX-512 caller).
            let back = WALK_BACK.replace(!WALK_BACK.get());
            let (step, starts) = (
                1 + WIDE as usize,
                n.div_ceil(NR).div_ceil(1 + WIDE as usize),
            );
            for i in 0..starts {
                let p = step * if back { starts - 1 - i } else { i };
                self.panel_rows::<WIDE>((p, back), chunk..chunk_end, block_rows, z, epilogue);
            }
        }
        PACKED_ROWS.set(packed);
    }

    /// Rows `range` of `z` from those rows of `s` (`rows`, from the first of them:
    /// row-major, or packed if `WIDE`) times panel `p` (`WIDE`: and panel p + 1 if there
    /// is one), prefetching the panels that come next on a walk down (`back`) or up.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn panel_rows<const WIDE: bool>(
        &self,
        (p, back): (usize, bool),
        range: std::ops::Range<usize>,
        rows: BlockRows,
        z: &mut [f32],
        epilogue: Epilogue,
    ) {
        let (n, k) = (self.n, self.k);
        let last = n.div_ceil(NR) - 1;
        let pair = WIDE && p < last;
        let panel = &self.floats()[p * k * NR..(p + 1 + pair as usize) * k * NR];
        let cols = (NR << pair as usize).min(n - p * NR);
        // The panels the walk takes next, fetched while this one (or pair) is used.
        let step = 1 + WIDE as usize;
        let next = match back {
            false => [step, step + pair as usize].map(|i| (p + i).min(last)),
            true => [step, 1].map(|i| p.saturating_sub(i)),
        };
        let next = next.map(|q| self.floats()[q * k * NR..].as_ptr());
        // A call's projection, for `rows.projection` (the most a call writes, on whole
        // cache lines; not zeroed: a call writes every float that the next one reads).
        let mut projected = std::mem::MaybeUninit::<Tile>::uninit();
        let mut r0 = range.start;
        while r0 < range.end {
            let mr = kernel_rows::<WIDE>(range.end - r0);
            let at = r0 * n + p * NR;
            assert!(z.len() >= (r0 + mr - 1) * n + p * NR + cols);
            // z = sum + add, where Accumulate adds z itself (z + sum: the same bits; one
            // pointer for both, so the read does not alias a second borrow).
            let zp = z[at..].as_mut_ptr();
            let (add, add_stride) = match (rows.projection, epilogue) {
                (Some(proj), _) => {
                    let x = &proj.x[(r0 - range.start) * proj.w_ih.k..];
                    proj.w_ih.project_call::<WIDE>(
                        p,
                        mr,
                        x,
                        proj.bias,
                        projected.as_mut_ptr().cast(),
                    );
                    (projected.as_ptr().cast(), 2 * NR)
                }
                (None, Epilogue::Accumulate) => (zp.cast_const(), n),
                (None, Epilogue::AddRow(bias)) => (bias[p * NR..][..cols].as_ptr(), 0),
                (None, Epilogue::AddMatrix(init)) => (init[..z.len()][at..].as_ptr(), n),
            };
            let dest = Dest {
                z: zp,
                n,
                add,
                add_stride,
                cols,
                next,
                prefetch: r0 == range.start,
            };
            // Call by call, a packed block holds as many floats as its rows.
            call::<WIDE>(mr, panel, &rows.s[(r0 - range.start) * k..], k, dest);
            r0 += mr;
        }
    }

    /// One micro-kernel call's input projection `x · w_ihᵀ + bias` (`mr` rows of `x`,
    /// packed or row-major as for `s`, at panel `p`, and `p + 1` if paired as in
    /// [`PackedWeights::panel_rows`]) into `out` `[mr][32]` (room for [`TILE_FLOATS`]),
    /// the first `cols` of each row.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn project_call<const WIDE: bool>(
        &self,
        p: usize,
        mr: usize,
        x: &[f32],
        bias: &[f32],
        out: *mut f32,
    ) {
        let (n, k) = (self.n, self.k);
        let pair = WIDE && p < n.div_ceil(NR) - 1;
        let panel = &self.floats()[p * k * NR..(p + 1 + pair as usize) * k * NR];
        let cols = (NR << pair as usize).min(n - p * NR);
        assert!(mr * 2 * NR <= TILE_FLOATS);
        let dest = Dest {
            z: out,
            n: 2 * NR,
            add: bias[p * NR..][..cols].as_ptr(),
            add_stride: 0,
            cols,
            // Its own panel: in L1 already.
            next: [panel.as_ptr(); 2],
            prefetch: false,
        };
        call::<WIDE>(mr, panel, x, k, dest);
    }
}

/// [`PackedWeights::panel_rows`]'s buffer for one call's projection, aligned like the
/// panels (its rows are 32 floats, two cache lines).
#[repr(C, align(64))]
struct Tile([f32; TILE_FLOATS]);

/// The operands of the row block `range` of `all`, packed call by call with AVX-512
/// (`WIDE`) into `packed` (`pack_calls`), else row-major as they are: `s` (`k` wide)
/// and a projection's `x`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn block_rows<'a, const WIDE: bool>(
    all: BlockRows<'a>,
    range: std::ops::Range<usize>,
    k: usize,
    packed: &'a mut Vec<f32>,
) -> BlockRows<'a> {
    let ki = all.projection.map_or(0, |p| p.w_ih.k);
    if !WIDE {
        return BlockRows {
            s: &all.s[range.start * k..],
            projection: all.projection.map(|p| InputProjection {
                x: &p.x[range.start * ki..],
                ..p
            }),
        };
    }
    let (s_len, x_len) = (range.len() * k, range.len() * ki);
    if packed.len() < s_len + x_len {
        packed.resize(s_len + x_len, 0.0);
    }
    let (ps, px) = packed[..s_len + x_len].split_at_mut(s_len);
    pack_calls(&all.s[range.start * k..range.end * k], k, ps);
    if let Some(InputProjection { x, .. }) = all.projection {
        pack_calls(&x[range.start * ki..range.end * ki], ki, px);
    }
    BlockRows {
        s: ps,
        projection: all.projection.map(|p| InputProjection { x: &*px, ..p }),
    }
}

/// The micro-kernel call of `mr` rows ([`tile`]).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn call<const WIDE: bool>(mr: usize, panel: &[f32], s: &[f32], k: usize, dest: Dest) {
    // Calls over 6 rows are AVX-512's only (no AVX2 kernel of 7–14 rows is built).
    match mr {
        14 => tile::<14, true>(panel, s, k, dest),
        13 => tile::<13, true>(panel, s, k, dest),
        12 => tile::<12, true>(panel, s, k, dest),
        11 => tile::<11, true>(panel, s, k, dest),
        10 => tile::<10, true>(panel, s, k, dest),
        9 => tile::<9, true>(panel, s, k, dest),
        8 => tile::<8, true>(panel, s, k, dest),
        7 => tile::<7, true>(panel, s, k, dest),
        6 => tile::<6, WIDE>(panel, s, k, dest),
        5 => tile::<5, WIDE>(panel, s, k, dest),
        4 => tile::<4, WIDE>(panel, s, k, dest),
        3 => tile::<3, WIDE>(panel, s, k, dest),
        2 => tile::<2, WIDE>(panel, s, k, dest),
        _ => tile::<1, WIDE>(panel, s, k, dest),
    }
}
