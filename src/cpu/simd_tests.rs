//! The fast step against the readable `lstm_step`.

use super::*;
use crate::config::{LstmConfig, Peephole};
use crate::cpu::gemm::PackedWeights;
use crate::weights::{LayerWeights, LstmWeights};
use ndarray::Array2;
use rand::{Rng, SeedableRng};

fn random(rows: usize, cols: usize, seed: u64, scale: f32) -> Array2<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((rows, cols), || scale * rng.random_range(-1.0f32..1.0))
}

#[test]
fn exp_sigmoid_tanh_match_std() {
    let mut worst = (0.0f64, 0.0f64, 0.0f64);
    for i in -200_000..=200_000 {
        let x = i as f32 * 4.35e-4; // [-87, 87]
        let e = f64::from(x).exp();
        worst.0 = worst.0.max(((f64::from(exp(x)) - e) / e).abs());
        let s = 1.0 / (1.0 + (-f64::from(x)).exp());
        worst.1 = worst.1.max((f64::from(sigmoid(x)) - s).abs());
        worst.2 = worst
            .2
            .max((f64::from(tanh(x)) - f64::from(x).tanh()).abs());
    }
    assert!(worst.0 < 3e-7, "exp relative error {}", worst.0);
    assert!(worst.1 < 2e-7, "sigmoid absolute error {}", worst.1);
    assert!(worst.2 < 3e-7, "tanh absolute error {}", worst.2);
    assert_eq!(exp(-1000.0), exp(-87.0));
    assert!(exp(f32::NAN).is_nan() && tanh(f32::NAN).is_nan());
    assert_eq!(tanh(0.0), 0.0);
    assert_eq!(tanh(50.0), 1.0);
    assert_eq!(tanh(-50.0), -1.0);
}

/// `pow2` is exactly `2^n` over the whole range `exp` reaches.
#[test]
fn pow2_is_exact() {
    for n in -126..=127 {
        assert_eq!(pow2(n as f32), 2.0f32.powi(n), "2^{n}");
    }
}

/// The fast step against the readable `lstm_step`, every peephole mode, batches on
/// both sides of the matrix-vector threshold, an inactive row, H not a multiple of 16;
/// at B ≤ 4 over the row-major weights (fresh packs, one step) and over packed ones
/// (kept packs: `panel_matvec`), walked either way, with the same bits both walks.
#[test]
fn step_in_place_matches_lstm_step() {
    for peephole in [Peephole::None, Peephole::Diagonal, Peephole::Full] {
        for b in [1, 3, MATVEC_MAX_BATCH + 3] {
            let hs = 37;
            let cfg = LstmConfig::new(5, hs).peephole(peephole);
            let w = &LstmWeights::init(&cfg, 9).unwrap().layers[0];
            for kept in [false, true] {
                let packs = LayerPacks::new(kept);
                let sw = StepWeights::new(w, (1, b), &packs);
                let tag = format!("{peephole:?} B={b} kept packs {kept}");
                let forward = check_step(w, &sw, b, &tag);
                let backward = check_step(w, &sw.walking(Walk::Backward), b, &tag);
                assert_eq!(forward, backward, "{tag}: the walk changed the bits");
            }
        }
    }
}

