//! Tests of `gemm.rs`: the packed kernel against ndarray's GEMM, its rows' independence
//! of the split, and the packing of every layout.

use super::*;
use crate::cpu::isa::Isa;
use ndarray::{s, Array1};
use rand::{Rng, SeedableRng};

/// A seeded uniform(-1, 1) matrix (also for `panel_matvec`'s tests).
pub(crate) fn random(shape: (usize, usize), rng: &mut impl Rng) -> Array2<f32> {
    Array2::from_shape_simple_fn(shape, || rng.random_range(-1.0f32..1.0))
}

/// The largest elementwise |a − b|.
pub(crate) fn max_diff(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max)
}

/// Every epilogue against ndarray's GEMM; the output NaN-poisoned where it is
/// overwritten.
#[test]
fn matches_ndarray_gemm() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    // Row counts around the kernels' rows, column counts around the 16-wide panel.
    for &(b, n, k) in &[
        (1, 16, 8),
        (5, 17, 3),
        (6, 32, 40),
        (13, 44, 37),
        (128, 1024, 64),
        (130, 20, 5),
        (600, 40, 9), // three row blocks
    ] {
        let (s, w) = (random((b, k), &mut rng), random((n, k), &mut rng));
        let (z0, bias) = (random((b, n), &mut rng), random((1, n), &mut rng));
        let packed = PackedWeights::new(w.view());
        let mut product = Array2::zeros((b, n));
        general_mat_mul(1.0, &s, &w.t(), 0.0, &mut product);
        let bias_row = bias.row(0).to_owned();
        let cases: [(Epilogue, Array2<f32>); 3] = [
            (Epilogue::Accumulate, &z0 + &product),
            (
                Epilogue::AddRow(bias_row.as_slice().unwrap()),
                &product + &bias_row,
            ),
            (Epilogue::AddMatrix(z0.as_slice().unwrap()), &z0 + &product),
        ];
        for (i, (epilogue, want)) in cases.into_iter().enumerate() {
            let mut got = match epilogue {
                Epilogue::Accumulate => z0.clone(),
                _ => Array2::from_elem((b, n), f32::NAN),
            };
            packed.mul(s.view(), &mut got.view_mut(), epilogue);
            let err = max_diff(&got, &want);
            assert!(
                err < 1e-5 * k as f32,
                "B={b} N={n} K={k} epilogue {i}: error {err}"
            );
        }
    }
}

/// Every way a matrix reaches the packing (rows of its own, a transpose, a block of
/// a transpose's columns, a strided view, blocks of rows, a repack over a larger
/// pack) gives the same panels, so the same bits, aligned to a cache line.
#[test]
fn every_layout_packs_the_same() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let (b, n, k) = (9, 37, 21);
    let (s, w) = (random((b, k), &mut rng), random((n, k), &mut rng));
    let wt = w.t().as_standard_layout().into_owned();
    let wide_t = ndarray::concatenate![ndarray::Axis(1), wt, random((k, 5), &mut rng)];
    let mut doubled = Array2::zeros((n, 2 * k));
    doubled.slice_mut(s![.., ..;2]).assign(&w);
    let mut reused = PackedWeights::new(random((70, 40), &mut rng).view());
    reused.repack(&[w.view()]);
    // A transpose repacked over a larger pack (that path does not zero the buffer).
    let mut reused_t = PackedWeights::new(random((70, 40), &mut rng).view());
    reused_t.repack(&[wt.t()]);
    let packs = [
        PackedWeights::new(wt.t()),
        PackedWeights::new(wide_t.slice(s![.., ..n]).t()),
        PackedWeights::new(doubled.slice(s![.., ..;2])),
        PackedWeights::from_blocks(&[w.slice(s![..20, ..]), w.slice(s![20.., ..])]),
        reused,
        reused_t,
    ];
    let product = |p: &PackedWeights| {
        let mut z = Array2::from_elem((b, n), f32::NAN);
        let zero = vec![0.0; n];
        p.mul(s.view(), &mut z.view_mut(), Epilogue::AddRow(&zero));
        z.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    };
    let want = product(&PackedWeights::new(w.view()));
    for (i, p) in packs.iter().enumerate() {
        assert!(product(p) == want, "layout {i}");
        // The last panel's rows past N are zero, as documented.
        if let Some((panels, _, _)) = p.panels() {
            // Each k of a panel on one cache line (BENCHMARKS.md §34).
            assert_eq!(panels.as_ptr() as usize % 64, 0, "layout {i}: alignment");
            let last = &panels[(n / NR) * k * NR..];
            let padding = last.chunks_exact(NR).flat_map(|row| &row[n % NR..]);
            assert!(
                padding.into_iter().all(|v| *v == 0.0),
                "layout {i}: padding"
            );
        }
    }
}

