//! The training-curve PNG: right size, really drawn, clear errors.
#![cfg(feature = "plot")]

use std::path::{Path, PathBuf};

use lstm_wgpu::plot::{plot_training, EpochPoint, PLOT_SIZE};
use lstm_wgpu::LstmError;

fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plot-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Ten epochs of a plausible MNIST run.
fn fake_run(epochs: usize) -> Vec<EpochPoint> {
    (1..=epochs)
        .map(|e| {
            let t = e as f64;
            EpochPoint {
                epoch: e,
                train_loss: 0.05 + 0.6 / t,
                train_acc: 1.0 - 0.12 / t,
                test_acc: 0.985 - 0.1 / t,
            }
        })
        .collect()
}

fn decode(path: &Path) -> image::RgbImage {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .unwrap()
        .to_rgb8()
}

fn count(img: &image::RgbImage, f: impl Fn(&image::Rgb<u8>) -> bool) -> usize {
    img.pixels().filter(|p| f(p)).count()
}

#[test]
fn writes_a_readable_png() {
    let path = tmp("training.png");
    let _ = std::fs::remove_file(&path);
    plot_training(&path, "LSTM(256) on MNIST rows — GPU", &fake_run(10)).unwrap();
    let img = decode(&path);
    assert_eq!(img.dimensions(), PLOT_SIZE);

    let first = *img.get_pixel(0, 0);
    assert!(img.pixels().any(|p| *p != first), "not all one colour");
    // Mostly white background, with dark text and axes, and both curve colours.
    let white = count(&img, |p| p.0 == [255, 255, 255]);
    assert!(white > img.len() / 3 / 2, "background is white");
    let dark = count(&img, |p| p.0.iter().all(|&c| c < 80));
    assert!(dark > 2_000, "text and axes drawn: {dark} dark pixels");
    let blue = count(&img, |p| p.0 == [31, 119, 180]);
    let orange = count(&img, |p| p.0 == [230, 110, 0]);
    assert!(
        blue > 300 && orange > 150,
        "curves drawn: {blue} blue, {orange} orange"
    );
    // Text in both halves (tick labels, captions): dark pixels away from the axes lines.
    let half = PLOT_SIZE.0 / 2;
    for (lo, hi) in [(0, half), (half, PLOT_SIZE.0)] {
        let n = img
            .enumerate_pixels()
            .filter(|(x, _, p)| (lo..hi).contains(x) && p.0.iter().all(|&c| c < 80))
            .count();
        assert!(n > 800, "panel {lo}..{hi} has {n} dark pixels");
    }
}

#[test]
fn odd_but_valid_inputs_still_plot() {
    // One epoch; unsorted epochs; a diverged (NaN / infinite) loss; accuracy 0 and 1.
    let one = &fake_run(1);
    let mut shuffled = fake_run(5);
    shuffled.reverse();
    let mut diverged = fake_run(4);
    diverged[2].train_loss = f64::NAN;
    diverged[3].train_loss = f64::INFINITY;
    diverged[3].test_acc = f64::NAN;
    let extremes = vec![
        EpochPoint {
            epoch: 0,
            train_loss: 2.3,
            train_acc: 0.0,
            test_acc: 0.0,
        },
        EpochPoint {
            epoch: 60,
            train_loss: 0.0,
            train_acc: 1.0,
            test_acc: 1.0,
        },
    ];
    for (name, points) in [
        ("one", one.clone()),
        ("shuffled", shuffled),
        ("diverged", diverged),
        ("extremes", extremes),
    ] {
        let path = tmp(&format!("{name}.png"));
        plot_training(&path, name, &points).unwrap();
        assert_eq!(decode(&path).dimensions(), PLOT_SIZE, "{name}");
    }
}

#[test]
fn bad_inputs_are_clear_errors() {
    let e = plot_training(&tmp("empty.png"), "t", &[]).unwrap_err();
    assert!(matches!(e, LstmError::Value { .. }), "{e:?}");
    assert!(e.to_string().contains("no epochs"), "{e}");

    let mut percent = fake_run(3);
    percent[1].test_acc = 97.5;
    let e = plot_training(&tmp("percent.png"), "t", &percent).unwrap_err();
    assert!(matches!(e, LstmError::Value { .. }), "{e:?}");
    assert!(
        e.to_string().contains("test_acc of epoch 2") && e.to_string().contains("[0, 1]"),
        "{e}"
    );

    let missing = tmp("no/such/folder/plot.png");
    let e = plot_training(&missing, "t", &fake_run(3)).unwrap_err();
    assert!(matches!(e, LstmError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("plot.png"), "{e}");
}
