//! The fold's algebra on the CPU path: folded layers run by `cpu::forward` /
//! `cpu::backward` must give `cpu::lstmp_*`'s outputs and gradients.
use super::*;
use crate::cpu;
use crate::lstmp::LstmpConfig;
use ndarray::Array1;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct CpuLayers(Vec<[LstmWeights; 2]>);

impl FoldedLayers for CpuLayers {
    fn forward(
        &self,
        l: usize,
        state: bool,
        x: ArrayView3<f32>,
        opts: ForwardOptions,
    ) -> Result<LstmOutput> {
        cpu::forward(&self.0[l][state as usize], x, opts)
    }
    fn forward_backward(
        &self,
        l: usize,
        state: bool,
        x: ArrayView3<f32>,
        opts: ForwardOptions,
        up: Upstream,
    ) -> Result<(LstmOutput, Gradients)> {
        let w = &self.0[l][state as usize];
        let (out, cache) = cpu::forward_train(w, x, opts)?;
        Ok((out, cpu::backward(w, &cache, up)?))
    }
}

fn random(shape: (usize, usize, usize), rng: &mut ChaCha8Rng) -> Array3<f32> {
    Array3::from_shape_simple_fn(shape, || rng.random_range(-1.0..1.0))
}

fn close(name: &str, a: &Array3<f32>, b: &Array3<f32>) {
    assert_eq!(a.shape(), b.shape(), "{name}");
    let err = (a - b).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v));
    assert!(err < 2e-5, "{name}: max |Δ| {err}");
}

#[test]
fn folded_layers_equal_the_lstmp() {
    let cfg = LstmpConfig::new(3, 5, 2).layers(2).bidirectional(true);
    let w = LstmpWeights::init(&cfg, 7).unwrap();
    let layers = CpuLayers(
        (0..2)
            .map(|l| [false, true].map(|s| fold_layer(&w, l, s).unwrap()))
            .collect(),
    );
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (t, b) = (4, 3);
    let x = random((t, b, 3), &mut rng);
    let init = LstmState {
        h: random((4, b, 2), &mut rng),
        c: random((4, b, 5), &mut rng),
    };
    let lens = [4, 2, 1];
    let opts = ForwardOptions {
        initial: Some(&init),
        seq_lens: Some(&lens),
    };
    let (want, cache) = cpu::lstmp_forward_train(&w, x.view(), opts).unwrap();
    let (dy, dh_n, dc_n) = (
        random((t, b, 4), &mut rng),
        random((4, b, 2), &mut rng),
        random((4, b, 5), &mut rng),
    );
    let up = || Upstream {
        dy: Some(dy.view()),
        dh_n: Some(dh_n.view()),
        dc_n: Some(dc_n.view()),
    };
    let want_g = cpu::lstmp_backward(&w, &cache, up()).unwrap();
    let run = forward(&layers, &w, x.clone(), Some(&init), true, &lens).unwrap();
    close("y", &run.y, &want.y);
    close("h_n", &run.h_n, &want.h_n);
    close("c_n", &run.c_n, &want.c_n);
    // Without h_0 (what inference runs): the plain fold, no h_0 columns.
    let no_init = ForwardOptions {
        initial: None,
        seq_lens: Some(&lens),
    };
    let want_plain = cpu::lstmp_forward(&w, x.view(), no_init).unwrap();
    let plain = forward(&layers, &w, x, None, false, &lens).unwrap();
    close("plain y", &plain.y, &want_plain.y);
    close("plain h_n", &plain.h_n, &want_plain.h_n);
    close("plain c_n", &plain.c_n, &want_plain.c_n);
    let g = backward(&layers, &w, &run, Some(&init), &lens, up()).unwrap();
    close("dx", &g.dx, &want_g.dx);
    close("dh0", &g.dh0, &want_g.dh0);
    close("dc0", &g.dc0, &want_g.dc0);
    for (k, (a, e)) in g
        .params
        .layers
        .iter()
        .zip(&want_g.params.layers)
        .enumerate()
    {
        let as3 = |m: &Array2<f32>| m.clone().insert_axis(Axis(0));
        let b3 = |v: &Option<Array1<f32>>| as3(&v.clone().unwrap().insert_axis(Axis(0)));
        close(&format!("{k} w_ih"), &as3(&a.w_ih), &as3(&e.w_ih));
        close(&format!("{k} w_hh"), &as3(&a.w_hh), &as3(&e.w_hh));
        close(&format!("{k} w_hr"), &as3(&a.w_hr), &as3(&e.w_hr));
        close(&format!("{k} b_ih"), &b3(&a.b_ih), &b3(&e.b_ih));
        close(&format!("{k} b_hh"), &b3(&a.b_hh), &b3(&e.b_hh));
    }
}
