//! The Φ program format and the simulator: TOML and JSON give the same program, errors name
//! file:line:column and the key, unsupported features are refused plainly, the reference and the
//! transfer-matrix paths agree, closed forms, and random text never panics the parsers.

use num_complex::Complex;
use proptest::prelude::*;
use std::f64::consts::PI;
use xdv_phi::haar::haar_unitary;
use xdv_phi::{run, run_with, Matrix, Op, Path, PhiError, Program, C64};

const EXAMPLE_TOML: &str = r#"modes = 4
channels = 1
input = [[1, 0], [0, 0.5], [0, 0], [0.25, -0.25]]

[[op]]
kind = "mzi"
modes = [0, 1]
theta = 0.7853981633974483
phi = 0.3

[[op]]
kind = "bs"
modes = [2, 3]
theta = 0.2

[[op]]
kind = "phase"
mode = 3
phi = -1.0

[[op]]
kind = "attenuate"
mode = 1
db = 3.0

[[op]]
kind = "unitary"
modes = [1, 2]
matrix = [[[0, 0], [1, 0]], [[1, 0], [0, 0]]]

[detect]
kind = "intensity"
"#;

const EXAMPLE_JSON: &str = r#"{
  "modes": 4,
  "channels": 1,
  "input": [[1, 0], [0, 0.5], [0, 0], [0.25, -0.25]],
  "op": [
    {"kind": "mzi", "modes": [0, 1], "theta": 0.7853981633974483, "phi": 0.3},
    {"kind": "bs", "modes": [2, 3], "theta": 0.2},
    {"kind": "phase", "mode": 3, "phi": -1.0},
    {"kind": "attenuate", "mode": 1, "db": 3.0},
    {"kind": "unitary", "modes": [1, 2], "matrix": [[[0, 0], [1, 0]], [[1, 0], [0, 0]]]}
  ],
  "detect": {"kind": "intensity"}
}"#;

fn c(re: f64, im: f64) -> C64 {
    Complex::new(re, im)
}

#[test]
fn toml_and_json_give_the_same_program() {
    let t = Program::from_toml(EXAMPLE_TOML, "p.toml").unwrap();
    let j = Program::from_json(EXAMPLE_JSON, "p.json").unwrap();
    assert_eq!(t, j);
    assert_eq!(t.modes, 4);
    assert_eq!(t.ops.len(), 5);
    match &t.ops[3] {
        Op::Attenuate { mode: 1, eta } => assert!((eta - 10f64.powf(-0.3)).abs() < 1e-15),
        other => panic!("{other:?}"),
    }
}

/// The example's output by explicit 2 × 2 algebra, independent of the mesh code.
#[test]
fn example_runs_to_its_hand_computed_output() {
    let p = Program::from_toml(EXAMPLE_TOML, "p.toml").unwrap();
    let r = run(&p, 0).unwrap();
    let mut a = [c(1.0, 0.0), c(0.0, 0.5), c(0.0, 0.0), c(0.25, -0.25)];
    // mzi θ = π/4, φ = 0.3 on (0, 1)
    let (s, co) = (PI / 4.0).sin_cos();
    let e = C64::from_polar(1.0, 0.3);
    let (x, y) = (a[0], a[1]);
    a[0] = e * co * x - s * y;
    a[1] = e * s * x + co * y;
    // bs θ = 0.2 on (2, 3)
    let (s, co) = 0.2f64.sin_cos();
    let (x, y) = (a[2], a[3]);
    a[2] = co * x + c(0.0, s) * y;
    a[3] = c(0.0, s) * x + co * y;
    a[3] *= C64::from_polar(1.0, -1.0);
    a[1] *= 10f64.powf(-0.3).sqrt();
    a.swap(1, 2);
    for (got, want) in r.amplitudes[0].iter().zip(&a) {
        assert!((got - want).norm() < 1e-12, "{got} vs {want}");
    }
    let p_in = 1.0 + 0.25 + 0.125;
    let p_out: f64 = a.iter().map(|z| z.norm_sqr()).sum();
    assert!((r.transmission_db - 10.0 * (p_out / p_in).log10()).abs() < 1e-12);
    assert_eq!(r.predicted_fidelity, 1.0);
    for (i, z) in r.intensities[0].iter().zip(&r.amplitudes[0]) {
        assert!((i - z.norm_sqr()).abs() < 1e-15);
    }
    let j = r.to_json();
    assert_eq!(j["modes"], 4);
    assert_eq!(j["amplitudes"].as_array().unwrap().len(), 4);
}

