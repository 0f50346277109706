//! `export` against what real TensorFlow verified (fixtures/export/, written by
//! fixtures/gen_export.py with tensorflow 2.21): re-running each export gives files with the
//! sha256 TensorFlow checked (list_variables, values, a strict Saver restore of the pretraining
//! graph) and that TF's own Saver reproduced byte for byte; the `tied` index is compared with
//! the one TF's Saver wrote, byte for byte.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;
use tf_checkpoint::Checkpoint;

fn root() -> PathBuf {
    crate::repo_root()
}

/// SHA-256 (FIPS 180-4), enough for comparing fixture hashes without a dependency.
fn sha256(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, c) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7]
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [
                t1.wrapping_add(t2),
                v[0],
                v[1],
                v[2],
                v[3].wrapping_add(t1),
                v[4],
                v[5],
                v[6],
            ];
        }
        for (a, b) in h.iter_mut().zip(v) {
            *a = a.wrapping_add(b);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

#[test]
fn sha256_test_vectors() {
    assert_eq!(
        sha256(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        sha256(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        sha256(&[b'a'; 1000]),
        "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
    );
}

fn checks() -> Value {
    let text = std::fs::read_to_string(root().join("fixtures/export/tf_checks.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn run_export(args: &[Value], out: &Path) {
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            a.as_str()
                .unwrap()
                .replace("{out}", &out.display().to_string())
        })
        .collect();
    let status = Command::cargo_bin("electra-convert")
        .unwrap()
        .current_dir(root())
        .arg("export")
        .args(&args)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

#[test]
fn exports_have_the_bytes_tensorflow_verified() {
    let doc = checks();
    assert_eq!(doc["tensorflow"], "2.21.0");
    let exports = doc["exports"].as_array().unwrap();
    assert_eq!(exports.len(), 5);
    let tmp = tempfile::tempdir().unwrap();
    for (i, e) in exports.iter().enumerate() {
        let name = e["name"].as_str().unwrap();
        // What TF found, recorded by the script (it asserts before writing true).
        for key in [
            "values_equal_hf_tensors",
            "strict_saver_restore",
            "tf_saver_bytes_identical",
            "tf_saver_state_file_identical",
        ] {
            assert_eq!(e[key], true, "{name}: {key}");
        }
        let out = tmp.path().join(format!("e{i}"));
        run_export(e["args"].as_array().unwrap(), &out);
        let prefix = out.join(e["prefix"].as_str().unwrap());
        let read = |ext: &str| std::fs::read(format!("{}{ext}", prefix.display())).unwrap();
        let (index, data) = (read(".index"), read(".data-00000-of-00001"));
        assert_eq!(sha256(&index), e["index_sha256"], "{name}: .index");
        assert_eq!(sha256(&data), e["data_sha256"], "{name}: .data");
        assert_eq!(sha256(&index), e["tf_saver_index_sha256"], "{name}");
        assert_eq!(sha256(&data), e["tf_saver_data_sha256"], "{name}");
        assert_eq!(
            std::fs::read_to_string(out.join("checkpoint")).unwrap(),
            e["checkpoint_state_file"].as_str().unwrap()
        );
        // Our reader lists what TF listed.
        let ckpt = Checkpoint::open(&prefix).unwrap();
        let ours: Vec<Value> = ckpt
            .tensors()
            .iter()
            .map(|t| serde_json::json!([t.name, t.shape, t.dtype.tf_name()]))
            .collect();
        assert_eq!(&Value::Array(ours), &e["tf_list_variables"], "{name}");
        if name == "tied" {
            let tf_index =
                std::fs::read(root().join("fixtures/export/tf_saver/model.ckpt-1000.index"))
                    .unwrap();
            assert!(index == tf_index, "tied: .index differs from TF Saver's");
        }
    }
}
