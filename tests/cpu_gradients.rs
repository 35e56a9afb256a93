//! The CPU backward against central finite differences of the CPU forward.
//!
//! Loss: L = Σ y⊙R_y + Σ h_n⊙R_h + Σ c_n⊙R_c with random R (so every output matters).
//! Tolerance, derived from f32: the forward runs in f32 (relative rounding ~6e-8 on a
//! loss summing ~10² terms of size ~1, i.e. ~1e-5 absolute), divided by 2ε = 2e-2 gives
//! ~5e-4; the central difference's truncation error is O(ε²·L''') ≈ 1e-4. So
//! |analytic − numeric| ≤ 2e-3 + 2e-2·|numeric|.

mod common;

use common::*;
use lstm_wgpu::cpu::{self, Upstream};
use lstm_wgpu::{ForwardOptions, LstmConfig, LstmState, LstmWeights, Peephole, PeepholeWeights};
use ndarray::Array3;

const EPS: f32 = 1e-2;
const ATOL: f64 = 2e-3;
const RTOL: f64 = 2e-2;

struct Problem {
    w: LstmWeights,
    x: Array3<f32>,
    init: LstmState,
    lens: Option<Vec<usize>>,
    ry: Array3<f32>,
    rh: Array3<f32>,
    rc: Array3<f32>,
}

impl Problem {
    fn new(cfg: LstmConfig, t: usize, b: usize, lens: Option<Vec<usize>>, seed: u64) -> Self {
        let w = LstmWeights::init(&cfg, seed).unwrap();
        let x = random_input(&cfg, t, b, seed + 1);
        let init = random_state(&cfg, b, seed + 2);
        let yshape = if cfg.batch_first {
            (b, t, cfg.output_size())
        } else {
            (t, b, cfg.output_size())
        };
        let sshape = (cfg.num_layers * cfg.num_directions(), b, cfg.hidden_size);
        Problem {
            ry: random(yshape, seed + 3),
            rh: random(sshape, seed + 4),
            rc: random(sshape, seed + 5),
            w,
            x,
            init,
            lens,
        }
    }

    fn loss(&self, w: &LstmWeights, x: &Array3<f32>, init: &LstmState) -> f64 {
        let out = cpu::forward(
            w,
            x.view(),
            ForwardOptions {
                initial: Some(init),
                seq_lens: self.lens.as_deref(),
            },
        )
        .unwrap();
        let dot = |a: &Array3<f32>, b: &Array3<f32>| {
            a.iter()
                .zip(b)
                .map(|(p, q)| *p as f64 * *q as f64)
                .sum::<f64>()
        };
        dot(&out.y, &self.ry) + dot(&out.h_n, &self.rh) + dot(&out.c_n, &self.rc)
    }

    fn analytic(&self) -> cpu::Gradients {
        let opts = ForwardOptions {
            initial: Some(&self.init),
            seq_lens: self.lens.as_deref(),
        };
        let (_, cache) = cpu::forward_train(&self.w, self.x.view(), opts).unwrap();
        let up = Upstream {
            dy: Some(self.ry.view()),
            dh_n: Some(self.rh.view()),
            dc_n: Some(self.rc.view()),
        };
        cpu::backward(&self.w, &cache, up).unwrap()
    }

    /// Checks up to `n` evenly spread elements of `target`.
    fn check(&self, name: &str, analytic: &[f32], n: usize, target: Target) {
        let len = analytic.len();
        for k in (0..len).step_by((len / n).max(1)) {
            let perturbed = |delta: f32| {
                let (mut w, mut x, mut s) = (self.w.clone(), self.x.clone(), self.init.clone());
                target.slice(&mut w, &mut x, &mut s)[k] += delta;
                self.loss(&w, &x, &s)
            };
            let numeric = (perturbed(EPS) - perturbed(-EPS)) / (2.0 * EPS as f64);
            let a = analytic[k] as f64;
            assert!(
                (a - numeric).abs() <= ATOL + RTOL * numeric.abs(),
                "{name}[{k}]: analytic {a} vs numeric {numeric}"
            );
        }
    }

    fn check_all(&self) {
        let g = self.analytic();
        for ld in 0..self.w.layers.len() {
            let gl = &g.params.layers[ld];
            let sl = |a: &ndarray::Array2<f32>| a.as_slice().unwrap().to_vec();
            self.check(&format!("w_ih[{ld}]"), &sl(&gl.w_ih), 12, Target::WIh(ld));
            self.check(&format!("w_hh[{ld}]"), &sl(&gl.w_hh), 12, Target::WHh(ld));
            if let (Some(bi), Some(bh)) = (&gl.b_ih, &gl.b_hh) {
                self.check(
                    &format!("b_ih[{ld}]"),
                    bi.as_slice().unwrap(),
                    8,
                    Target::BIh(ld),
                );
                self.check(
                    &format!("b_hh[{ld}]"),
                    bh.as_slice().unwrap(),
                    8,
                    Target::BHh(ld),
                );
            }
            match &gl.peephole {
                PeepholeWeights::None => {}
                PeepholeWeights::Diagonal(p) => self.check(
                    &format!("p[{ld}]"),
                    p.as_slice().unwrap(),
                    12,
                    Target::Peep(ld),
                ),
                PeepholeWeights::Full(m) => {
                    self.check(&format!("w_ch[{ld}]"), &sl(m), 12, Target::Peep(ld))
                }
            }
        }
        self.check("x", g.dx.as_slice().unwrap(), 16, Target::X);
        self.check("h0", g.dh0.as_slice().unwrap(), 10, Target::H0);
        self.check("c0", g.dc0.as_slice().unwrap(), 10, Target::C0);
    }
}