#[test]
fn balanced_splitters_and_attenuation_in_programs() {
    let p = Program::from_toml("modes = 2\ninput = [[1, 0], [0, 0]]\n[[op]]\nkind = \"mzi\"\nmodes = [0, 1]\ntheta = 0.7853981633974483\nphi = 1.0\n", "m").unwrap();
    let r = run(&p, 0).unwrap();
    assert!((r.intensities[0][0] - 0.5).abs() < 1e-15 && (r.intensities[0][1] - 0.5).abs() < 1e-15);
    assert!(r.transmission_db.abs() < 1e-12, "lossless");
    let p = Program::from_toml(
        "modes = 1\ninput = [[2, 0]]\n[[op]]\nkind = \"attenuate\"\nmode = 0\neta = 0.25\n",
        "a",
    )
    .unwrap();
    let r = run(&p, 0).unwrap();
    assert!((r.amplitudes[0][0] - c(1.0, 0.0)).norm() < 1e-15);
    assert!((r.transmission_db - 10.0 * 0.25f64.log10()).abs() < 1e-12);
    let p = Program::from_toml(
        "modes = 1\ninput = [[1, 0]]\n[[op]]\nkind = \"attenuate\"\nmode = 0\neta = 0\n",
        "a",
    )
    .unwrap();
    let r = run(&p, 0).unwrap();
    assert_eq!(r.transmission_db, f64::NEG_INFINITY);
    assert!(r.to_json()["transmission_db"].is_null());
}

/// A program with Haar unitaries on sub-ranges, MZIs, splitters, phases and losses, on 3 channels.
fn random_program(n: usize, seed: u64) -> (String, Vec<Matrix>) {
    let mut s = format!("modes = {n}\nchannels = 3\ninput = [");
    for w in 0..3 {
        s.push('[');
        for m in 0..n {
            s.push_str(&format!(
                "[{}, {}],",
                ((m + w) as f64 * 0.37).sin(),
                ((m * w) as f64 * 0.11).cos()
            ));
        }
        s.push_str("],");
    }
    s.push_str("]\n");
    let mut mats = Vec::new();
    for k in 0..6 {
        let lo = (k * 3) % (n - 4);
        let size = (2 + (k % 3) * 2).min(n - lo);
        let u = haar_unitary(size, seed + k as u64);
        s.push_str(&format!(
            "[[op]]\nkind = \"unitary\"\nmodes = {:?}\nmatrix = {}\n",
            (lo..lo + size).collect::<Vec<_>>(),
            u.to_json()
        ));
        mats.push(u);
        s.push_str(&format!(
            "[[op]]\nkind = \"mzi\"\nmodes = [{}, {}]\ntheta = {}\nphi = {}\n",
            k % (n - 1),
            k % (n - 1) + 1,
            0.3 * k as f64,
            -0.7 * k as f64
        ));
        s.push_str(&format!(
            "[[op]]\nkind = \"bs\"\nmodes = [{}, {}]\ntheta = {}\n",
            (n - 2 + k) % (n - 1),
            (n - 2 + k) % (n - 1) + 1,
            0.9 - 0.1 * k as f64
        ));
        s.push_str(&format!(
            "[[op]]\nkind = \"phase\"\nmode = {}\nphi = {}\n",
            (5 * k) % n,
            1.3 * k as f64
        ));
        s.push_str(&format!(
            "[[op]]\nkind = \"attenuate\"\nmode = {}\ndb = {}\n",
            (7 * k) % n,
            0.5 * k as f64
        ));
    }
    (s, mats)
}

#[test]
fn reference_and_transfer_matrix_paths_agree() {
    for (n, seed) in [(6, 1), (12, 2), (30, 3)] {
        let (text, _) = random_program(n, seed);
        let p = Program::from_toml(&text, "r.toml").unwrap();
        assert_eq!(p.channels, 3);
        let a = run_with(&p, 0, Path::Reference).unwrap();
        let b = run_with(&p, 0, Path::TransferMatrix).unwrap();
        for (ca, cb) in a.amplitudes.iter().zip(&b.amplitudes) {
            for (x, y) in ca.iter().zip(cb) {
                assert!((x - y).norm() < 1e-12, "N = {n}: {x} vs {y}");
            }
        }
        assert!((a.transmission_db - b.transmission_db).abs() < 1e-12);
        assert!(a.transmission_db < 0.0, "the program has losses");
    }
}

