//! The CPU path (ndarray): the spec the GPU is tested against, and a usable backend.
//!
//! - [`reference`](mod@reference): the readable statement of each kernel (`lstm_step`, `matmul`), the
//!   twins of `shaders/<stem>.wgsl`;
//! - [`forward`](mod@forward): the sequence schedule (hoisted input projection, one
//!   step per time step), running the step through `simd` (in place, vectorised);
//! - `simd`, `gemm`, `matvec` and `projection`: the vectorised fast path (the step, its
//!   packed GEMM, the small-batch matrix-vector product, and the input projection a
//!   chunk of steps at a time);
//! - [`backward`](mod@backward): BPTT and its step and parameter-gradient twins;
//! - [`softmax_xent`](mod@softmax_xent), [`optimizer_update`](mod@optimizer_update):
//!   twins of the training kernels.

/// `fn $name(args)` that runs `$body(args)` compiled for AVX-512 or else AVX2 + FMA when
/// the CPU has them (checked at run time) and the portable build of the same body
/// otherwise: the vectorised pointwise loops of the CPU path all dispatch this way. The
/// builds differ in vector width only, each lane's operations are the same: same bits.
macro_rules! avx2_dispatch {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $body:ident) => {
        $(#[$meta])*
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) {
                    $body($($arg),*)
                }
                match $crate::cpu::isa::Isa::best() {
                    // SAFETY: the CPU has the features each build is compiled for.
                    Some($crate::cpu::isa::Isa::Avx512) => return unsafe { avx512($($arg),*) },
                    Some($crate::cpu::isa::Isa::Avx2) => return unsafe { avx2($($arg),*) },
                    None => {}
                }
            }
            $body($($arg),*)
        }
    };
}

mod aligned;
pub mod backward;
mod backward_inputs;
mod batch_split;
pub mod forward;
mod gemm;
mod gemm_kernels;
mod grad_gemm;
pub mod gru;
pub mod gru_backward;
mod gru_fast;
pub mod gru_step;
mod gru_stream;
pub(crate) mod isa;
pub mod lstm_param_grads;
mod lstm_step_backward;
pub mod lstmp;
mod matvec;
pub mod optimizer_update;
mod packs;
mod panel_matvec;
mod prepared;
mod projection;
pub mod reference;
mod simd;
pub mod softmax_xent;
mod step_output;
pub mod stream;
mod threads;
mod unit_split;
mod worker;

pub use backward::{
    backward, backward_without_dx, forward_train, forward_train_into, Gradients, Upstream,
};
pub use forward::{forward, ForwardCache, StepCache};
pub use gru::{gru_forward, gru_forward_train, GruCache};
pub use gru_backward::{gru_backward, GruGradients, GruUpstream};
pub use gru_step::{gru_step, gru_step_backward, GruStepGrads};
pub use gru_stream::CpuGruStream;
pub use isa::set_avx512;
pub use lstm_param_grads::lstm_param_grads;
pub use lstm_step_backward::lstm_step_backward;
pub(crate) use lstmp::check_lstmp_upstream;
pub use lstmp::{lstmp_backward, lstmp_forward, lstmp_forward_train, LstmpCache, LstmpGradients};
pub use optimizer_update::{optimizer_update, UpdateRule};
pub use prepared::CpuLstm;
pub use reference::{lstm_step, lstm_step_with_gates, matmul, sigmoid};
pub use softmax_xent::softmax_xent;
pub use stream::CpuStream;
pub use threads::{set_threads, threads};