/// Which input of the loss a finite difference perturbs.
#[derive(Clone, Copy)]
enum Target {
    WIh(usize),
    WHh(usize),
    BIh(usize),
    BHh(usize),
    Peep(usize),
    X,
    H0,
    C0,
}

impl Target {
    fn slice<'a>(
        self,
        w: &'a mut LstmWeights,
        x: &'a mut Array3<f32>,
        s: &'a mut LstmState,
    ) -> &'a mut [f32] {
        match self {
            Target::WIh(l) => w.layers[l].w_ih.as_slice_mut(),
            Target::WHh(l) => w.layers[l].w_hh.as_slice_mut(),
            Target::BIh(l) => w.layers[l].b_ih.as_mut().unwrap().as_slice_mut(),
            Target::BHh(l) => w.layers[l].b_hh.as_mut().unwrap().as_slice_mut(),
            Target::Peep(l) => match &mut w.layers[l].peephole {
                PeepholeWeights::Diagonal(p) => p.as_slice_mut(),
                PeepholeWeights::Full(m) => m.as_slice_mut(),
                PeepholeWeights::None => None,
            },
            Target::X => x.as_slice_mut(),
            Target::H0 => s.h.as_slice_mut(),
            Target::C0 => s.c.as_slice_mut(),
        }
        .unwrap()
    }
}

#[test]
fn one_layer_each_peephole_mode() {
    for (n, mode) in [Peephole::None, Peephole::Diagonal, Peephole::Full]
        .into_iter()
        .enumerate()
    {
        Problem::new(
            LstmConfig::new(3, 4).peephole(mode),
            4,
            2,
            None,
            10 * n as u64,
        )
        .check_all();
    }
}

#[test]
fn two_layers_bidirectional_with_lengths() {
    let cfg = LstmConfig::new(3, 4)
        .layers(2)
        .bidirectional(true)
        .peephole(Peephole::Diagonal);
    Problem::new(cfg, 5, 3, Some(vec![5, 2, 4]), 50).check_all();
}

#[test]
fn batch_first_full_peephole_no_bias() {
    let cfg = LstmConfig::new(2, 3)
        .batch_first(true)
        .bias(false)
        .peephole(Peephole::Full)
        .layers(2);
    Problem::new(cfg, 3, 2, Some(vec![1, 3]), 60).check_all();
}

/// `forward_train_into` with a cache from earlier calls (the same shape, then another T,
/// then the first again) gives, bit for bit, the outputs and gradients of a fresh cache.
#[test]
fn a_reused_cache_gives_a_fresh_caches_results() {
    let cfg = LstmConfig::new(3, 5)
        .layers(2)
        .bidirectional(true)
        .peephole(Peephole::Diagonal);
    let w = LstmWeights::init(&cfg, 70).unwrap();
    let bits = |a: &Array3<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let mut kept = cpu::ForwardCache::default();
    for (k, (t, lens)) in [
        (6, [6, 2, 4]),
        (6, [3, 6, 1]),
        (4, [4, 4, 2]),
        (6, [5, 1, 6]),
    ]
    .into_iter()
    .enumerate()
    {
        let x = random_input(&cfg, t, 3, 71 + k as u64);
        let opts = ForwardOptions {
            initial: None,
            seq_lens: Some(&lens),
        };
        let out = cpu::forward_train_into(&w, x.view(), opts, &mut kept).unwrap();
        let (want, fresh) = cpu::forward_train(&w, x.view(), opts).unwrap();
        assert!(bits(&out.y) == bits(&want.y), "call {k}: outputs");
        for (a, b) in kept.steps.iter().zip(&fresh.steps) {
            for (x, y) in [
                (&a.gates, &b.gates),
                (&a.h_prev, &b.h_prev),
                (&a.c_prev, &b.c_prev),
            ] {
                assert!(bits(x) == bits(y), "call {k}: the cache's contents");
            }
        }
        let dy = random((t, 3, 10), 80 + k as u64);
        let up = Upstream {
            dy: Some(dy.view()),
            dh_n: None,
            dc_n: None,
        };
        let (g, g_fresh) = (
            cpu::backward(&w, &kept, up).unwrap(),
            cpu::backward(&w, &fresh, up).unwrap(),
        );
        assert!(bits(&g.dx) == bits(&g_fresh.dx), "call {k}: dx");
        let params = |g: &cpu::Gradients| -> Vec<u32> {
            g.params
                .layers
                .iter()
                .flat_map(|l| l.w_hh.iter().chain(&l.w_ih))
                .map(|v| v.to_bits())
                .collect()
        };
        assert!(params(&g) == params(&g_fresh), "call {k}: weight gradients");
        // Without dx: the same weight gradients (of both layers), no dx.
        let no_dx = cpu::backward_without_dx(&w, &kept, up).unwrap();
        assert!(
            params(&no_dx) == params(&g),
            "call {k}: weight gradients without dx"
        );
        assert!(bits(&no_dx.dh0) == bits(&g.dh0), "call {k}: dh0 without dx");
        assert_eq!(no_dx.dx.len(), 0);
    }
}