#[test]
fn a_unitary_op_applies_its_matrix() {
    let u = haar_unitary(5, 99);
    let text = format!("modes = 7\ninput = [[1,0],[2,0],[0,1],[0.5,0.5],[3,0],[0,-1],[1,1]]\n[[op]]\nkind = \"unitary\"\nmodes = [1, 2, 3, 4, 5]\nmatrix = {}\n", u.to_json());
    let p = Program::from_toml(&text, "u.toml").unwrap();
    let r = run(&p, 0).unwrap();
    let input = &p.input[0];
    let inner = u.apply(&input[1..6]);
    assert!((r.amplitudes[0][0] - input[0]).norm() < 1e-15);
    assert!((r.amplitudes[0][6] - input[6]).norm() < 1e-15);
    for (got, want) in r.amplitudes[0][1..6].iter().zip(&inner) {
        assert!((got - want).norm() < 1e-12);
    }
    assert!(r.transmission_db.abs() < 1e-12);
}

/// (text, expected substrings of the error message).
fn check_toml_error(text: &str, expect: &[&str]) {
    let e = Program::from_toml(text, "bad.toml").expect_err(text);
    let s = e.to_string();
    assert!(
        matches!(
            e,
            PhiError::Program {
                position: Some(_),
                ..
            }
        ),
        "{s}"
    );
    for x in expect {
        assert!(s.contains(x), "`{s}` lacks `{x}` for\n{text}");
    }
}

