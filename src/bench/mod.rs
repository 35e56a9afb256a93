//! What `lstm-bench` and the criterion benches measure with: the benchmark shapes and
//! their arithmetic (`shapes`), and the probes of what an adapter can do (`probe`).

pub mod probe;
pub mod shapes;

pub use shapes::*;