/// A row's bits do not depend on which rows it is computed with (the projection's
/// time chunks and the threads' halves rely on it).
#[test]
fn rows_do_not_depend_on_the_split() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
    let (b, n, k) = (600, 70, 53); // three row blocks
    let (s, w) = (random((b, k), &mut rng), random((n, k), &mut rng));
    let bias: Array1<f32> = random((1, n), &mut rng).row(0).to_owned();
    let packed = PackedWeights::new(w.view());
    let epilogue = Epilogue::AddRow(bias.as_slice().unwrap());
    let mut whole = Array2::from_elem((b, n), f32::NAN);
    packed.mul(s.view(), &mut whole.view_mut(), epilogue);
    for split in [1, 5, 6, 7, 120, 256, 258, 259, 599] {
        let mut parts = Array2::from_elem((b, n), f32::NAN);
        let (top, bottom) = parts.view_mut().split_at(ndarray::Axis(0), split);
        for (rows, mut out) in [
            (s.slice(s![..split, ..]), top),
            (s.slice(s![split.., ..]), bottom),
        ] {
            packed.mul(rows, &mut out, epilogue);
        }
        let same = whole
            .iter()
            .zip(parts.iter())
            .all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "split at {split}");
    }
}

/// The AVX-512 kernels give the AVX2 kernel's bits, every epilogue, at row counts
/// around both kernels' rows, partial last panels and K from 0 (on a CPU with AVX-512;
/// elsewhere there is one kernel and nothing to compare).
#[test]
fn every_isa_gives_the_same_bits() {
    if !Isa::Avx512.available() {
        eprintln!("no AVX-512 on this CPU: one kernel, nothing to compare");
        return;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
    // Every AVX-512 call size (B = 1–30: calls of 1–14 rows), pairs of panels whose
    // second is whole or partial (N = 17, 24, 56), an odd last panel alone, partial (45,
    // 130) or whole (48), several row blocks (B = 520) and K = 0.
    let mut cases: Vec<(usize, usize, usize)> = (1..=30).map(|b| (b, 56, 5)).collect();
    cases.extend([(7, 17, 3), (13, 45, 29), (15, 48, 7), (9, 24, 2)]);
    cases.extend([(64, 130, 256), (520, 40, 9), (28, 20, 0)]);
    for &(b, n, k) in &cases {
        let (s, w) = (random((b, k), &mut rng), random((n, k), &mut rng));
        let (z0, bias) = (random((b, n), &mut rng), random((1, n), &mut rng));
        let packed = PackedWeights::new(w.view());
        let bias = bias.as_slice().unwrap();
        let epilogues = [
            Epilogue::Accumulate,
            Epilogue::AddRow(bias),
            Epilogue::AddMatrix(z0.as_slice().unwrap()),
        ];
        for (i, &epilogue) in epilogues.iter().enumerate() {
            let run = |isa| {
                let mut z = match epilogue {
                    Epilogue::Accumulate => z0.clone(),
                    _ => Array2::from_elem((b, n), f32::NAN),
                };
                packed.mul_on(isa, s.view(), &mut z.view_mut(), epilogue, None);
                z.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            };
            let (narrow, wide) = (run(Isa::Avx2), run(Isa::Avx512));
            assert!(!wide.contains(&f32::NAN.to_bits()), "B={b} N={n} K={k}");
            assert!(narrow == wide, "B={b} N={n} K={k} epilogue {i}");
        }
    }
}

/// A product walking the panels down gives the bits of one walking up, on every
/// kernel, with pairs and an odd last panel (partial or whole) and several row blocks:
/// overwriting a NaN-poisoned output (a panel the walk skipped fails it) and
/// accumulating (so does a panel walked twice).
#[test]
fn both_walks_give_the_same_bits() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let isas = [Isa::Avx2, Isa::Avx512]
        .into_iter()
        .filter(|i| i.available());
    for isa in isas {
        for &(b, n, k) in &[
            (9, 56, 5),
            (520, 45, 29),
            (16, 130, 64),
            (3, 16, 8),
            (13, 48, 7),
        ] {
            let (s, w) = (random((b, k), &mut rng), random((n, k), &mut rng));
            let bias = random((1, n), &mut rng);
            let packed = PackedWeights::new(w.view());
            let z0 = random((b, n), &mut rng);
            // Overwriting (a skipped panel leaves NaN) and accumulating (a panel
            // walked twice adds twice).
            let run = |back, accumulate| {
                WALK_BACK.set(back);
                let (mut z, epilogue) = match accumulate {
                    false => (
                        Array2::from_elem((b, n), f32::NAN),
                        Epilogue::AddRow(bias.as_slice().unwrap()),
                    ),
                    true => (z0.clone(), Epilogue::Accumulate),
                };
                packed.mul_on(isa, s.view(), &mut z.view_mut(), epilogue, None);
                z.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            };
            for accumulate in [false, true] {
                let (up, down) = (run(false, accumulate), run(true, accumulate));
                let tag = format!("{isa:?} B={b} N={n} K={k} accumulate {accumulate}");
                assert!(!down.contains(&f32::NAN.to_bits()), "{tag}");
                assert!(up == down, "{tag}");
            }
        }
    }
}

