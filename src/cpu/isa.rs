//! Which vector instructions the CPU path's kernels use: AVX-512 or AVX2 + FMA where
//! the CPU has them (checked at run time), else portable code.
//!
//! Every build of a kernel runs each output through the same operations in the same
//! order, so the choice changes the speed, never the bits. [`set_avx512`] turns
//! AVX-512 off for comparisons (`tests/threads.rs` checks the bits that way).

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether AVX-512 may be used where the CPU has it.
static AVX512_ALLOWED: AtomicBool = AtomicBool::new(true);

/// Lets the CPU path use AVX-512 where the CPU has it (`true`, the default) or keeps it
/// to AVX2 (`false`). The results are the same bits either way; AVX-512 ran the packed
/// GEMM 3–5 % faster on Zen 4 (BENCHMARKS.md §21, its 6 × 16 kernel), and its pair
/// kernel runs S3 in 0.72× the time on an Intel core with two 512-bit FMA pipes (§32).
pub fn set_avx512(allowed: bool) {
    AVX512_ALLOWED.store(allowed, Ordering::Relaxed);
}

/// The instruction sets of the CPU path's vector kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// AVX2 + FMA: 256-bit vectors.
    Avx2,
    /// AVX-512F (with AVX2 + FMA): 512-bit vectors.
    Avx512,
}

impl Isa {
    /// The widest the CPU has and [`set_avx512`] allows; `None` without AVX2 + FMA.
    pub fn best() -> Option<Isa> {
        if AVX512_ALLOWED.load(Ordering::Relaxed) && Isa::Avx512.available() {
            return Some(Isa::Avx512);
        }
        Isa::Avx2.available().then_some(Isa::Avx2)
    }

    /// Whether the CPU has `self`'s features.
    pub fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let avx2 = has!("avx2") && has!("fma");
            match self {
                Isa::Avx2 => avx2,
                Isa::Avx512 => avx2 && has!("avx512f"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }
}
