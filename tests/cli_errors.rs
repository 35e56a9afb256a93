//! Bad command lines and bad files give a short error and a non-zero exit from both
//! binaries, never a panic or a backtrace hint.

use std::path::PathBuf;
use std::process::Command;

use lstm_wgpu::interop::{npy, torch};
use lstm_wgpu::{LstmConfig, LstmWeights};
use ndarray::{Array1, Array2, Array3};

const LSTM_WGPU: &str = env!("CARGO_BIN_EXE_lstm-wgpu");
const LSTM_BENCH: &str = env!("CARGO_BIN_EXE_lstm-bench");

/// One bad invocation: the binary, its arguments, and text the error line must contain.
struct Case {
    bin: &'static str,
    args: Vec<String>,
    needle: &'static str,
}

/// A case from a whitespace-separated command line; `{d}` in an argument stands for
/// the scratch directory (substituted after splitting, so the path may hold spaces).
fn case(bin: &'static str, line: &str, needle: &'static str) -> Case {
    let dir = scratch_dir().display().to_string();
    Case {
        bin,
        args: line
            .split_whitespace()
            .map(|a| a.replace("{d}", &dir))
            .collect(),
        needle,
    }
}

/// Runs `c` and checks its exit status and stderr: the error line (the first line
/// that starts with `error`) names the problem, only `caused by:` lines or clap's
/// hints follow it, and nothing mentions a panic.
fn check(c: &Case) {
    let o = Command::new(c.bin)
        .args(&c.args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("binary runs");
    let err = String::from_utf8_lossy(&o.stderr);
    let what = format!("{} {:?}:\n{err}", c.bin, c.args);
    assert!(!o.status.success(), "succeeded: {what}");
    assert!(o.status.code().is_some(), "killed by a signal: {what}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "panic: {what}"
    );
    let lines: Vec<&str> = err.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("error"))
        .unwrap_or_else(|| panic!("no error line: {what}"));
    assert!(
        lines[at].contains(c.needle),
        "error line lacks {:?}: {what}",
        c.needle
    );
    let clap_hint = |l: &&str| {
        l.is_empty()
            || l.starts_with("  [possible values")
            || l.starts_with("  tip:")
            || l.starts_with("For more information")
            || l.starts_with("Usage:")
    };
    for l in &lines[at + 1..] {
        assert!(
            l.starts_with("  caused by: ") || clap_hint(l),
            "unexpected line {l:?} after the error: {what}"
        );
    }
    assert!(lines.len() - at <= 8, "long error: {what}");
}

/// Values clap rejects before anything runs.
fn value_cases() -> Vec<Case> {
    let (w, b) = (LSTM_WGPU, LSTM_BENCH);
    vec![
        case(w, "train --batch 0", "--batch"),
        case(w, "train --hidden 0", "--hidden"),
        case(w, "train --schedule bogus", "--schedule"),
        case(w, "train --device tpu", "--device"),
        case(w, "train --init foo", "--init"),
        case(w, "train --epochs x", "--epochs"),
        case(w, "train --epochs -1", "-1"),
        case(w, "train --lr fast", "--lr"),
        case(w, "compare --seq 0", "--seq"),
        case(w, "compare --batch 0", "--batch"),
        case(w, "compare --input 0", "--input"),
        case(w, "compare --hidden 0", "--hidden"),
        case(w, "compare --layers 0", "--layers"),
        case(w, "compare --peephole half", "--peephole"),
        case(w, "convert --weights w --out o --format tf", "--format"),
        case(w, "forward --device tpu", "--device"),
        case(w, "bogus-command", "bogus-command"),
        case(b, "--shapes S1,S9", "S9"),
        case(b, "--kernels fast", "--kernels"),
        case(b, "--repeats 0", "--repeats"),
        case(b, "--threads 3", "--threads"),
        case(b, "--seed -4", "-4"),
        case(b, "--no-such-option", "--no-such-option"),
    ]
}

#[test]
fn bad_option_values() {
    for c in value_cases() {
        check(&c);
    }
}

/// This test process's scratch directory.
fn scratch_dir() -> PathBuf {
    std::env::temp_dir().join(format!("lstm-wgpu-cli-errors-{}", std::process::id()))
}