#[test]
fn toml_errors_name_file_line_column_and_key() {
    let head = "modes = 2\ninput = [[1, 0], [0, 0]]\n";
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("modes = 0\ninput = [[1, 0]]\n".into(), vec!["bad.toml:1:9", "`modes`", "outside 1 ..= 4096"]),
        ("modes = 5000\ninput = [[1, 0]]\n".into(), vec!["bad.toml:1:9", "`modes`"]),
        ("modes = 2\ninput = [[1, 0]]\n".into(), vec!["bad.toml:2:9", "`input`", "1 amplitudes given for 2 modes"]),
        ("modes = 2\nchannels = 2\ninput = [[1, 0], [0, 0]]\n".into(), vec!["bad.toml:3:9", "`input`", "channels"]),
        ("modes = 2\ninput = [[0, 0], [0, 0]]\n".into(), vec!["bad.toml:2:9", "no usable light"]),
        ("modes = 2\ninput = [[1, 0], [nan, 0]]\n".into(), vec!["bad.toml:2:18", "`input[1]`", "not finite"]),
        (format!("{head}colour = 3\n"), vec!["bad.toml:3:1", "`colour`", "unknown field"]),
        (format!("{head}[[op]]\nkind = \"phase\"\nmode = 2\nphi = 0.1\n"), vec!["bad.toml:5:8", "`op[0].mode`", "mode 2 is outside 0 ..= 1"]),
        (format!("{head}[[op]]\nkind = \"mzi\"\nmodes = [1, 0]\ntheta = 0.1\nphi = 0\n"), vec!["bad.toml:5:9", "`op[0].modes`", "adjacent"]),
        (format!("{head}[[op]]\nkind = \"mzi\"\nmodes = [0, 1]\ntheta = inf\nphi = 0\n"), vec!["bad.toml:6:9", "`op[0].theta`", "not a finite"]),
        (format!("{head}[[op]]\nkind = \"teleport\"\nmode = 0\n"), vec!["bad.toml:", "unknown variant", "[detect]"]),
        (format!("{head}[[op]]\nkind = \"phase\"\nmode = 0\nphi = 0.1\nextra = 1\n"), vec!["bad.toml:7:1", "`op[0].extra`", "unknown field `extra`"]),
        (format!("{head}[[op]]\nkind = \"attenuate\"\nmode = 0\neta = 1.5\n"), vec!["bad.toml:6:7", "`op[0].eta`", "outside [0, 1]"]),
        (format!("{head}[[op]]\nkind = \"attenuate\"\nmode = 0\neta = 0.5\ndb = 3\n"), vec!["bad.toml:7:6", "`op[0].db`", "both"]),
        (format!("{head}[[op]]\nkind = \"attenuate\"\nmode = 0\n"), vec!["bad.toml:", "`op[0]`", "eta or db"]),
        (format!("{head}[[op]]\nkind = \"phase\"\nmode = 0\nphi = 0\n[[op]]\nkind = \"mzi\"\nmodes = [0, 1]\nphi = 0\n"), vec!["bad.toml:7:1", "`op[1].theta`", "missing field `theta`"]),
        (format!("{head}[[op]]\nkind = \"phase\"\nmode = [0]\nphi = 0\n"), vec!["bad.toml:5:8", "`op[0].mode`", "invalid type"]),
        ("modes = 4\ninput = [[1,0],[0,0],[0,0],[0,0]]\n[[op]]\nkind = \"unitary\"\nmodes = [0, 2]\nmatrix = [[[1,0],[0,0]],[[0,0],[1,0]]]\n".to_string(), vec!["bad.toml:5:9", "`op[0].modes`", "contiguous and ascending"]),
        (format!("{head}[[op]]\nkind = \"unitary\"\nmodes = [0, 1]\nmatrix = [[[1,0],[0,0]],[[0,0],[2,0]]]\n"), vec!["bad.toml:6:10", "`op[0].matrix`", "not unitary", "|U†U − I| = 3.000e0"]),
        (format!("{head}[[op]]\nkind = \"unitary\"\nmodes = [0, 1]\nmatrix = [[[1,0],[0,0]],[[0,0]]]\n"), vec!["bad.toml:6:", "`op[0].matrix[1]`", "row 1 has 1 entries"]),
        (format!("{head}[detect]\nkind = \"heterodyne\"\n"), vec!["bad.toml:4:8", "`detect.kind`", "unknown detection kind"]),
        (format!("{head}[detect]\nkind = \"homodyne\"\nshot_noise = true\n"), vec!["bad.toml:5:14", "`detect.shot_noise`", "belongs to intensity detection"]),
        (format!("{head}[detect]\nkind = \"intensity\"\nlo_phase = 0.5\n"), vec!["bad.toml:5:12", "`detect.lo_phase`", "belongs to homodyne"]),
        (format!("{head}[detect]\nkind = \"intensity\"\nadc_bits = 8\n"), vec!["bad.toml:5:12", "`detect.adc_bits`", "without full_scale"]),
        (format!("{head}[detect]\nkind = \"intensity\"\nadc_bits = 30\nfull_scale = 10\n"), vec!["bad.toml:5:12", "outside 1 ..= 24"]),
        (format!("{head}[detect]\nkind = \"homodyne\"\nlo_phase = [0, 1, 2]\n"), vec!["bad.toml:5:12", "3 phases for 2 detected modes"]),
        (format!("{head}[detect]\nkind = \"intensity\"\nmodes = [1, 0]\n"), vec!["bad.toml:5:9", "`detect.modes`", "ascending"]),
        (format!("{head}[[op]]\nkind = \"delay\"\nmode = 0\ndelay_ps = -1\n"), vec!["bad.toml:6:12", "`op[0].delay_ps`", "outside [0, 1e6] ps"]),
        (format!("{head}[[op]]\nkind = \"delay\"\nmode = 0\n"), vec!["bad.toml:", "`op[0]`", "delay_ps or delay_ns"]),
        (format!("{head}[[op]]\nkind = \"matvec\"\nmodes = [0]\nmatrix = [[[1, 0], [1, 0]]]\n"), vec!["bad.toml:5:9", "`op[0].modes`", "1 modes listed for a 1 × 2 matrix"]),
        (format!("{head}[[op]]\nkind = \"matvec\"\nmodes = [0, 1]\nmatrix = [[[0, 0], [0, 0]]]\n"), vec!["bad.toml:6:10", "`op[0].matrix`", "all-zero"]),
        (format!("{head}wavelengths_nm = [1550, 1551]\n"), vec!["bad.toml:3:18", "`wavelengths_nm`", "2 wavelengths given for 1 channels"]),
        ("modes = 2\ninput = [[1, 0], [0, 0]\n".into(), vec!["bad.toml:2:"]),
        ("modes = \"two\"\ninput = [[1, 0]]\n".into(), vec!["bad.toml:1:9", "`modes`", "whole number"]),
        ("input = [[1, 0]]\n".into(), vec!["bad.toml:1:1", "`modes`", "missing field `modes`"]),
        (format!("{head}[[op]]\nkind = \"phase\"\nmode = 0\nphi = 0\n[[op]]\nkind = \"mzi\"\nmodes = [0, 1]\ntheta = \"a\"\nphi = 0\n"), vec!["bad.toml:10:9", "`op[1].theta`", "invalid type", "is a number"]),
    ];
    for (text, expect) in &cases {
        check_toml_error(text, expect);
    }
}

