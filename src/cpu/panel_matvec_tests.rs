//! Tests of `panel_matvec.rs`: the products against ndarray's GEMM, and their bits
//! whatever the ISA, the walk or the split.

use super::*;
use crate::cpu::gemm::tests::{max_diff, random};
use crate::cpu::gemm::PackedWeights;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2};
use rand::SeedableRng;

/// The step's matrix-vector products (`rows_into`, B ≤ 4) against
/// ndarray's GEMM, every epilogue, partial last panels, odd and tiny K, the output
/// NaN-poisoned; the same bits on every ISA, both walks, and with each row's panels
/// split in two at a panel boundary (as over two threads).
#[test]
fn step_matvec_matches_and_keeps_its_bits() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    let isas: Vec<Isa> = [Isa::Avx2, Isa::Avx512]
        .into_iter()
        .filter(|i| i.available())
        .collect();
    for &(b, n, k) in &[
        (1, 1024, 256),
        (1, 40, 7),
        (3, 120, 1),
        (4, 72, 33),
        (2, 16, 2),
    ] {
        let (s, w) = (random((b, k), &mut rng), random((n, k), &mut rng));
        let (z0, bias) = (random((b, n), &mut rng), random((1, n), &mut rng));
        let packed = PackedWeights::new(w.view());
        let (panels, ..) = packed.panels().expect("a CPU with AVX2");
        let mut product = Array2::zeros((b, n));
        general_mat_mul(1.0, &s, &w.t(), 0.0, &mut product);
        let bias = bias.as_slice().unwrap();
        let cases: [(Epilogue, Array2<f32>); 3] = [
            (Epilogue::Accumulate, &z0 + &product),
            (
                Epilogue::AddRow(bias),
                &product + &Array1::from(bias.to_vec()),
            ),
            (Epilogue::AddMatrix(z0.as_slice().unwrap()), &z0 + &product),
        ];
        for (i, (epilogue, want)) in cases.into_iter().enumerate() {
            let tag = format!("B={b} N={n} K={k} epilogue {i}");
            let start = match epilogue {
                Epilogue::Accumulate => z0.clone(),
                _ => Array2::from_elem((b, n), f32::NAN),
            };
            let mut runs = Vec::new();
            for (&isa, walk) in isas
                .iter()
                .flat_map(|i| [(i, Walk::Forward), (i, Walk::Backward)])
            {
                let mut z = start.clone();
                let (ss, zs) = (s.as_slice().unwrap(), z.as_slice_mut().unwrap());
                rows_into(isa, panels, (n, k), ss, zs, epilogue, walk);
                let err = max_diff(&z, &want);
                assert!(err < 1e-5 * k as f32, "{tag} {isa:?} {walk:?}: error {err}");
                runs.push(z.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            }
            // Row by row, the panels in two halves, into a row with a NaN tail that no
            // write may reach.
            let mut split = start.clone();
            let mid = n.div_ceil(NR) / 2 * NR;
            for (r, mut row) in split.rows_mut().into_iter().enumerate() {
                let add = match epilogue {
                    Epilogue::Accumulate => None,
                    _ => Some(epilogue_row(epilogue, r, n)),
                };
                let mut padded = row.to_vec();
                padded.resize(n + NR, f32::NAN);
                let (z_top, z_bottom) = padded[..n].split_at_mut(mid);
                let (a_top, a_bottom) = add.as_deref().map(|a| a.split_at(mid)).unzip();
                let (p_top, p_bottom) = panels.split_at(mid * k);
                let (s_row, isa) = (s.row(r).to_vec(), isas[0]);
                panels_into(isa, p_top, k, &s_row, z_top, a_top, Walk::Forward);
                let walk = Walk::Backward;
                panels_into(isa, p_bottom, k, &s_row, z_bottom, a_bottom, walk);
                assert!(
                    padded[n..].iter().all(|v| v.is_nan()),
                    "{tag}: wrote past N"
                );
                row.assign(&ndarray::ArrayView1::from(&padded[..n]));
            }
            runs.push(split.iter().map(|v| v.to_bits()).collect());
            assert!(runs.iter().all(|r| r == &runs[0]), "{tag}: the bits differ");
        }
    }
}

/// What `epilogue` adds to row `r` of an `N`-wide output (not `Accumulate`).
fn epilogue_row(epilogue: Epilogue, r: usize, n: usize) -> Vec<f32> {
    match epilogue {
        Epilogue::AddRow(bias) => bias[..n].to_vec(),
        Epilogue::AddMatrix(init) => init[r * n..(r + 1) * n].to_vec(),
        Epilogue::Accumulate => unreachable!("adds z itself"),
    }
}
