//! `mpirun -np 2 --oversubscribe lstm-wgpu train --distributed …` on this machine (feature
//! `mpi`; needs `mpirun`, from Debian's openmpi-bin): two ranks end with one process's
//! weights to float tolerance and its accuracies; a rank that fails — bad input, or
//! killed — ends the job with a message within a bounded time instead of hanging.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lstm_wgpu::train::{flatten, load_checkpoint};
use lstm_wgpu::LstmConfig;

const BIN: &str = env!("CARGO_BIN_EXE_lstm-wgpu");
/// How long a failed job may take to end before the test calls it a hang.
const BOUND: Duration = Duration::from_secs(60);

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lstm-wgpu-mpi-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    d
}

/// The training options of every run here (small and fast; 3 epochs unless `extra`
/// says otherwise), with `--out`.
fn train_args(out: &Path, extra: &[&str]) -> Vec<String> {
    let epochs: &[&str] = if extra.contains(&"--epochs") {
        &[]
    } else {
        &["--epochs", "3"]
    };
    let mut v: Vec<String> = [
        "train",
        "--hidden",
        "24",
        "--batch",
        "64",
        "--train-size",
        "1024",
    ]
    .iter()
    .chain(epochs)
    .chain(extra)
    .map(|s| s.to_string())
    .collect();
    v.extend(["--out".into(), out.display().to_string()]);
    v
}

/// `mpirun` with the flags this machine needs: more ranks than cores, and root (CI).
fn mpirun() -> Command {
    let mut c = Command::new("mpirun");
    c.arg("--oversubscribe")
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("XDG_RUNTIME_DIR", std::env::temp_dir());
    c
}

/// Starts `c` with stdout and stderr read line by line into a channel.
fn spawn(mut c: Command) -> (Child, mpsc::Receiver<String>) {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun runs (apt-get install openmpi-bin)");
    let (tx, rx) = mpsc::channel();
    let pipes: [Box<dyn Read + Send>; 2] = [
        Box::new(child.stdout.take().unwrap()),
        Box::new(child.stderr.take().unwrap()),
    ];
    for pipe in pipes {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(|l| l.ok()) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    (child, rx)
}

/// Waits for `child` at most `BOUND`: its exit status and every line it printed.
fn finish(
    mut child: Child,
    rx: &mpsc::Receiver<String>,
    text: &mut String,
) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        text.extend(rx.try_iter().map(|l| l + "\n"));
        if let Some(status) = child.try_wait().unwrap() {
            std::thread::sleep(Duration::from_millis(200));
            text.extend(rx.try_iter().map(|l| l + "\n"));
            return status;
        }
        if start.elapsed() > BOUND {
            child.kill().ok();
            panic!("the job still runs {BOUND:?} after the failure (a hang):\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run(c: Command) -> String {
    let (child, rx) = spawn(c);
    let mut text = String::new();
    let status = finish(child, &rx, &mut text);
    assert!(status.success(), "failed:\n{text}");
    text
}

/// The `(train acc, test acc)` columns of every epoch line.
fn accuracies(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("epoch ") && l.contains("train acc"))
        .map(|l| {
            l.split("  ")
                .filter(|f| f.contains("acc"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn max_weight_diff(a: &Path, b: &Path) -> f32 {
    let cfg = LstmConfig::new(28, 24).batch_first(true);
    let load = |d: &Path| {
        flatten(&load_checkpoint(&d.join("mnist_lstm.safetensors"), Some((&cfg, 10))).unwrap())
    };
    let (a, b) = (load(a), load(b));
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Two ranks (each its own process, on its own device) against one process, with the
/// same seed and global batch: the same accuracies every epoch, weights to 1e-4.
fn two_ranks_against_one(device: &str) {
    let (one, two) = (
        out_dir(&format!("one-{device}")),
        out_dir(&format!("two-{device}")),
    );
    let mut single = Command::new(BIN);
    single.args(train_args(&one, &["--device", device]));
    let single = run(single);
    let mut c = mpirun();
    c.args(["-np", "2", BIN])
        .args(train_args(&two, &["--device", device, "--distributed"]));
    let text = run(c);
    assert!(
        text.contains("rank 1 of 2") && text.contains("rows 32..64"),
        "{text}"
    );
    assert_eq!(
        text.matches("epoch  3:").count(),
        1,
        "rank 0 alone reports:\n{text}"
    );
    assert_eq!(accuracies(&text), accuracies(&single), "{text}\n{single}");
    let diff = max_weight_diff(&one, &two);
    eprintln!("{device}: 2 ranks vs 1 process after 3 epochs: max |Δw| = {diff:.2e}");
    assert!(diff < 1e-4, "max |Δw| = {diff}");
    for d in [one, two] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn two_ranks_end_where_one_process_ends() {
    two_ranks_against_one("cpu");
}

#[test]
fn two_ranks_on_the_gpu_path() {
    if common::shared_context().is_none() {
        return;
    }
    two_ranks_against_one("gpu");
}

/// MPMD: rank 1 is given a data folder that does not exist. It says so and aborts the
/// job, and rank 0, waiting in the first collective, stops too.
#[test]
fn a_rank_with_bad_input_ends_the_job() {
    let out = out_dir("bad-input");
    let mut c = mpirun();
    c.args(["-np", "1", BIN])
        .args(train_args(&out, &["--device", "cpu", "--distributed"]))
        .args([":", "-np", "1", BIN])
        .args(train_args(
            &out,
            &[
                "--device",
                "cpu",
                "--distributed",
                "--data",
                "/no/such/folder",
            ],
        ));
    let (child, rx) = spawn(c);
    let mut text = String::new();
    let status = finish(child, &rx, &mut text);
    assert!(!status.success(), "{text}");
    assert!(
        text.contains("rank 1 of 2 failed") && text.contains("/no/such/folder"),
        "{text}"
    );
    assert!(text.contains("MPI_Abort"), "{text}");
    std::fs::remove_dir_all(out).ok();
}

/// Rank 1 is killed (SIGKILL) in the middle of training: mpirun notices and ends rank 0,
/// which would otherwise wait in the all-reduce forever.
#[test]
fn a_killed_rank_ends_the_job() {
    let out = out_dir("killed");
    let mut c = mpirun();
    c.args(["-np", "2", BIN]).args(train_args(
        &out,
        &["--device", "cpu", "--distributed", "--epochs", "1000"],
    ));
    let (child, rx) = spawn(c);
    let mut text = String::new();
    let started = Instant::now();
    let pid = loop {
        let line = rx
            .recv_timeout(BOUND.saturating_sub(started.elapsed()))
            .unwrap_or_else(|_| panic!("rank 1 never started:\n{text}"));
        text.push_str(&line);
        text.push('\n');
        if let Some(rest) = line.strip_prefix("rank 1 of 2 (pid ") {
            break rest.split(')').next().unwrap().to_string();
        }
    };
    std::thread::sleep(Duration::from_secs(2)); // let training get under way
    let killed = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    assert!(killed.success());
    let status = finish(child, &rx, &mut text);
    assert!(!status.success(), "{text}");
    assert!(
        text.contains("signal 9") || text.contains("Killed"),
        "{text}"
    );
    std::fs::remove_dir_all(out).ok();
}