/// A product with its input projection in the epilogue gives the bits of the projection
/// written first and added after, on every kernel: every AVX-512 call size, pairs of
/// panels whole and partial, an odd last panel, several row blocks, I = 1 and K = 0;
/// the output NaN-poisoned.
#[test]
fn projecting_gives_the_bits_of_projecting_first() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(10);
    let isas = [Isa::Avx2, Isa::Avx512]
        .into_iter()
        .filter(|i| i.available());
    // (B, N, K, I)
    let mut cases: Vec<_> = (1..=30).map(|b| (b, 56, 5, 3)).collect();
    cases.extend([
        (7, 17, 3, 1),
        (13, 45, 29, 28),
        (15, 48, 7, 2),
        (9, 24, 0, 4),
    ]);
    cases.extend([(128, 1024, 256, 28), (520, 40, 9, 5), (3, 130, 64, 64)]);
    for isa in isas {
        for &(b, n, k, i) in &cases {
            let (s, w) = (random((b, k), &mut rng), random((n, k), &mut rng));
            let (x, w_ih) = (random((b, i), &mut rng), random((n, i), &mut rng));
            let bias = random((1, n), &mut rng);
            let bias = bias.as_slice().unwrap();
            let (packed, packed_ih) = (
                PackedWeights::new(w.view()),
                PackedWeights::new(w_ih.view()),
            );
            let mut gx = Array2::from_elem((b, n), f32::NAN);
            packed_ih.mul_on(
                isa,
                x.view(),
                &mut gx.view_mut(),
                Epilogue::AddRow(bias),
                None,
            );
            let mut want = Array2::from_elem((b, n), f32::NAN);
            let first = Epilogue::AddMatrix(gx.as_slice().unwrap());
            packed.mul_on(isa, s.view(), &mut want.view_mut(), first, None);
            let projection = InputProjection {
                x: x.as_slice().unwrap(),
                w_ih: &packed_ih,
                bias,
            };
            let mut got = Array2::from_elem((b, n), f32::NAN);
            let any = Epilogue::Accumulate;
            packed.mul_on(isa, s.view(), &mut got.view_mut(), any, Some(projection));
            let tag = format!("{isa:?} B={b} N={n} K={k} I={i}");
            assert!(got.iter().all(|v| v.is_finite()), "{tag}");
            let bits = |a: &Array2<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert!(bits(&got) == bits(&want), "{tag}");
        }
    }
}

/// Without AVX2 (ndarray's GEMM, `fallback_mul`), a product with its projection gives
/// what the projection written first and then added gives (the fallback packs nothing,
/// so its weights are set here as a CPU without AVX2 would leave them).
#[test]
fn the_fallback_projects_like_projecting_first() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let (b, n, k, i) = (7, 37, 20, 5);
    let (s, w) = (random((b, k), &mut rng), random((n, k), &mut rng));
    let (x, w_ih) = (random((b, i), &mut rng), random((n, i), &mut rng));
    let bias = random((1, n), &mut rng);
    let bias = bias.as_slice().unwrap();
    let unpacked = |w: &Array2<f32>| PackedWeights {
        n: w.nrows(),
        k: w.ncols(),
        fallback: Some(w.clone()),
        ..Default::default()
    };
    let (packed, packed_ih) = (unpacked(&w), unpacked(&w_ih));
    let mut gx = Array2::from_elem((b, n), f32::NAN);
    packed_ih.mul(x.view(), &mut gx.view_mut(), Epilogue::AddRow(bias));
    let mut want = Array2::from_elem((b, n), f32::NAN);
    let first = Epilogue::AddMatrix(gx.as_slice().unwrap());
    packed.mul(s.view(), &mut want.view_mut(), first);
    let projection = InputProjection {
        x: x.as_slice().unwrap(),
        w_ih: &packed_ih,
        bias,
    };
    let mut got = Array2::from_elem((b, n), f32::NAN);
    packed.mul_projecting(s.view(), &mut got.view_mut(), projection);
    assert!(got.iter().all(|v| v.is_finite()));
    let err = max_diff(&got, &want);
    assert!(err < 1e-5, "error {err}");
}