/// `step_in_place` through `sw` against `lstm_step` on random inputs of `b` rows, split
/// over two threads, and with its input projected in the recurrent product (the same
/// bits both ways); returns `(h, c)`.
fn check_step(
    w: &LayerWeights,
    sw: &StepWeights,
    b: usize,
    tag: &str,
) -> (Array2<f32>, Array2<f32>) {
    let hs = w.w_hh.ncols();
    let (x, bias) = (random(b, 6, 4, 2.0), random(1, 4 * hs, 5, 1.0));
    let w_ih = PackedWeights::new(random(4 * hs, 6, 6, 1.0).view());
    let fused = StepInput::Fused(crate::cpu::gemm::InputProjection {
        x: x.as_slice().unwrap(),
        w_ih: &w_ih,
        bias: bias.as_slice().unwrap(),
    });
    let mut gx = Array2::from_elem((b, 4 * hs), f32::NAN);
    fused.write_into(&mut gx.view_mut());
    let h0 = random(b, hs, 2, 1.0);
    let c0 = random(b, hs, 3, 3.0);
    let active: Vec<bool> = (0..b).map(|i| i != 1).collect();
    let (want_h, want_c) =
        crate::cpu::lstm_step(gx.view(), h0.view(), c0.view(), w, &active).unwrap();
    let run = |input: StepInput, split: bool| {
        let (mut h, mut c) = (h0.clone(), c0.clone());
        let mut z = Array2::from_elem((b, 4 * hs), f32::NAN);
        step_split(input, &mut h, &mut c, sw, &active, &mut z, split);
        (h, c)
    };
    let hc = run(StepInput::Projected(gx.view()), false);
    // The same step with the batch split over two threads, and projecting as it goes:
    // identical bits (a zero's sign included).
    let bits = |(h, c): &(Array2<f32>, Array2<f32>)| -> Vec<u32> {
        h.iter().chain(c).map(|v| v.to_bits()).collect()
    };
    let split = run(StepInput::Projected(gx.view()), true);
    assert!(bits(&hc) == bits(&split), "{tag}: split");
    for split in [false, true] {
        let fused = run(fused, split);
        assert!(bits(&hc) == bits(&fused), "{tag}: fused, split {split}");
    }
    let (h, c) = hc;
    for (got, want) in [(&h, &want_h), (&c, &want_c)] {
        let err = got
            .iter()
            .zip(want.iter())
            .map(|(g, w)| (g - w).abs() / (1.0 + w.abs()))
            .fold(0.0f32, f32::max);
        assert!(err < 2e-6, "{tag}: error {err}");
    }
    (h, c)
}

/// From a zero state (`c` too with Full peepholes) the step may skip its recurrent
/// products, and gives the values of the step that computes them (`==`: a zero may
/// differ in sign); a state with one non-zero value does not skip.
#[test]
fn a_step_from_zero_skips_the_products() {
    for peephole in [Peephole::None, Peephole::Diagonal, Peephole::Full] {
        for b in [1, MATVEC_MAX_BATCH + 3] {
            let hs = 37;
            let cfg = LstmConfig::new(5, hs).peephole(peephole);
            let w = &LstmWeights::init(&cfg, 9).unwrap().layers[0];
            let gx = random(b, 4 * hs, 1, 2.0);
            let c0 = match peephole {
                Peephole::Full => Array2::zeros((b, hs)),
                _ => random(b, hs, 3, 3.0),
            };
            let mut h0 = Array2::zeros((b, hs));
            assert!(
                starts_from_zero(h0.view(), c0.view(), w),
                "{peephole:?}: zero state"
            );
            let active = vec![true; b];
            let packs = LayerPacks::new(false);
            let sw = StepWeights::new(w, (1, b), &packs);
            let run = |sw: &StepWeights, h0: &Array2<f32>| {
                let (mut h, mut c) = (h0.clone(), c0.clone());
                let mut z = Array2::from_elem((b, 4 * hs), f32::NAN);
                step_in_place(
                    StepInput::Projected(gx.view()),
                    &mut h,
                    &mut c,
                    sw,
                    &active,
                    &mut z,
                );
                (h, c)
            };
            let (full, skipped) = (run(&sw, &h0), run(&sw.for_zero_state(), &h0));
            assert!(full.0.iter().all(|v| v.is_finite()));
            assert_eq!(full, skipped, "{peephole:?} B={b}");
            h0[[b - 1, hs - 1]] = 0.5;
            assert!(
                !starts_from_zero(h0.view(), c0.view(), w),
                "{peephole:?}: h not zero"
            );
        }
    }
    let full = LstmConfig::new(5, 8).peephole(Peephole::Full);
    let w = &LstmWeights::init(&full, 9).unwrap().layers[0];
    let c = Array2::from_elem((2, 8), 0.25);
    assert!(
        !starts_from_zero(Array2::zeros((2, 8)).view(), c.view(), w),
        "Full: c not zero"
    );
}
