//! A class-conditional generative LSTM that draws a digit one image row per time step
//! (the seed article's "image generation"):
//!
//! - [`model`](mod@model): inputs (previous row + one-hot class), the Dense head at
//!   every step, the per-pixel sigmoid cross-entropy and its gradient through BPTT;
//! - [`train`](mod@train): Adam over shuffled batches, on the CPU path or the GPU;
//! - [`sample`](mod@sample): drawing digits and completing given top halves;
//! - [`eval`](mod@eval): the classifier-agreement and completion-cross-entropy checks.
//!
//! Step `t` of the LSTM reads row `t − 1` (zeros at `t = 0`) and the class, and its
//! output, through the head, gives the logits of row `t`'s 28 pixels:
//! `p(image | class) = Π_t Π_j Bernoulli(x_tj; σ(z_tj))` with intensities as soft targets.

pub mod eval;
pub mod model;
pub mod sample;
pub mod train;

pub use eval::{agreement, classify, completion_bce, mean_image, Agreement, Completion};
pub use model::{
    generator_config, init_generator, loss, loss_and_gradients, teacher_inputs, GenDevice, CLASSES,
    COLS, INPUT, ROWS,
};
pub use sample::{continue_digits, likeliest_class, sample, Drawn, SampleOptions};
pub use train::{train_generator, Digits, GenEpoch, GenObserver, GenTrainConfig, GenTrainer};
