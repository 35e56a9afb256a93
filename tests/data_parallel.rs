//! Data-parallel training without MPI: ranks as threads of one process, summing through
//! shared memory (`ThreadGroup`), so the default suite checks the algorithm — the split
//! step, the sharding, the global loss scale, clipping after the sum, the global
//! statistics, the agreement checks. `tests/distributed.rs` runs it over MPI.

mod common;

use std::sync::{Arc, Barrier, Mutex};

use common::{random, shared_context};
use lstm_wgpu::train::distributed::{fit_distributed, shard_rows, Collective, DataParallel};
use lstm_wgpu::train::{
    fit, flatten, Batch, Classifier, ClassifierParams, Dataset, Device, FitConfig, History, Init,
    LrSchedule, Target, TrainConfig,
};
use lstm_wgpu::{LstmConfig, LstmError, Peephole};

/// `n` ranks in one process: each deposits its buffer, and each sums all of them in rank
/// order, so every rank gets the same bits (as MPI's all-reduce does).
struct ThreadGroup {
    n: usize,
    barrier: Barrier,
    f32s: Mutex<Vec<Vec<f32>>>,
    f64s: Mutex<Vec<Vec<f64>>>,
    u64s: Mutex<Vec<u64>>,
}

struct Rank {
    group: Arc<ThreadGroup>,
    rank: usize,
}

fn exchange<T: Clone>(r: &Rank, slots: &Mutex<Vec<T>>, mine: T) -> Vec<T> {
    slots.lock().unwrap()[r.rank] = mine;
    r.group.barrier.wait();
    let all = slots.lock().unwrap().clone();
    r.group.barrier.wait();
    all
}

impl Collective for Rank {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.group.n
    }
    fn sum_f32(&self, buf: &mut [f32]) -> lstm_wgpu::Result<()> {
        let all = exchange(self, &self.group.f32s, buf.to_vec());
        for (i, v) in buf.iter_mut().enumerate() {
            *v = all.iter().skip(1).fold(all[0][i], |a, b| a + b[i]);
        }
        Ok(())
    }
    fn sum_f64(&self, buf: &mut [f64]) -> lstm_wgpu::Result<()> {
        let all = exchange(self, &self.group.f64s, buf.to_vec());
        for (i, v) in buf.iter_mut().enumerate() {
            *v = all.iter().skip(1).fold(all[0][i], |a, b| a + b[i]);
        }
        Ok(())
    }
    fn gather_u64(&self, value: u64) -> lstm_wgpu::Result<Vec<u64>> {
        Ok(exchange(self, &self.group.u64s, value))
    }
}

