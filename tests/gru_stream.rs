//! A stateful GRU stream (Keras `GRU(stateful=True)`): a sequence pushed window by
//! window, in random splits, gives the outputs and final state of one forward over the
//! whole sequence bit for bit, on the CPU path and on the GPU (both reset forms); single
//! rows reset or set without touching the others.

mod common;

use common::{push_all, random, random_split, shared_context};
use lstm_wgpu::cpu::{self, CpuGruStream};
use lstm_wgpu::{GpuGru, GruConfig, GruOptions, GruWeights};
use ndarray::{s, Array2, Array3, ArrayView3, Axis};

fn configs() -> Vec<GruConfig> {
    vec![
        GruConfig::new(3, 5),
        GruConfig::new(4, 7).layers(2).reset_after(false),
        GruConfig::new(2, 17).batch_first(true),
    ]
}

fn input(cfg: &GruConfig, t: usize, b: usize, seed: u64) -> Array3<f32> {
    match cfg.batch_first {
        true => random((b, t, cfg.input_size), seed),
        false => random((t, b, cfg.input_size), seed),
    }
}

#[test]
fn any_split_equals_one_forward_bit_for_bit() {
    let ctx = shared_context();
    for (k, cfg) in configs().into_iter().enumerate() {
        let (t, b) = (23, 3);
        let w = GruWeights::init(&cfg, 40 + k as u64).unwrap();
        let x = input(&cfg, t, b, 50 + k as u64);
        let whole = cpu::gru_forward(&w, x.view(), GruOptions::default()).unwrap();
        let split = random_split(t, 60 + k as u64);
        let mut s = CpuGruStream::new(&w, b).unwrap();
        let y = push_all(&x, time(cfg.batch_first), &split, |win| {
            s.push(win).unwrap()
        });
        assert_eq!(y, whole.y, "{cfg:?} CPU y, split {split:?}");
        assert_eq!(s.state(), &whole.h_n, "{cfg:?} CPU h_n");
        let Some(ctx) = &ctx else { continue };
        let gpu = GpuGru::new(ctx.clone(), &w).unwrap();
        let whole = gpu.forward(x.view(), GruOptions::default()).unwrap();
        let mut g = gpu.stream(b).unwrap();
        let y = push_all(&x, time(cfg.batch_first), &split, |win| {
            g.push(win).unwrap()
        });
        assert_eq!(y, whole.y, "{cfg:?} GPU y, split {split:?}");
        assert_eq!(g.state().unwrap(), whole.h_n, "{cfg:?} GPU h_n");
    }
}

/// Row 1 reset to zero and row 2 set to a given state: those rows continue as a fresh
/// forward from that state would, row 0 as if nothing happened.
#[test]
fn rows_reset_and_set_alone() {
    let cfg = GruConfig::new(3, 6).layers(2);
    let w = GruWeights::init(&cfg, 7).unwrap();
    let (x1, x2) = (input(&cfg, 4, 3, 8), input(&cfg, 5, 3, 9));
    let h_set: Array2<f32> = random((2, 6), 10);
    let run = |push: &mut dyn FnMut(ArrayView3<f32>) -> Array3<f32>,
               reset: &mut dyn FnMut(),
               h_n: &dyn Fn() -> Array3<f32>| {
        push(x1.view());
        reset();
        (push(x2.view()), h_n())
    };
    // What each row should see in the second window: its carried state, zero, h_set.
    let edited = |mut h0: Array3<f32>| {
        h0.slice_mut(s![.., 1, ..]).fill(0.0);
        h0.slice_mut(s![.., 2, ..]).assign(&h_set);
        h0
    };
    let h0 = edited(
        cpu::gru_forward(&w, x1.view(), GruOptions::default())
            .unwrap()
            .h_n,
    );
    let opts = |h0| GruOptions {
        initial: Some(h0),
        seq_lens: None,
    };
    let want = cpu::gru_forward(&w, x2.view(), opts(&h0)).unwrap();

    let mut c = CpuGruStream::new(&w, 3).unwrap();
    let c = std::cell::RefCell::new(&mut c);
    let (y, h_n) = run(
        &mut |x| c.borrow_mut().push(x).unwrap(),
        &mut || {
            c.borrow_mut().reset_rows(&[1]).unwrap();
            c.borrow_mut().set_row(2, h_set.view()).unwrap();
        },
        &|| c.borrow().state().clone(),
    );
    assert_eq!((y, h_n), (want.y.clone(), want.h_n.clone()), "CPU");
    let Some(ctx) = shared_context() else { return };
    let gpu = GpuGru::new(ctx, &w).unwrap();
    let g = std::cell::RefCell::new(gpu.stream(3).unwrap());
    let (y, h_n) = run(
        &mut |x| g.borrow_mut().push(x).unwrap(),
        &mut || {
            g.borrow_mut().reset_rows(&[1]).unwrap();
            g.borrow_mut().set_row(2, h_set.view()).unwrap();
        },
        &|| g.borrow().state().unwrap(),
    );
    // The GPU's own carried state (its sums differ from the CPU's by a few ULP).
    let h0 = edited(gpu.forward(x1.view(), GruOptions::default()).unwrap().h_n);
    let gpu_whole = gpu.forward(x2.view(), opts(&h0)).unwrap();
    assert_eq!((y, h_n), (gpu_whole.y, gpu_whole.h_n), "GPU");
}

#[test]
fn bad_streams_are_errors() {
    let bi = GruWeights::init(&GruConfig::new(2, 3).bidirectional(true), 1).unwrap();
    assert!(CpuGruStream::new(&bi, 2).is_err());
    let w = GruWeights::init(&GruConfig::new(2, 3), 1).unwrap();
    assert!(CpuGruStream::new(&w, 0).is_err());
    let mut s = CpuGruStream::new(&w, 2).unwrap();
    let wrong_batch = input(&w.config, 4, 3, 1);
    assert!(s.push(wrong_batch.view()).is_err());
    assert!(s.set_row(2, Array2::zeros((1, 3)).view()).is_err());
    assert!(s.set_state(&Array3::zeros((1, 3, 3))).is_err());
    let Some(ctx) = shared_context() else { return };
    assert!(GpuGru::new(ctx.clone(), &bi).unwrap().stream(2).is_err());
    let gpu = GpuGru::new(ctx, &w).unwrap();
    let mut g = gpu.stream(2).unwrap();
    assert!(g.push(wrong_batch.view()).is_err());
    assert!(g.set_row(5, Array2::zeros((1, 3)).view()).is_err());
    assert!(g.set_row(0, Array2::zeros((2, 3)).view()).is_err());
    assert!(g.set_state(&Array3::zeros((1, 3, 3))).is_err());
}

/// The time axis of a sequence in the config's layout.
fn time(batch_first: bool) -> Axis {
    Axis(usize::from(batch_first))
}
