//! The IDX reader on valid files: the bundled MNIST subset, plain vs gzip, any rank,
//! and the MNIST-level checks on top of it (image size, counts, labels). Broken files
//! are in tests/idx_errors.rs. Nearly everything here reads gzip, so the file needs
//! the `gzip` feature (on by default).
#![cfg(feature = "gzip")]

mod idx_common;

use std::io::Write;
use std::path::PathBuf;

use flate2::{Compression, GzBuilder};
use idx_common::*;
use lstm_wgpu::data::{
    load_bundled_mnist, load_mnist, read_idx_u8, IdxU8, Mnist, BUNDLED_TRAIN_LEN,
};
use lstm_wgpu::LstmError;
use sha2::{Digest, Sha256};

const README_TRAIN_COUNTS: [usize; 10] = [784, 882, 805, 828, 789, 679, 811, 882, 755, 785];
const README_TEST_COUNTS: [usize; 10] = [217, 245, 186, 204, 191, 184, 203, 188, 189, 193];
const README_IMAGES_SHA256: &str =
    "e1b429c710e3e94f8dbe444aa3c4facedada6939cd0dacb0c829a02c3839e984";
const README_LABELS_SHA256: &str =
    "9b91cbf8c6e4a6e1c4d9d91f61f77a2966de518e596bb38709e832979521b716";

#[test]
fn bundled_files_match_readme_sha256() {
    for (name, sum) in [
        ("images-idx3-ubyte.gz", README_IMAGES_SHA256),
        ("labels-idx1-ubyte.gz", README_LABELS_SHA256),
    ] {
        let bytes = std::fs::read(bundled(name)).unwrap();
        let got: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, sum, "{name}");
    }
}

