//! `apps::generate`: the loss gradient against finite differences, GPU = CPU, inputs,
//! a short training run, sampling and completion, checkpoints and the PNGs. (The
//! quality figures of the default ≤ 5-minute training are measured by the command in
//! the README, not here: the suite stays fast.)

mod common;

use common::*;
use lstm_wgpu::apps::generate::{self as gen, Digits, GenDevice, GenTrainConfig, SampleOptions};
use lstm_wgpu::train::ClassifierParams;
use lstm_wgpu::LstmConfig;
use ndarray::{s, Array3};

/// A tiny generator-shaped model: 5 inputs, 3 units, a head of 4.
fn tiny() -> (ClassifierParams, Array3<f32>, Array3<f32>) {
    // One bias (b_ih; b_hh stays 0), as the generator trains it.
    let p = ClassifierParams::init(&LstmConfig::new(5, 3).batch_first(true), 4, 1.0, 1).unwrap();
    let x = random((2, 4, 5), 3);
    let targets = random((2, 4, 4), 4).mapv(|v| 0.5 + 0.5 * v);
    (p, x, targets)
}

/// Every parameter of `p` as one flat list of `(tensor, index)` handles, read or written
/// through `visit`.
fn visit(p: &mut ClassifierParams, mut f: impl FnMut(&str, usize, &mut f32)) {
    let l = &mut p.lstm.layers[0];
    let named: [(&str, &mut [f32]); 5] = [
        ("w_ih", l.w_ih.as_slice_mut().unwrap()),
        ("w_hh", l.w_hh.as_slice_mut().unwrap()),
        ("b_ih", l.b_ih.as_mut().unwrap().as_slice_mut().unwrap()),
        ("fc.weight", p.dense.weight.as_slice_mut().unwrap()),
        ("fc.bias", p.dense.bias.as_slice_mut().unwrap()),
    ];
    for (name, s) in named {
        for (i, v) in s.iter_mut().enumerate() {
            f(name, i, v);
        }
    }
}

#[test]
fn gradient_matches_finite_differences() {
    let (p, x, t) = tiny();
    let (loss, grads) = gen::loss_and_gradients(&p, x.view(), t.view(), &GenDevice::Cpu).unwrap();
    assert!((loss - gen::loss(&p, x.view(), t.view()).unwrap()).abs() < 1e-6);
    let mut analytic = Vec::new();
    visit(&mut grads.clone(), |name, i, v| {
        analytic.push((name.to_string(), i, *v))
    });
    let eps = 1e-2f32;
    let mut checked = 0;
    for (name, i, an) in analytic {
        let at = |delta: f32| {
            let mut q = p.clone();
            visit(&mut q, |n, j, v| {
                if n == name && j == i {
                    *v += delta;
                }
            });
            f64::from(gen::loss(&q, x.view(), t.view()).unwrap())
        };
        let fd = ((at(eps) - at(-eps)) / (2.0 * f64::from(eps))) as f32;
        assert!(
            (fd - an).abs() <= 2e-4 + 2e-2 * an.abs(),
            "{name}[{i}]: analytic {an} vs finite difference {fd}"
        );
        checked += 1;
    }
    assert_eq!(checked, 15 * 4 + 12 * 3 + 12 + 12 + 4);
}

#[test]
fn gpu_gradient_equals_cpu() {
    let Some(ctx) = shared_context() else { return };
    let (p, x, t) = tiny();
    let (l_cpu, g_cpu) = gen::loss_and_gradients(&p, x.view(), t.view(), &GenDevice::Cpu).unwrap();
    let (l_gpu, g_gpu) =
        gen::loss_and_gradients(&p, x.view(), t.view(), &GenDevice::Gpu(ctx)).unwrap();
    assert!((l_cpu - l_gpu).abs() < 1e-5);
    assert_close(
        "fc.weight",
        &g_gpu.dense.weight,
        &g_cpu.dense.weight,
        GRAD_ATOL,
        GRAD_RTOL,
    );
    let (a, b) = (&g_gpu.lstm.layers[0], &g_cpu.lstm.layers[0]);
    assert_close("w_ih", &a.w_ih, &b.w_ih, GRAD_ATOL, GRAD_RTOL);
    assert_close("w_hh", &a.w_hh, &b.w_hh, GRAD_ATOL, GRAD_RTOL);
}

#[test]
fn teacher_inputs_shift_rows_and_add_the_class() {
    let images = random((2, 28, 28), 9).mapv(f32::abs);
    let x = gen::teacher_inputs(images.view(), &[3, 9]).unwrap();
    assert_eq!(x.dim(), (2, 28, 38));
    assert!(
        x.slice(s![.., 0, ..28]).iter().all(|&v| v == 0.0),
        "step 0 sees a blank row"
    );
    assert_eq!(x.slice(s![1, 5, ..28]), images.slice(s![1, 4, ..]));
    assert_eq!(x[[0, 7, 28 + 3]], 1.0);
    assert_eq!(x.slice(s![0, 7, 28..]).sum(), 1.0);
    assert!(
        gen::teacher_inputs(images.view(), &[3, 10]).is_err(),
        "class 10"
    );
    assert!(
        gen::teacher_inputs(images.view(), &[3]).is_err(),
        "one label short"
    );
}

