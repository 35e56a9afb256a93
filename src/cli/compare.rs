//! `lstm-wgpu compare`: one forward pass on random weights, GPU vs CPU.

use std::sync::Arc;
use std::time::Instant;

use lstm_wgpu::{
    cpu, ForwardOptions, GpuContext, GpuLstm, LstmConfig, LstmError, LstmWeights, Peephole, Result,
};
use ndarray::Array3;
use rand::{Rng, SeedableRng};

/// A size that must be at least 1.
fn positive() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Sequence length T.
    #[arg(long, default_value_t = 28, value_parser = positive())]
    pub seq: usize,
    /// Batch size B.
    #[arg(long, default_value_t = 128, value_parser = positive())]
    pub batch: usize,
    /// Input size I.
    #[arg(long, default_value_t = 28, value_parser = positive())]
    pub input: usize,
    /// Hidden size H.
    #[arg(long, default_value_t = 256, value_parser = positive())]
    pub hidden: usize,
    #[arg(long, default_value_t = 1, value_parser = positive())]
    pub layers: usize,
    #[arg(long)]
    pub bidirectional: bool,
    #[arg(long, value_enum, default_value_t = Peephole::None)]
    pub peephole: Peephole,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// A seeded uniform(-1, 1) input `[T, B, I]`; sizes too large for memory are an error.
fn random_input(t: usize, b: usize, i: usize, seed: u64) -> Result<Array3<f32>> {
    let too_large = || {
        LstmError::value(
            "--seq × --batch × --input",
            format!("{t} × {b} × {i} floats do not fit in memory"),
        )
    };
    let n = t
        .checked_mul(b)
        .and_then(|n| n.checked_mul(i))
        .filter(|&n| n <= isize::MAX as usize / 4)
        .ok_or_else(too_large)?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| too_large())?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    v.extend(std::iter::repeat_with(|| rng.random_range(-1.0f32..1.0)).take(n));
    Array3::from_shape_vec((t, b, i), v)
        .map_err(|e| LstmError::shape("input", "[T, B, I]", e.to_string()))
}

pub fn run(a: &Args) -> Result<()> {
    let cfg = LstmConfig::new(a.input, a.hidden)
        .layers(a.layers)
        .bidirectional(a.bidirectional)
        .peephole(a.peephole);
    let weights = LstmWeights::init(&cfg, a.seed)?;
    let x = random_input(a.seq, a.batch, a.input, a.seed.wrapping_add(1))?;
    println!(
        "LSTM {cfg:?}\ninput [T={}, B={}, I={}]",
        a.seq, a.batch, a.input
    );

    let t0 = Instant::now();
    let want = cpu::forward(&weights, x.view(), ForwardOptions::default())?;
    let cpu_ms = t0.elapsed().as_secs_f64() * 1e3;
    println!("CPU reference: {cpu_ms:.2} ms");

    let ctx = match GpuContext::new() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            println!("GPU: none ({e}); only the CPU path ran.");
            return Ok(());
        }
    };
    println!("GPU adapter: {}", ctx.describe());
    let gpu = GpuLstm::new(ctx, &weights)?;
    gpu.forward(x.view(), ForwardOptions::default())?; // warm-up: pipeline creation, allocations
    let t0 = Instant::now();
    let got = gpu.forward(x.view(), ForwardOptions::default())?;
    let gpu_ms = t0.elapsed().as_secs_f64() * 1e3;
    let diff = |p: &Array3<f32>, q: &Array3<f32>| {
        p.iter()
            .zip(q)
            .map(|(u, v)| (u - v).abs())
            .fold(0.0f32, f32::max)
    };
    println!("GPU forward:   {gpu_ms:.2} ms (wall, incl. upload and readback)");
    println!(
        "max |GPU - CPU|: y {:.2e}, h_n {:.2e}, c_n {:.2e}",
        diff(&got.y, &want.y),
        diff(&got.h_n, &want.h_n),
        diff(&got.c_n, &want.c_n)
    );
    Ok(())
}
