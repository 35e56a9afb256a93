//! Benchmark shapes and the arithmetic the benchmarks report (FLOPs, bytes per step),
//! shared by the `lstm-bench` binary and the criterion benches.

use crate::config::LstmConfig;

/// One benchmark shape: an LSTM and the input it runs on (time-major, no peepholes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    pub name: String,
    pub t: usize,
    pub b: usize,
    pub input: usize,
    pub hidden: usize,
    pub layers: usize,
    pub bidirectional: bool,
}

impl Shape {
    pub fn new(name: &str, t: usize, b: usize, input: usize, hidden: usize) -> Shape {
        Shape {
            name: name.to_string(),
            t,
            b,
            input,
            hidden,
            layers: 1,
            bidirectional: false,
        }
    }

    pub fn stacked(mut self, layers: usize, bidirectional: bool) -> Shape {
        self.layers = layers;
        self.bidirectional = bidirectional;
        self
    }

    pub fn config(&self) -> LstmConfig {
        LstmConfig::new(self.input, self.hidden)
            .layers(self.layers)
            .bidirectional(self.bidirectional)
    }

    pub fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// `T=.. B=.. I=.. H=..` plus layers and direction where not 1 and uni.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "T={} B={} I={} H={}",
            self.t, self.b, self.input, self.hidden
        );
        if self.layers > 1 {
            s += &format!(" L={}", self.layers);
        }
        if self.bidirectional {
            s += " bidir";
        }
        s
    }

    /// Forward FLOPs: `2·T·B·4H·(I_l + H)` per layer-direction, `I_l` the layer's input
    /// width (D·H above the first layer). Pointwise work is not counted.
    pub fn flops(&self) -> f64 {
        let (t, b, h) = (self.t as f64, self.b as f64, self.hidden as f64);
        (0..self.layers)
            .map(|l| {
                let i = if l == 0 {
                    self.input
                } else {
                    self.directions() * self.hidden
                } as f64;
                self.directions() as f64 * 2.0 * t * b * 4.0 * h * (i + h)
            })
            .sum()
    }

    /// Time steps over all layers and directions: the number of step dispatches.
    pub fn steps(&self) -> usize {
        self.t * self.layers * self.directions()
    }

    /// FLOPs of one step's recurrent product `[B, H]·[H, 4H]`.
    pub fn step_flops(&self) -> f64 {
        2.0 * self.b as f64 * 4.0 * (self.hidden * self.hidden) as f64
    }

    /// Bytes of recurrent weights (f32 `[4H, H]`) one step reads.
    pub fn step_weight_bytes(&self) -> f64 {
        4.0 * 4.0 * (self.hidden * self.hidden) as f64
    }
}

/// The standard set: the S1–S4 and DeepBench's LSTM inference/training shapes.
pub fn standard_shapes() -> Vec<Shape> {
    let mut v = vec![
        Shape::new("S1", 128, 1, 256, 256),
        Shape::new("S2", 128, 64, 512, 512),
        Shape::new("S3", 28, 128, 28, 256),
        Shape::new("S4", 64, 32, 256, 256).stacked(3, true),
    ];
    // DeepBench (H, B, T), I = H.
    for (h, b, t) in [
        (512, 16, 25),
        (512, 64, 25),
        (1024, 16, 25),
        (256, 16, 150),
        (512, 1, 25),
        (1024, 1, 25),
    ] {
        v.push(Shape::new(&format!("DB-H{h}-B{b}-T{t}"), t, b, h, h));
    }
    v
}

/// Small shapes that run in seconds even on a software adapter: both step tilings,
/// a stacked bidirectional model, I ≠ H.
pub fn quick_shapes() -> Vec<Shape> {
    vec![
        Shape::new("Q1", 32, 1, 64, 64),
        Shape::new("Q2", 16, 16, 32, 128),
        Shape::new("Q3", 16, 8, 64, 64).stacked(2, true),
    ]
}

/// Every named shape, standard and quick.
pub fn all_shapes() -> Vec<Shape> {
    let mut v = standard_shapes();
    v.extend(quick_shapes());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flops_follow_the_formula() {
        let s = Shape::new("x", 28, 128, 28, 256);
        assert_eq!(s.flops(), 2.0 * 28.0 * 128.0 * 1024.0 * (28.0 + 256.0));
        // Layer 2 of a bidirectional stack reads 2H-wide input; 2 directions each.
        let s = Shape::new("y", 2, 3, 5, 7).stacked(2, true);
        let want = 2.0 * (2.0 * 2.0 * 3.0 * 28.0 * 12.0) + 2.0 * (2.0 * 2.0 * 3.0 * 28.0 * 21.0);
        assert_eq!(s.flops(), want);
        assert_eq!(s.steps(), 8);
    }

    #[test]
    fn names_are_unique() {
        let names: Vec<String> = all_shapes().into_iter().map(|s| s.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
    }
}