/// A small generator trained for one short epoch on 640 digits.
fn short_training() -> (ClassifierParams, lstm_wgpu::data::Mnist) {
    let (train, test) = lstm_wgpu::data::load_bundled_mnist()
        .unwrap()
        .split(8000)
        .unwrap();
    let labels: Vec<usize> = train.labels.iter().map(|&l| l as usize).collect();
    let n = 640;
    let digits = Digits {
        images: train.images.slice(s![..n, .., ..]),
        labels: &labels[..n],
    };
    let cfg = GenTrainConfig {
        epochs: 1,
        batch: 64,
        lr: 1e-2,
        ..Default::default()
    };
    let p0 = gen::init_generator(24, 0).unwrap();
    let before = gen::train::teacher_forced_loss(&p0, digits).unwrap();
    let (p, hist) =
        gen::train_generator(p0, digits, Some(digits), &cfg, GenDevice::Cpu, &mut ()).unwrap();
    assert_eq!(hist.len(), 1);
    assert!(
        hist[0].eval_loss < 0.8 * before,
        "training lowers the loss: {before} → {}",
        hist[0].eval_loss
    );
    (p, test)
}

#[test]
fn trains_samples_and_completes() {
    let (p, test) = short_training();
    let opts = SampleOptions {
        temperature: 0.5,
        binary: false,
        seed: 4,
    };
    let classes = [0, 1, 2, 9];
    let a = gen::sample(&p, &classes, &opts).unwrap();
    assert_eq!(a.images.dim(), (4, 28, 28));
    assert!(a
        .images
        .iter()
        .chain(a.probs.iter())
        .all(|v| (0.0..=1.0).contains(v)));
    assert_eq!(
        a,
        gen::sample(&p, &classes, &opts).unwrap(),
        "seeded: the same digits again"
    );
    let other = gen::sample(&p, &classes, &SampleOptions { seed: 5, ..opts }).unwrap();
    assert_ne!(a.images, other.images, "another seed, other digits");
    let bin = gen::sample(
        &p,
        &classes,
        &SampleOptions {
            binary: true,
            ..opts
        },
    )
    .unwrap();
    assert!(bin.images.iter().all(|&v| v == 0.0 || v == 1.0));

    let top = test.images.slice(s![..6, ..14, ..]);
    let done = gen::continue_digits(&p, top, &[0; 6], &opts).unwrap();
    assert_eq!(
        done.images.slice(s![.., ..14, ..]),
        top,
        "the given rows are kept"
    );
    let mean = gen::mean_image(test.images.view()).unwrap();
    let c = gen::completion_bce(
        &p,
        test.images.slice(s![..50, .., ..]),
        mean.view(),
        14,
        &opts,
    )
    .unwrap();
    assert!(c.model_bce.is_finite() && c.baseline_bce > 0.0);
    assert_eq!(c.classes.len(), 50);

    assert!(gen::sample(&p, &[10], &opts).is_err(), "class 10");
    assert!(gen::sample(
        &p,
        &[1],
        &SampleOptions {
            temperature: -1.0,
            ..opts
        }
    )
    .is_err());
    let wrong =
        ClassifierParams::init(&LstmConfig::new(28, 8).batch_first(true), 10, 1.0, 0).unwrap();
    assert!(
        gen::sample(&wrong, &[1], &opts).is_err(),
        "a classifier is not a generator"
    );

    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("generate-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt = dir.join("gen.safetensors");
    lstm_wgpu::train::save_checkpoint(&ckpt, &p).unwrap();
    let back = lstm_wgpu::train::load_checkpoint(&ckpt, None).unwrap();
    assert_eq!(
        gen::sample(&back, &classes, &opts).unwrap(),
        a,
        "a reloaded generator draws the same"
    );
    #[cfg(feature = "plot")]
    pngs(
        &dir,
        &a.images,
        &test.images.slice(s![..6, .., ..]).to_owned(),
        &done.probs,
    );
}

#[cfg(feature = "plot")]
fn pngs(
    dir: &std::path::Path,
    drawn: &Array3<f32>,
    originals: &Array3<f32>,
    completed: &Array3<f32>,
) {
    use lstm_wgpu::apps::render::{
        completion_grid, completion_size, digit_grid, grid_size, save_png,
    };
    let check = |path: &std::path::Path, size: (u32, u32)| {
        let img = image::open(path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), size, "{}", path.display());
        let bright = img
            .pixels()
            .filter(|p| p.0.iter().any(|&c| c > 128))
            .count();
        assert!(
            bright > 100,
            "{}: digits drawn ({bright} bright pixels)",
            path.display()
        );
    };
    let grid = dir.join("grid.png");
    save_png(&digit_grid(drawn.view(), 2).unwrap(), &grid).unwrap();
    check(&grid, grid_size(2, 2));
    let comp = dir.join("completion.png");
    save_png(
        &completion_grid(originals.view(), completed.view(), 14, 4).unwrap(),
        &comp,
    )
    .unwrap();
    check(&comp, completion_size(6, 4));
    assert!(
        digit_grid(drawn.slice(s![.., ..27, ..]), 2).is_err(),
        "27 rows is not a digit"
    );
}

/// The command end to end on a tiny, one-epoch generator: files, sizes, printed figures.
#[cfg(feature = "cli")]
#[test]
fn generate_command() {
    use lstm_wgpu::apps::render::{completion_size, grid_size};
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("generate-cli");
    let _ = std::fs::remove_dir_all(&dir);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .args([
            "generate",
            "--epochs",
            "1",
            "--hidden",
            "8",
            "--per-class",
            "3",
        ])
        .args([
            "--complete",
            "--complete-show",
            "7",
            "--device",
            "cpu",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("mean per-pixel cross-entropy"), "{text}");
    let size = |f: &str| image::open(dir.join(f)).unwrap().to_rgb8().dimensions();
    assert_eq!(size("samples.png"), grid_size(10, 3));
    assert_eq!(size("completion.png"), completion_size(7, 5));
    assert!(dir.join("generator.safetensors").exists());
}