#[test]
fn json_errors_name_position_or_key_path() {
    let cases: &[(&str, &[&str])] = &[
        ("{\"modes\": 2, \"input\": [[1, 0], [0, 0]], \"colour\": 1}", &["bad.json:1:", "`colour`", "unknown field"]),
        ("{\"modes\": 2,\n \"input\": [[1, 0], [0, 0]],\n \"op\": [{\"kind\": \"phase\", \"mode\": 7, \"phi\": 0}]}", &["bad.json:3:35: `op[0].mode`", "outside"]),
        ("{\"modes\": 2, \"input\": [[1, 0], [0, 0]", &["bad.json:1:"]),
        ("{\"modes\": 2, \"input\": [[1, 0], [0, 0]], \"op\": [{\"kind\": \"bs\", \"modes\": [0, 1], \"theta\": 0},\n {\"kind\": \"mzi\", \"modes\": [0, 1], \"theta\": 0, \"phi\": 1e9}]}", &["bad.json:2:54: `op[1].phi`", "not a finite"]),
        ("{\"modes\": 2, \"input\": [[1, 0], [1e200, 0]]}", &["bad.json:1:32: `input[1]`", "not finite or exceeds"]),
        ("{\"modes\": 2, \"input\": [[1, 0], [0, 0]], \"detect\": {\"kind\": \"photons\"}}", &["bad.json:1:60: `detect.kind`", "unknown detection kind"]),
    ];
    for (text, expect) in cases {
        let s = Program::from_json(text, "bad.json")
            .expect_err(text)
            .to_string();
        for x in *expect {
            assert!(s.contains(x), "`{s}` lacks `{x}`");
        }
    }
}