#[test]
fn bundled_mnist_loads_with_readme_class_counts() {
    let mnist = load_bundled_mnist().unwrap();
    assert_eq!(mnist.len(), 10_000);
    assert_eq!(mnist.images.dim(), (10_000, 28, 28));
    let (min, max) = mnist
        .images
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert_eq!((min, max), (0.0, 1.0), "pixels scaled to [0, 1]");
    // Not all background: a digit has ink (MNIST averages ~19% non-zero pixels).
    let ink = mnist.images.iter().filter(|&&v| v > 0.0).count() as f64;
    assert!((0.1..0.3).contains(&(ink / mnist.images.len() as f64)));

    let (train, test) = mnist.clone().split(BUNDLED_TRAIN_LEN).unwrap();
    assert_eq!((train.len(), test.len()), (8_000, 2_000));
    assert_eq!(train.images.dim(), (8_000, 28, 28));
    assert_eq!(test.images.dim(), (2_000, 28, 28));
    assert_eq!(train.class_counts(), README_TRAIN_COUNTS);
    assert_eq!(test.class_counts(), README_TEST_COUNTS);
    // The split keeps order: the test set's first digit is the whole set's 8,000th.
    assert_eq!(test.labels[0], mnist.labels[8_000]);
    assert_eq!(
        test.images.index_axis(ndarray::Axis(0), 0),
        mnist.images.index_axis(ndarray::Axis(0), 8_000)
    );

    // Raw reader: the standard MNIST headers.
    let images = read_idx_u8(bundled("images-idx3-ubyte.gz")).unwrap();
    assert_eq!(images.dims, [10_000, 28, 28]);
    assert_eq!(images.magic(), 0x0803);
    let labels = read_idx_u8(bundled("labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(labels.dims, [10_000]);
    assert_eq!(labels.magic(), 0x0801);
    assert_eq!(labels.data, mnist.labels);
    assert_eq!(
        images.data[200],
        (mnist.images[[0, 7, 4]] * 255.0).round() as u8
    );
}

#[test]
fn split_edges() {
    let mnist = load_bundled_mnist().unwrap();
    let (all, none) = mnist.clone().split(10_000).unwrap();
    assert_eq!((all.len(), none.len()), (10_000, 0));
    assert!(none.is_empty());
    assert_eq!(none.images.dim(), (0, 28, 28));
    let (none, all) = mnist.clone().split(0).unwrap();
    assert_eq!((none.len(), all.len()), (0, 10_000));
    let e = mnist.split(10_001).unwrap_err();
    assert!(matches!(e, LstmError::Value { .. }), "{e:?}");
    assert_contains(&e.to_string(), &["10001", "10000"]);
}

#[test]
fn plain_file_reads_the_same_as_gzip() {
    let images_gz = std::fs::read(bundled("images-idx3-ubyte.gz")).unwrap();
    let labels_gz = std::fs::read(bundled("labels-idx1-ubyte.gz")).unwrap();
    let images_plain = write_plain("images-idx3-ubyte", &gunzip(&images_gz));
    let labels_plain = write_plain("labels-idx1-ubyte", &gunzip(&labels_gz));
    let from_gz = load_bundled_mnist().unwrap();
    let from_plain = load_mnist(&images_plain, &labels_plain).unwrap();
    assert_eq!(from_gz, from_plain);

    // Detection is by content, not by name: a plain file called .gz, a gzip file without.
    let plain_named_gz = write_plain("labels-plain.gz", &gunzip(&labels_gz));
    let gz_named_plain = write_plain("labels-gzip.idx", &labels_gz);
    let expected = read_idx_u8(&labels_plain).unwrap();
    assert_eq!(read_idx_u8(&plain_named_gz).unwrap(), expected);
    assert_eq!(read_idx_u8(&gz_named_plain).unwrap(), expected);
}

/// The original MNIST downloads are gzip files whose header carries the file name
/// (FNAME flag); a file gzipped in several pieces (`cat a.gz b.gz`) is one stream to
/// gunzip, and so to us.
#[test]
fn gzip_variants_of_real_files() {
    let data: Vec<u8> = (0..3 * 28 * 28).map(|i| (i % 251) as u8).collect();
    let raw = idx(0x08, &[3, 28, 28], &data);
    let expected = IdxU8 {
        dims: vec![3, 28, 28],
        data: data.clone(),
    };

    let mut named = GzBuilder::new()
        .filename("train-images-idx3-ubyte")
        .mtime(1_000_000)
        .write(Vec::new(), Compression::best());
    named.write_all(&raw).unwrap();
    let path = write_plain("named.gz", &named.finish().unwrap());
    assert_eq!(read_idx_u8(&path).unwrap(), expected);

    let (a, b) = raw.split_at(10);
    let mut multi = gzip(a);
    multi.extend(gzip(b));
    let path = write_plain("multi-member.gz", &multi);
    assert_eq!(read_idx_u8(&path).unwrap(), expected);
}

#[test]
fn any_rank_and_empty_data() {
    let data: Vec<u8> = (0..2 * 3 * 4 * 5).map(|i| i as u8).collect();
    let path = write_gz("rank4.gz", &idx(0x08, &[2, 3, 4, 5], &data));
    let got = read_idx_u8(&path).unwrap();
    assert_eq!(got.dims, [2, 3, 4, 5]);
    assert_eq!(got.data, data);
    assert_eq!(got.magic(), 0x0804);

    let path = write_plain("empty-set.idx", &idx(0x08, &[0, 28, 28], &[]));
    assert_eq!(read_idx_u8(&path).unwrap().dims, [0, 28, 28]);
}

fn mnist_files(name: &str, image_dims: &[u32], labels: &[u8]) -> (PathBuf, PathBuf) {
    let n: u32 = image_dims.iter().product();
    let images = write_gz(
        &format!("{name}-images.gz"),
        &idx(0x08, image_dims, &vec![128; n as usize]),
    );
    let labels = write_plain(
        &format!("{name}-labels"),
        &idx(0x08, &[labels.len() as u32], labels),
    );
    (images, labels)
}

#[test]
fn small_valid_mnist_pair() {
    let (images, labels) = mnist_files("ok", &[3, 28, 28], &[0, 9, 5]);
    let m = load_mnist(&images, &labels).unwrap();
    assert_eq!(m.images.dim(), (3, 28, 28));
    assert!(m.images.iter().all(|&v| v == 128.0 / 255.0));
    assert_eq!(m.labels, [0, 9, 5]);
    assert_eq!(m.class_counts(), [1, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
}

#[test]
fn mnist_count_mismatch() {
    let (images, labels) = mnist_files("count", &[3, 28, 28], &[1, 2]);
    let msg = format_error(load_mnist(&images, &labels), &images);
    assert_contains(&msg, &["3 images but 2 labels", "count-labels"]);
}

#[test]
fn mnist_label_out_of_range() {
    let (images, labels) = mnist_files("label", &[3, 28, 28], &[1, 12, 3]);
    let msg = format_error(load_mnist(&images, &labels), &labels);
    assert_contains(&msg, &["label 12 at index 1", "0–9"]);
}

#[test]
fn mnist_wrong_image_size() {
    let (images, labels) = mnist_files("size", &[2, 28, 27], &[1, 2]);
    let msg = format_error(load_mnist(&images, &labels), &images);
    assert_contains(&msg, &["must be 28×28", "28×27"]);
}

#[test]
fn mnist_files_swapped() {
    let (images, labels) = mnist_files("swapped", &[2, 28, 28], &[1, 2]);
    let msg = format_error(load_mnist(&labels, &images), &labels);
    assert_contains(
        &msg,
        &["expected an MNIST image file", "0x00000803", "0x00000801"],
    );
    // A 3-d file where labels belong.
    let (images2, _) = mnist_files("swapped2", &[2, 28, 28], &[1, 2]);
    let msg = format_error(load_mnist(&images, &images2), &images2);
    assert_contains(
        &msg,
        &["expected an MNIST label file", "0x00000801", "0x00000803"],
    );
}

#[test]
fn mnist_from_idx_checks_too() {
    let images = IdxU8 {
        dims: vec![1, 28, 28],
        data: vec![0; 784],
    };
    let labels = IdxU8 {
        dims: vec![1],
        data: vec![10],
    };
    let e = Mnist::from_idx(images, labels).unwrap_err();
    assert_contains(&e.to_string(), &["MNIST labels", "label 10 at index 0"]);
}

/// The original training files at their real size and with their real kind of gzip
/// header: 60,000 images (here the bundled 10,000 six times over), plain and gzipped.
#[test]
fn full_size_60k_files() {
    let images = read_idx_u8(bundled("images-idx3-ubyte.gz")).unwrap();
    let labels = read_idx_u8(bundled("labels-idx1-ubyte.gz")).unwrap();
    let big_images = idx(0x08, &[60_000, 28, 28], &images.data.repeat(6));
    let big_labels = idx(0x08, &[60_000], &labels.data.repeat(6));
    let mut gz = GzBuilder::new()
        .filename("train-images-idx3-ubyte")
        .write(Vec::new(), Compression::fast());
    gz.write_all(&big_images).unwrap();
    let images_gz = write_plain("train-images-idx3-ubyte.gz", &gz.finish().unwrap());
    let images_plain = write_plain("train-images-idx3-ubyte", &big_images);
    let labels_gz = write_gz("train-labels-idx1-ubyte.gz", &big_labels);
    drop(big_images);

    let from_gz = load_mnist(&images_gz, &labels_gz).unwrap();
    assert_eq!(from_gz.images.dim(), (60_000, 28, 28));
    let bundled = load_bundled_mnist().unwrap();
    assert_eq!(
        from_gz.class_counts(),
        bundled.class_counts().map(|c| 6 * c)
    );
    let (_, last) = from_gz.clone().split(50_000).unwrap();
    assert_eq!(last, bundled);
    assert_eq!(load_mnist(&images_plain, &labels_gz).unwrap(), from_gz);
    for p in [images_gz, images_plain, labels_gz] {
        std::fs::remove_file(p).unwrap();
    }
}
