//! `lstm-wgpu compare`: one forward pass on random weights, GPU vs CPU.

use std::sync::Arc;
use std::time::Instant;

use lstm_wgpu::{
    cpu, ForwardOptions, GpuContext, GpuLstm, LstmConfig, LstmWeights, Peephole, Result,
};
use ndarray::Array3;
use rand::{Rng, SeedableRng};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Sequence length T.
    #[arg(long, default_value_t = 28)]
    pub seq: usize,
    /// Batch size B.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Input size I.
    #[arg(long, default_value_t = 28)]
    pub input: usize,
    /// Hidden size H.
    #[arg(long, default_value_t = 256)]
    pub hidden: usize,
    #[arg(long, default_value_t = 1)]
    pub layers: usize,
    #[arg(long)]
    pub bidirectional: bool,
    /// none | diagonal | full
    #[arg(long, default_value = "none", value_parser = parse_peephole)]
    pub peephole: Peephole,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

fn parse_peephole(s: &str) -> std::result::Result<Peephole, String> {
    match s {
        "none" => Ok(Peephole::None),
        "diagonal" => Ok(Peephole::Diagonal),
        "full" => Ok(Peephole::Full),
        _ => Err(format!("expected none, diagonal or full, got {s:?}")),
    }
}

pub fn run(a: &Args) -> Result<()> {
    let cfg = LstmConfig::new(a.input, a.hidden)
        .layers(a.layers)
        .bidirectional(a.bidirectional)
        .peephole(a.peephole);
    let weights = LstmWeights::init(&cfg, a.seed)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed + 1);
    let x =
        Array3::from_shape_simple_fn((a.seq, a.batch, a.input), || rng.random_range(-1.0f32..1.0));
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