#[test]
fn per_channel_inputs() {
    let text = "modes = 2\nchannels = 2\ninput = [[[1, 0], [0, 0]], [[0, 0], [0, 1]]]\n[[op]]\nkind = \"mzi\"\nmodes = [0, 1]\ntheta = 1.5707963267948966\nphi = 0\n";
    let p = Program::from_toml(text, "c.toml").unwrap();
    let r = run(&p, 0).unwrap();
    // The cross state swaps the modes in each channel independently.
    assert!((r.intensities[0][1] - 1.0).abs() < 1e-15 && r.intensities[0][0] < 1e-30);
    assert!((r.intensities[1][0] - 1.0).abs() < 1e-15 && r.intensities[1][1] < 1e-30);
    assert_eq!(r.to_json()["amplitudes"].as_array().unwrap().len(), 2);
    let bad = "modes = 2\nchannels = 3\ninput = [[[1, 0], [0, 0]], [[0, 0], [0, 1]]]\n";
    assert!(Program::from_toml(bad, "c.toml")
        .unwrap_err()
        .to_string()
        .contains("2 channels of amplitudes given, 3 declared"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        let _ = Program::from_toml(&text, "fuzz.toml");
        let _ = Program::from_json(&text, "fuzz.json");
    }

    #[test]
    fn mutated_programs_never_panic(cut in 0usize..EXAMPLE_TOML.len(), insert in "[\\[\\]{}=,.\"a-z0-9 \n-]{0,12}") {
        let mut t = EXAMPLE_TOML.to_string();
        let cut = (0..=cut).rev().find(|&i| t.is_char_boundary(i)).unwrap_or(0);
        t.insert_str(cut, &insert);
        let _ = Program::from_toml(&t, "fuzz.toml");
        let mut j = EXAMPLE_JSON.to_string();
        let cut = (0..=cut.min(j.len())).rev().find(|&i| j.is_char_boundary(i)).unwrap_or(0);
        j.insert_str(cut, &insert);
        let _ = Program::from_json(&j, "fuzz.json");
    }
}

/// One random op as (TOML table body, JSON object), with values in and out of range.
fn arb_op() -> impl Strategy<Value = (String, String)> {
    let num = prop_oneof![
        (-10.0f64..10.0).prop_map(|x| (format!("{x:?}"), format!("{x:?}"))),
        Just(("nan".to_string(), "\"nan\"".to_string())),
        Just(("2e9".to_string(), "2e9".to_string())),
        (-2i64..3).prop_map(|x| (x.to_string(), x.to_string())),
    ];
    let kind = prop::sample::select(vec!["phase", "mzi", "bs", "attenuate", "unitary", "delay"]);
    (kind, -1i64..6, -1i64..6, num.clone(), num, prop::bool::ANY).prop_map(
        |(kind, m1, m2, (t1, j1), (t2, j2), flag)| {
            let mut toml = format!("[[op]]\nkind = \"{kind}\"\n");
            let mut json = format!("{{\"kind\": \"{kind}\"");
            let mut field = |k: &str, tv: &str, jv: &str| {
                toml.push_str(&format!("{k} = {tv}\n"));
                json.push_str(&format!(", \"{k}\": {jv}"));
            };
            match kind {
                "phase" => {
                    field("mode", &m1.to_string(), &m1.to_string());
                    field("phi", &t1, &j1);
                }
                "mzi" | "bs" => {
                    let v = format!("[{m1}, {m2}]");
                    field("modes", &v, &v);
                    field("theta", &t1, &j1);
                    if kind == "mzi" || flag {
                        field("phi", &t2, &j2);
                    }
                }
                "attenuate" => {
                    field("mode", &m1.to_string(), &m1.to_string());
                    field(if flag { "eta" } else { "db" }, &t1, &j1);
                }
                _ => {
                    let v = format!("[{m1}, {m2}]");
                    field("modes", &v, &v);
                    let mat = if flag {
                        "[[[0, 0], [1, 0]], [[1, 0], [0, 0]]]".to_string()
                    } else {
                        format!("[[[{t1}, 0], [0, 0]], [[0, 0], [1, 0]]]")
                    };
                    let jmat = if flag {
                        mat.clone()
                    } else {
                        format!("[[[{j1}, 0], [0, 0]], [[0, 0], [1, 0]]]")
                    };
                    field("matrix", &mat, &jmat);
                }
            }
            json.push('}');
            (toml, json)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Programs of the right shape with random values: each is accepted, or refused with a
    /// position and a key, in TOML and JSON alike — and the two formats agree on which.
    #[test]
    fn every_refusal_has_a_position(modes in 0i64..6, ops in prop::collection::vec(arb_op(), 0..5)) {
        let input: Vec<String> = (0..modes.max(0)).map(|m| format!("[{}, 0]", if m == 0 { 1 } else { 0 })).collect();
        let input = format!("[{}]", input.join(", "));
        let mut toml = format!("modes = {modes}\ninput = {input}\n");
        let mut json = format!("{{\"modes\": {modes}, \"input\": {input}, \"op\": [");
        for (k, (t, j)) in ops.iter().enumerate() {
            toml.push_str(t);
            if k > 0 {
                json.push_str(", ");
            }
            json.push_str(j);
        }
        json.push_str("]}");
        let t = Program::from_toml(&toml, "p.toml");
        let j = Program::from_json(&json, "p.json");
        for r in [&t, &j] {
            if let Err(e) = r {
                let ok = matches!(e, PhiError::Program { position: Some(_), key, .. } if !key.is_empty());
                prop_assert!(ok, "{e}\n{toml}\n{json}");
            }
        }
        // NaN is a TOML float but only a string in JSON, so the formats may disagree there.
        if !toml.contains("nan") {
            prop_assert_eq!(t.is_ok(), j.is_ok(), "{:?} vs {:?}\n{}", t.as_ref().err(), j.as_ref().err(), toml);
            if let (Ok(a), Ok(b)) = (&t, &j) {
                prop_assert_eq!(a, b);
            }
        }
    }
}
