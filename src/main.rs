//! `lstm-wgpu`: the crate's command-line front end.

use clap::{Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(
    name = "lstm-wgpu",
    version,
    about = "LSTM inference and training on any GPU through wgpu"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Train the seed article's MNIST model (LSTM over image rows → Dense(10)); the default.
    Train(cli::train::Args),
    /// Forward pass on random weights and inputs, GPU vs CPU: adapter, time, max difference.
    Compare(cli::compare::Args),
    /// List the adapters wgpu sees and the one this crate would pick.
    Adapters,
    /// Run an LSTM with PyTorch, Keras or ONNX weights on .npy inputs; write y, h_n, c_n as .npy.
    Forward(cli::forward::Args),
    /// Convert PyTorch, Keras or ONNX weights to a PyTorch state dict (safetensors).
    Convert(cli::forward::ConvertArgs),
    /// Train (or load) a row-by-row generative LSTM on the digits; draw digits of every class, complete half digits.
    Generate(cli::generate::Args),
    /// Gate, cell and hidden-state heatmaps and a gradient × input map of the classifier on one digit.
    Inspect(cli::inspect::Args),
}

fn main() {
    // Mesa's Vulkan drivers print "XDG_RUNTIME_DIR is invalid or not set" on headless
    // machines (their window-system layer looks for it); give them a harmless value.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let cli = Cli::parse();
    let command =
        cli.command
            .unwrap_or_else(|| match Cli::parse_from(["lstm-wgpu", "train"]).command {
                Some(c) => c,
                None => unreachable!("parse_from with a subcommand"),
            });
    let result = match command {
        Command::Train(args) => cli::train::run(&args),
        Command::Compare(args) => cli::compare::run(&args),
        Command::Adapters => cli::adapters(),
        Command::Forward(args) => cli::forward::run(&args),
        Command::Convert(args) => cli::forward::convert(&args),
        Command::Generate(args) => cli::generate::run(&args),
        Command::Inspect(args) => cli::inspect::run(&args),
    };
    if let Err(e) = result {
        eprintln!("{}", lstm_wgpu::error::report(&e));
        std::process::exit(1);
    }
}
