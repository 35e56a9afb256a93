//! The command line of `lstm-bench`.

use clap::Parser;
use lstm_wgpu::bench::{all_shapes, quick_shapes, standard_shapes, Shape};

/// Kernel forms of the GPU path (see `GpuContext::set_software_kernels`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// The adapter's default.
    Auto,
    /// Tiled, workgroup memory.
    Hardware,
    /// Barrier-free forms for CPU adapters, written out where the shape allows.
    Software,
    /// The barrier-free forms without the written-out ones (`GpuContext::set_quad_forms`):
    /// the software forms as they were before BENCHMARKS.md §18, same sums.
    SoftwarePlain,
}

#[derive(Parser, Debug)]
#[command(
    name = "lstm-bench",
    about = "LSTM forward, CPU vs GPU, on the standard shapes, with the adapter's limits"
)]
pub struct Args {
    /// Small shapes and probes: seconds in all, even on a software adapter.
    #[arg(long)]
    pub quick: bool,
    /// Comma-separated shape names (S1,S2,S3,S4, DB-H512-B16-T25, …, Q1,Q2,Q3).
    #[arg(long, value_delimiter = ',', value_parser = parse_shape)]
    pub shapes: Vec<Shape>,
    /// Timed runs per measurement (after one warm-up run); the median is reported.
    #[arg(long, default_value_t = 5, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub repeats: usize,
    /// Fewer runs (but at least 3) for a measurement whose warm-up took longer than this.
    #[arg(long, default_value_t = 2.0)]
    pub slow_seconds: f64,
    /// Write the results as JSON to this file too.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Skip the GPU (CPU path only).
    #[arg(long)]
    pub cpu_only: bool,
    /// Skip the CPU path (GPU only; no correctness check).
    #[arg(long)]
    pub gpu_only: bool,
    /// Skip measuring the adapter's limits.
    #[arg(long)]
    pub no_probes: bool,
    /// Time the CPU path by the calling thread's on-CPU time (Linux schedstat; the mean
    /// of the runs, as that clock can be coarse) instead of the median wall time:
    /// steadier on a shared machine, meaningful only single-threaded.
    #[arg(long)]
    pub thread_clock: bool,
    /// Kernel forms: `auto` (the adapter's default), `hardware` (tiled, workgroup memory),
    /// `software` (barrier-free forms for CPU adapters) or `software-plain` (those without
    /// the written-out forms); see GpuContext::set_software_kernels and set_quad_forms.
    #[arg(long, value_enum, default_value_t = Kernels::Auto)]
    pub kernels: Kernels,
    /// Do not split the weight gradients over T·B in the tiled GEMM (to compare on a
    /// hardware GPU; see GpuContext::set_split_k).
    #[arg(long)]
    pub no_split_k: bool,
    /// Threads of the CPU path (1 or 2; default: `LSTM_CPU_THREADS`, else 2 where there are two cores).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=2))]
    pub threads: Option<usize>,
    /// Skip the training-step measurement (the seed model: forward + backward + Adam).
    #[arg(long)]
    pub no_train: bool,
    /// Skip the streaming latency (one step pushed at a time, B = 1, H = 256).
    #[arg(long)]
    pub no_stream: bool,
    /// Skip the GRU rows (S1–S3 or the quick shapes, CPU vs GPU).
    #[arg(long)]
    pub no_gru: bool,
    /// Skip the LSTMP rows (proj_size = H/4; S1–S3 or the quick shapes, CPU vs GPU).
    #[arg(long)]
    pub no_lstmp: bool,
    /// Skip the f16-weight rows (GpuLstm::new_f16 at S1–S3 or the quick shapes).
    #[arg(long)]
    pub no_f16: bool,
    /// List the shapes and exit.
    #[arg(long)]
    pub list: bool,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl Args {
    /// The shapes named by `--shapes`, else the quick or the standard set.
    pub fn selected_shapes(&self) -> Vec<Shape> {
        if !self.shapes.is_empty() {
            self.shapes.clone()
        } else if self.quick {
            quick_shapes()
        } else {
            standard_shapes()
        }
    }
}

/// One `--shapes` name (any case).
fn parse_shape(name: &str) -> Result<Shape, String> {
    let all = all_shapes();
    all.iter()
        .find(|s| s.name.eq_ignore_ascii_case(name))
        .cloned()
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
            format!("unknown shape; known: {}", names.join(", "))
        })
}