/// The scratch directory filled with bad files for the run-time cases; removed on drop.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new() -> Files {
        let dir = scratch_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let f = Files { dir };
        f.write_data_sets();
        f.write_weights_and_inputs();
        f
    }

    /// `garbage/`: random bytes; `truncated/`: headers that promise more than there is;
    /// `gz/`: a .gz file that is not gzip.
    fn write_data_sets(&self) {
        let write = |sub: &str, name: &str, bytes: &[u8]| {
            let d = self.dir.join(sub);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(name), bytes).unwrap();
        };
        let junk: Vec<u8> = (0..200u32).map(|i| (i * 7919 % 251) as u8 | 1).collect();
        write("garbage", "images-idx3-ubyte", &junk);
        write("garbage", "labels-idx1-ubyte", &junk);
        let mut images = vec![0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28];
        images.extend([0u8; 100]);
        write("truncated", "images-idx3-ubyte", &images);
        write(
            "truncated",
            "labels-idx1-ubyte",
            &[0, 0, 8, 1, 0, 0, 0, 10, 1, 2],
        );
        write("gz", "images-idx3-ubyte.gz", &junk);
        write("gz", "labels-idx1-ubyte.gz", &junk);
    }

    /// Torch weights (I = 3, H = 4), a corrupt weight file and inputs of several shapes.
    fn write_weights_and_inputs(&self) {
        let w = LstmWeights::init(&LstmConfig::new(3, 4), 0).unwrap();
        torch::save_safetensors(&w, &self.dir.join("w.safetensors")).unwrap();
        let mut bytes = std::fs::read(self.dir.join("w.safetensors")).unwrap();
        bytes.truncate(bytes.len() / 2);
        std::fs::write(self.dir.join("cut.safetensors"), &bytes).unwrap();
        std::fs::write(
            self.dir.join("junk.safetensors"),
            b"\xff\xff\xff\xff not one",
        )
        .unwrap();
        let npy = |name: &str| self.dir.join(name);
        npy::write(&npy("x.npy"), &Array3::<f32>::zeros((5, 2, 3))).unwrap();
        npy::write(&npy("x2d.npy"), &Array2::<f32>::zeros((5, 3))).unwrap();
        npy::write(&npy("x_wide.npy"), &Array3::<f32>::zeros((5, 2, 7))).unwrap();
        npy::write(&npy("h_bad.npy"), &Array3::<f32>::zeros((1, 3, 4))).unwrap();
        npy::write(&npy("lens_long.npy"), &Array1::<i64>::from(vec![5, 9])).unwrap();
        npy::write(&npy("lens_neg.npy"), &Array1::<i64>::from(vec![5, -1])).unwrap();
        std::fs::write(npy("x_junk.npy"), b"\x93NUMPY garbage").unwrap();
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// Commands that start and then meet a bad file or a bad size.
fn run_cases() -> Vec<Case> {
    let w = LSTM_WGPU;
    let train = "train --device cpu --epochs 0 --out {d}/train-out";
    let base = "forward --device cpu --out {d}/out --input {d}/x.npy --weights";
    let fwd = "forward --device cpu --out {d}/out --weights {d}/w.safetensors";
    let x = format!("{fwd} --input {{d}}/x.npy");
    let cases = [
        (format!("{train} --data /nonexistent"), "/nonexistent"),
        (format!("{train} --data {{d}}/garbage"), "not an IDX file"),
        (format!("{train} --data {{d}}/truncated"), "truncated"),
        (format!("{train} --data {{d}}/gz"), "images-idx3-ubyte.gz"),
        (format!("{train} --train-size 20000"), "20000"),
        (format!("{train} --validation 9000"), "--validation"),
        (format!("{base} {{d}}/nope.safetensors"), "nope.safetensors"),
        (format!("{base} {{d}}/cut.safetensors"), "safetensors"),
        (format!("{base} {{d}}/junk.safetensors"), "safetensors"),
        (format!("{fwd} --input {{d}}/x2d.npy"), "x2d.npy"),
        (format!("{fwd} --input {{d}}/x_wide.npy"), "input_size 3"),
        (format!("{fwd} --input {{d}}/x_junk.npy"), "x_junk.npy"),
        (format!("{fwd} --input {{d}}/missing.npy"), "missing.npy"),
        (
            format!("{x} --h0 {{d}}/h_bad.npy --c0 {{d}}/h_bad.npy"),
            "h_0",
        ),
        (
            format!("{x} --seq-lens {{d}}/lens_long.npy"),
            "outside 1..=5",
        ),
        (format!("{x} --seq-lens {{d}}/lens_neg.npy"), "negative"),
        (format!("{x} --format keras"), "recurrent_kernel"),
        (
            "compare --seq 100000000000 --batch 100000000000".into(),
            "memory",
        ),
        ("compare --hidden 100000".into(), "too large"),
        (
            "compare --layers 1000000000000000000 --hidden 1".into(),
            "num_layers",
        ),
    ];
    cases
        .iter()
        .map(|(line, needle)| case(w, line, needle))
        .collect()
}

#[test]
fn bad_files_and_sizes() {
    let _files = Files::new();
    for c in run_cases() {
        check(&c);
    }
}
