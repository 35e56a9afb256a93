//! The scripts that run peers beside `lstm-bench` name its shapes: the shape list the
//! Python scripts share (scripts/bench_shapes.py) is lstm-bench's standard list, and
//! gpu-check.sh's default shapes are names lstm-bench knows (an unknown one stops it,
//! and with it the whole real-GPU check).

use std::path::PathBuf;

use lstm_wgpu::bench::{all_shapes, standard_shapes};

fn script(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

/// The numbers in `text`, in order.
fn numbers(text: &str) -> Vec<usize> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

/// `(name, T, B, I, H, layers, bidirectional)` from bench_shapes.py.
fn python_shapes() -> Vec<(String, [usize; 5], bool)> {
    let text = script("bench_shapes.py");
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("\"S") {
            let (name, dims) = rest.split_once("\":").unwrap();
            let n = numbers(dims);
            out.push((
                format!("S{name}"),
                [n[0], n[1], n[2], n[3], n[4]],
                dims.contains("True"),
            ));
        } else if let Some(list) = line.strip_prefix("for _h, _b, _t in ") {
            for hbt in numbers(list).chunks(3) {
                let (h, b, t) = (hbt[0], hbt[1], hbt[2]);
                out.push((format!("DB-H{h}-B{b}-T{t}"), [t, b, h, h, 1], false));
            }
        }
    }
    out
}

#[test]
fn the_python_shape_list_is_lstm_benchs() {
    let want: Vec<_> = standard_shapes()
        .into_iter()
        .map(|s| {
            (
                s.name,
                [s.t, s.b, s.input, s.hidden, s.layers],
                s.bidirectional,
            )
        })
        .collect();
    assert_eq!(python_shapes(), want);
}

#[test]
fn gpu_check_names_shapes_lstm_bench_knows() {
    let text = script("gpu-check.sh");
    // The default list, the B = 1 shapes of its subgroup A/B, those of its kernel-form A/B.
    let lists: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            let l = l
                .strip_prefix("SHAPES=\"${GPU_CHECK_SHAPES:-")
                .or(l.strip_prefix("B1=\""))
                .or(l.strip_prefix("AB=\""))?;
            Some(l.trim_end_matches('"').trim_end_matches('}'))
        })
        .collect();
    assert_eq!(lists.len(), 3, "gpu-check.sh: its three shape lists");
    let known: Vec<String> = all_shapes().into_iter().map(|s| s.name).collect();
    for name in lists.iter().flat_map(|l| l.split(',')) {
        assert!(
            known.iter().any(|k| k == name),
            "gpu-check.sh: unknown shape {name}"
        );
    }
}
