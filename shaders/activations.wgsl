// activations.wgsl — the activation functions the step kernels share. Not a kernel: the
// crate prepends this file to the step kernels (lstm_step, gru_step, lstm_step_backward) when it
// compiles them (see `src/gpu/kernels/mod.rs`), so both use the same bits.

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

// tanh via exp(-2|x|): never forms inf/inf, unlike the textbook (e^2x - 1)/(e^2x + 1).
fn tanh_stable(x: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    return sign(x) * (1.0 - e) / (1.0 + e);
}