/// Runs `f` on `n` ranks (threads) and returns their results in rank order.
fn on_ranks<T: Send>(n: usize, f: impl Fn(&Rank) -> T + Sync) -> Vec<T> {
    let group = Arc::new(ThreadGroup {
        n,
        barrier: Barrier::new(n),
        f32s: Mutex::new(vec![Vec::new(); n]),
        f64s: Mutex::new(vec![Vec::new(); n]),
        u64s: Mutex::new(vec![0; n]),
    });
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|rank| {
                let r = Rank {
                    group: group.clone(),
                    rank,
                };
                let f = &f;
                s.spawn(move || f(&r))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn data(n: usize, seed: u64) -> Dataset {
    let x = random((n, 5, 3), seed);
    let labels = (0..n).map(|i| (i * 7 + seed as usize) % 4).collect();
    Dataset::new(x, labels).unwrap()
}

/// Two layers, bidirectional, diagonal peepholes: every kind of optimizer slot.
fn params() -> ClassifierParams {
    let lstm = LstmConfig::new(3, 5)
        .layers(2)
        .bidirectional(true)
        .peephole(Peephole::Diagonal)
        .batch_first(true);
    ClassifierParams::init_with(Init::Keras, &lstm, 4, 1.0, 5).unwrap()
}

fn train_cfg() -> TrainConfig {
    TrainConfig {
        clip_norm: Some(0.5),
        weight_decay: 1e-4,
        ..Default::default()
    }
}

fn fit_cfg(batch: usize) -> FitConfig {
    FitConfig {
        epochs: 3,
        batch,
        lr: 1e-2,
        schedule: LrSchedule::Cosine,
        seed: 9,
    }
}

fn max_abs_diff(a: &ClassifierParams, b: &ClassifierParams) -> f32 {
    let (a, b) = (flatten(a), flatten(b));
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn devices() -> Vec<Device> {
    let mut d = vec![Device::Cpu];
    d.extend(shared_context().map(Device::Gpu));
    d
}

#[test]
fn shards_cover_the_batch() {
    for (b, n) in [(128, 2), (7, 3), (2, 3), (1, 1)] {
        let rows: Vec<_> = (0..n).map(|r| shard_rows(b, r, n)).collect();
        assert_eq!(rows[0].start, 0);
        assert_eq!(rows[n - 1].end, b);
        assert!(rows.windows(2).all(|w| w[0].end == w[1].start));
        assert!(rows
            .iter()
            .all(|r| r.len() + 1 >= b / n && r.len() <= b.div_ceil(n)));
    }
}

/// `gradients` (scaled by the batch's own row count) then `apply_gradients` is
/// `train_step`, bit for bit, on each device.
#[test]
fn a_split_step_is_a_train_step() {
    let d = data(6, 1);
    let (x, y) = d.gather(&[0, 1, 2, 3, 4, 5]).unwrap();
    let batch = Batch {
        x: x.view(),
        targets: &y,
        seq_lens: None,
    };
    for device in devices() {
        let mut whole = device.classifier(&params(), train_cfg()).unwrap();
        let mut split = device.classifier(&params(), train_cfg()).unwrap();
        for _ in 0..3 {
            let s = whole.train_step(&batch, true).unwrap().unwrap();
            let (g, t) = split.gradients(&batch, 6.0, true).unwrap();
            split.apply_gradients(&g).unwrap();
            assert_eq!(Some(s), t, "{}", whole.device_name());
        }
        assert_eq!(whole.params().unwrap(), split.params().unwrap());
        assert_eq!(
            whole.take_running_stats().unwrap(),
            split.take_running_stats().unwrap()
        );
    }
}

/// `n` ranks train together; returns each rank's final parameters and history.
fn fit_on_ranks(
    n: usize,
    device: &Device,
    train: &Dataset,
    eval: &Dataset,
    cfg: &FitConfig,
) -> Vec<(ClassifierParams, History)> {
    on_ranks(n, |comm| {
        let mut model = device.classifier(&params(), train_cfg()).unwrap();
        let h = fit_distributed(
            model.as_mut(),
            comm,
            train,
            eval,
            cfg,
            History::default(),
            &mut (),
        )
        .unwrap();
        (model.params().unwrap(), h)
    })
}

/// N ranks end with one process's weights to float tolerance (only the summation order
/// of the gradient differs) and with its accuracies; every replica holds the same bits.
/// 22 examples in batches of 4 (the last of 2): with 3 ranks one shard is empty.
#[test]
fn ranks_end_where_one_process_ends() {
    let (train, eval) = (data(22, 3), data(9, 4));
    let cfg = fit_cfg(4);
    for device in devices() {
        let mut one = device.classifier(&params(), train_cfg()).unwrap();
        let single = fit(one.as_mut(), &train, &eval, &cfg, &mut ()).unwrap();
        let single_params = one.params().unwrap();
        for n in [2, 3] {
            let ranks = fit_on_ranks(n, &device, &train, &eval, &cfg);
            for (p, h) in &ranks {
                assert_eq!(p, &ranks[0].0, "replicas differ");
                let figures = |h: &History| -> Vec<_> {
                    h.epochs
                        .iter()
                        .map(|e| (e.train_loss, e.train_acc, e.eval_acc))
                        .collect()
                };
                assert_eq!(figures(h), figures(&ranks[0].1), "histories differ");
            }
            let (p, h) = &ranks[0];
            let diff = max_abs_diff(p, &single_params);
            eprintln!(
                "{}: {n} ranks vs one process: max |Δw| = {diff:.2e}",
                one.device_name()
            );
            assert!(diff < 1e-5, "{n} ranks: max |Δw| = {diff}");
            for (a, b) in h.epochs.iter().zip(&single.epochs) {
                assert_eq!((a.train_acc, a.eval_acc), (b.train_acc, b.eval_acc));
                assert!((a.train_loss - b.train_loss).abs() < 1e-5, "{a:?} vs {b:?}");
            }
        }
    }
}

/// Per-step labels, time-major input and ragged lengths: the shards' labels are picked
/// per step, and the loss is divided by the global batch's valid steps.
#[test]
fn per_step_targets_shard_in_time_major_order() {
    let lstm = LstmConfig::new(3, 4);
    let p = ClassifierParams::init(&lstm, 3, 1.0, 2).unwrap();
    let cfg = TrainConfig {
        target: Target::EveryStep,
        clip_norm: Some(1.0),
        ..Default::default()
    };
    let (t, b) = (6, 5);
    let x = random((t, b, 3), 8);
    let lens = [6, 2, 5, 1, 4];
    let targets: Vec<usize> = (0..t * b).map(|i| (i * 5) % 3).collect();
    let batch = Batch {
        x: x.view(),
        targets: &targets,
        seq_lens: Some(&lens),
    };
    let mut one = Device::Cpu.classifier(&p, cfg.clone()).unwrap();
    for _ in 0..3 {
        one.train_step(&batch, false).unwrap();
    }
    let want = one.take_running_stats().unwrap();
    let got = on_ranks(2, |comm| {
        let mut replica = Device::Cpu.classifier(&p, cfg.clone()).unwrap();
        let mut dp = DataParallel::new(replica.as_mut(), comm).unwrap();
        for _ in 0..3 {
            dp.train_step(&batch, false).unwrap();
        }
        (dp.take_running_stats().unwrap(), dp.params().unwrap())
    });
    let diff = max_abs_diff(&got[0].1, &one.params().unwrap());
    assert!(diff < 1e-5, "max |Δw| = {diff}");
    assert_eq!(
        (got[0].0.count, got[0].0.correct),
        (want.count, want.correct)
    );
    assert!((got[0].0.loss - want.loss).abs() < 1e-5);
}

/// Ranks started differently fail alike, with a message naming what differs.
#[test]
fn ranks_that_disagree_fail_alike() {
    let (train, eval) = (data(22, 3), data(9, 4));
    let errors = on_ranks(2, |comm| {
        let p = ClassifierParams::init_with(
            Init::Keras,
            &params().lstm.config,
            4,
            1.0,
            comm.rank() as u64,
        )
        .unwrap();
        let mut model = Device::Cpu.classifier(&p, train_cfg()).unwrap();
        fit_distributed(
            model.as_mut(),
            comm,
            &train,
            &eval,
            &fit_cfg(4),
            History::default(),
            &mut (),
        )
        .unwrap_err()
    });
    for e in errors {
        let s = e.to_string();
        assert!(matches!(e, LstmError::Distributed(_)), "{s}");
        assert!(
            s.contains("rank(s) 1 (of 2)") && s.contains("starting parameters"),
            "{s}"
        );
    }
    let errors = on_ranks(2, |comm| {
        let mut model = Device::Cpu.classifier(&params(), train_cfg()).unwrap();
        let train = data(22 + comm.rank(), 3);
        fit_distributed(
            model.as_mut(),
            comm,
            &train,
            &eval,
            &fit_cfg(4),
            History::default(),
            &mut (),
        )
        .unwrap_err()
        .to_string()
    });
    assert!(
        errors.iter().all(|s| s.contains("training data")),
        "{errors:?}"
    );
}
