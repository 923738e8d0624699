//! The OpenQASM front end against a corpus of files (`tests/qasm/`): valid files whose lowered
//! circuit is checked against expectations written in their header comments and, for the unitary
//! part, against states and matrices computed independently from closed forms and the gate table;
//! invalid files whose first line names the expected `line:column` and message; and generated
//! inputs (random bytes, token soup, mutated corpus files) that must never make the parser panic.

use num_complex::Complex;
use proptest::prelude::*;
use std::collections::HashMap;
use std::f64::consts::{FRAC_1_SQRT_2, PI};
use std::path::{Path, PathBuf};
use xdv_q::gates::{self, Matrix, C64};
use xdv_q::qasm::{self, Options, QasmError, QasmErrorKind};
use xdv_q::{Circuit, Engine, Gate, Op, Reference, StateVec};

const TOL: f64 = 1e-10;

fn corpus_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/qasm")
        .join(sub)
}

fn files(sub: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(corpus_dir(sub))
        .expect("corpus directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "qasm"))
        .collect();
    v.sort();
    v
}

fn include_resolver(name: &str) -> Result<String, String> {
    std::fs::read_to_string(corpus_dir("include").join(name)).map_err(|e| e.to_string())
}

/// `// key: value` lines of a file's leading comment block.
fn header(text: &str, key: &str) -> Option<String> {
    let prefix = format!("// {key}:");
    text.lines()
        .take_while(|l| l.starts_with("//"))
        .find_map(|l| l.strip_prefix(&prefix).map(|s| s.trim().to_string()))
}

fn params_of(text: &str) -> Vec<(String, f64)> {
    header(text, "params")
        .map(|p| {
            p.split_whitespace()
                .map(|kv| {
                    let (k, v) = kv.split_once('=').expect("NAME=VALUE");
                    (k.to_string(), v.parse().expect("number"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn parse_file(path: &Path) -> Result<Circuit, QasmError> {
    let text = std::fs::read_to_string(path).expect("read corpus file");
    let params = params_of(&text);
    let resolver = include_resolver;
    let opts = Options {
        params: &params,
        include: Some(&resolver),
    };
    qasm::parse(&text, &path.file_name().unwrap().to_string_lossy(), &opts)
}

fn valid(name: &str) -> Circuit {
    let path = corpus_dir("valid").join(name);
    parse_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn parse_str(src: &str) -> Result<Circuit, QasmError> {
    qasm::parse(src, "test.qasm", &Options::default())
}

/// Counts of op kinds, recursing into conditionals.
fn counts(ops: &[Op], m: &mut HashMap<&'static str, usize>) {
    for op in ops {
        let k = match op {
            Op::Gate(_) => "gates",
            Op::Measure { .. } => "measures",
            Op::Reset { .. } => "resets",
            Op::Barrier { .. } => "barriers",
            Op::If {
                then_ops, else_ops, ..
            } => {
                counts(then_ops, m);
                counts(else_ops, m);
                "ifs"
            }
        };
        *m.entry(k).or_default() += 1;
    }
}

fn all_gates(ops: &[Op], out: &mut Vec<Gate>) {
    for op in ops {
        match op {
            Op::Gate(g) => out.push(g.clone()),
            Op::If {
                then_ops, else_ops, ..
            } => {
                all_gates(then_ops, out);
                all_gates(else_ops, out);
            }
            _ => {}
        }
    }
}

#[test]
fn valid_corpus_matches_its_expectations() {
    let list = files("valid");
    assert!(list.len() >= 10, "corpus has {} valid files", list.len());
    for path in list {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let expect =
            header(&text, "expect").unwrap_or_else(|| panic!("{name}: no // expect: line"));
        let c = parse_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut m = HashMap::new();
        counts(&c.ops, &mut m);
        for kv in expect.split_whitespace() {
            let (k, v) = kv.split_once('=').expect("key=value");
            let v: usize = v.parse().expect("count");
            let got = match k {
                "qubits" => c.num_qubits as usize,
                "clbits" => c.num_clbits as usize,
                _ => m.get(k).copied().unwrap_or(0),
            };
            assert_eq!(got, v, "{name}: {k}");
        }
        // Structural invariants of every lowered gate.
        let mut gs = Vec::new();
        all_gates(&c.ops, &mut gs);
        for g in gs {
            assert_eq!(g.matrix.dim, 1 << g.targets.len(), "{name}: {}", g.name);
            assert!(
                g.matrix.unitarity_error() < TOL,
                "{name}: {} not unitary",
                g.name
            );
            assert!(
                gates::lookup(&g.name).is_some(),
                "{name}: gate name {} not in the table",
                g.name
            );
            let qs: Vec<u32> = g.qubits().collect();
            for (i, q) in qs.iter().enumerate() {
                assert!(*q < c.num_qubits, "{name}: qubit {q} out of range");
                assert!(!qs[..i].contains(q), "{name}: {} repeats qubit {q}", g.name);
            }
        }
    }
}

#[test]
fn invalid_corpus_reports_the_expected_position_and_message() {
    let list = files("invalid");
    assert!(list.len() >= 25, "corpus has {} invalid files", list.len());
    let mut failures = Vec::new();
    for path in list {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let first = text.lines().next().unwrap_or("");
        let spec = first
            .strip_prefix("// error: ")
            .unwrap_or_else(|| panic!("{name}: first line must be '// error: L:C: message'"));
        let mut parts = spec.splitn(3, ':');
        let line: u32 = parts.next().unwrap().trim().parse().expect("line");
        let col: u32 = parts.next().unwrap().trim().parse().expect("column");
        let msg = parts.next().unwrap().trim();
        let err = match parse_file(&path) {
            Ok(_) => {
                failures.push(format!("{name}: parsed without error"));
                continue;
            }
            Err(e) => e,
        };
        let kind = header(&text, "kind");
        let shown = err.to_string();
        if (err.line, err.column) != (line, col)
            || !err.message.contains(msg)
            || err.origin != name
            || kind.is_some_and(|k| k != format!("{:?}", err.kind))
            || !shown.starts_with(&format!("{name}:{line}:{col}: "))
        {
            failures.push(format!(
                "{name}: want {line}:{col}: {msg}; got {shown} ({:?})",
                err.kind
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---- states and matrices, computed independently ----

fn run(c: &Circuit) -> Vec<C64> {
    let mut gs = Vec::new();
    let mut seen_measure = false;
    for op in &c.ops {
        match op {
            Op::Gate(g) => {
                assert!(!seen_measure, "a gate after a measurement");
                gs.push(g.clone());
            }
            Op::Measure { .. } => seen_measure = true,
            Op::Barrier { .. } => {}
            other => panic!("not unitary: {other:?}"),
        }
    }
    let mut s = StateVec::<f64>::zero(c.num_qubits, 1 << 30).expect("state fits");
    Reference.apply_gates(&mut s, &gs);
    let phase = C64::from_polar(1.0, c.global_phase);
    s.amplitudes().iter().map(|a| a * phase).collect()
}

fn assert_state(got: &[C64], want: &[C64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: dimension");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).norm() < TOL,
            "{what}: amplitude {i}: got {g}, want {w}"
        );
    }
}

/// The unitary of a circuit, column j being the image of basis state j.
fn unitary(c: &Circuit) -> Matrix {
    let n = c.num_qubits;
    let dim = 1usize << n;
    let gs: Vec<Gate> = c
        .ops
        .iter()
        .filter_map(|o| match o {
            Op::Gate(g) => Some(g.clone()),
            _ => None,
        })
        .collect();
    let mut data = vec![C64::new(0.0, 0.0); dim * dim];
    for j in 0..dim {
        let mut amps = vec![Complex::new(0.0, 0.0); dim];
        amps[j] = Complex::new(1.0, 0.0);
        let mut s = StateVec::<f64>::from_amplitudes(amps);
        Reference.apply_gates(&mut s, &gs);
        let phase = C64::from_polar(1.0, c.global_phase);
        for (i, a) in s.amplitudes().iter().enumerate() {
            data[i * dim + j] = a * phase;
        }
    }
    Matrix { dim, data }
}

/// The table gate `name` on `args` of an `n`-qubit register.
fn table(name: &str, params: &[f64], args: &[usize], n: usize) -> Matrix {
    gates::lookup(name)
        .expect("table gate")
        .matrix(params)
        .embed(args, n)
}

fn basis(n: u32, k: usize) -> Vec<C64> {
    let mut v = vec![C64::new(0.0, 0.0); 1 << n];
    v[k] = C64::new(1.0, 0.0);
    v
}

fn apply(m: &Matrix, v: &[C64]) -> Vec<C64> {
    (0..m.dim)
        .map(|r| (0..m.dim).map(|c| m.at(r, c) * v[c]).sum())
        .collect()
}

#[test]
fn bell_and_ghz_states() {
    let h = C64::new(FRAC_1_SQRT_2, 0.0);
    let mut bell = vec![C64::new(0.0, 0.0); 4];
    bell[0] = h;
    bell[3] = h;
    assert_state(&run(&valid("bell_oq2.qasm")), &bell, "bell oq2");
    assert_state(&run(&valid("bell_oq3.qasm")), &bell, "bell oq3");
    let mut ghz = vec![C64::new(0.0, 0.0); 16];
    ghz[0] = h;
    ghz[15] = h;
    assert_state(&run(&valid("ghz_oq3.qasm")), &ghz, "ghz");
}

#[test]
fn qft_of_a_basis_state_is_the_fourier_vector() {
    let (n, x) = (3u32, 5usize);
    let dim = 1usize << n;
    let want: Vec<C64> = (0..dim)
        .map(|k| {
            C64::from_polar(
                1.0 / (dim as f64).sqrt(),
                2.0 * PI * (x * k) as f64 / dim as f64,
            )
        })
        .collect();
    assert_state(&run(&valid("qft3_oq3.qasm")), &want, "qft |5>");
}

#[test]
fn qiskit_style_file_with_inputs_and_a_custom_gate() {
    let (theta, phi) = (0.7, -1.25);
    let c = valid("qiskit_dumps.qasm");
    let n = 3;
    let steps = [
        table("h", &[], &[0], n),
        table("rx", &[theta], &[0], n),
        table("cx", &[], &[0, 1], n),
        table("rz", &[phi], &[1], n),
        table("ry", &[theta / 2.0], &[2], n),
        table("cx", &[], &[1, 2], n),
    ];
    let mut want = basis(3, 0);
    for m in &steps {
        want = apply(m, &want);
    }
    assert_state(&run(&c), &want, "qiskit dumps");
    let measures = c.measurements();
    assert_eq!(measures, vec![(0, 0), (1, 1), (2, 2)]);
    // bit[3] c is declared before qubit[3] q: clbits and qubits number independently.
    assert_eq!(c.cregs[0].name, "c");
    assert_eq!(c.qregs[0].name, "q");
}

#[test]
fn physical_qubits_make_one_register() {
    let c = valid("physical_oq3.qasm");
    assert_eq!(c.qregs.len(), 1);
    assert_eq!(c.qregs[0].name, "$");
    assert_eq!(c.qregs[0].size, 4);
    let h = C64::new(FRAC_1_SQRT_2, 0.0);
    let mut want = vec![C64::new(0.0, 0.0); 16];
    want[0b0010] = h; // x on $1
    want[0b1011] = h; // $0 and $3 entangled
    assert_state(&run(&c), &want, "physical");
}

#[test]
fn conditions_on_bits_and_registers() {
    let c = valid("if_else_oq3.qasm");
    let ifs: Vec<&Op> = c
        .ops
        .iter()
        .filter(|o| matches!(o, Op::If { .. }))
        .collect();
    let shape = |o: &Op| match o {
        Op::If {
            cond,
            then_ops,
            else_ops,
        } => (
            cond.clbits.clone(),
            cond.value,
            then_ops.len(),
            else_ops.len(),
        ),
        _ => unreachable!(),
    };
    // if (c == 1) {x} else {z; y}
    assert_eq!(shape(ifs[0]), (vec![0, 1], 1, 1, 2));
    // if (c[0]) x  ==  if (c[0] == 0) {} else {x}
    assert_eq!(shape(ifs[1]), (vec![0], 0, 0, 1));
    // if (!c[0]) h
    assert_eq!(shape(ifs[2]), (vec![0], 0, 1, 0));
    // if (c[1] == 1) s else (if c != 2 ...)
    assert_eq!(shape(ifs[3]), (vec![1], 1, 1, 1));
    let Op::If { else_ops, .. } = ifs[3] else {
        unreachable!()
    };
    // c != 2 → c == 2 with the branches swapped: t in the else branch.
    assert_eq!(shape(&else_ops[0]), (vec![0, 1], 2, 0, 1));
}

#[test]
fn constants_loops_and_static_conditions() {
    let c = valid("const_for_oq3.qasm");
    let mut gs = Vec::new();
    all_gates(&c.ops, &mut gs);
    let summary: Vec<(String, Vec<f64>, Vec<u32>)> = gs
        .iter()
        .map(|g| (g.name.clone(), g.params.clone(), g.targets.clone()))
        .collect();
    let q = PI / 4.0;
    let want = vec![
        ("rx".to_string(), vec![0.0], vec![0]),
        ("rx".to_string(), vec![PI], vec![2]),
        ("ry".to_string(), vec![q], vec![0]),
        ("ry".to_string(), vec![q], vec![2]),
        ("h".to_string(), vec![], vec![1]),
        ("rz".to_string(), vec![2.0 * q], vec![2]),
        ("rz".to_string(), vec![q], vec![1]),
        ("rz".to_string(), vec![0.0], vec![0]),
    ];
    assert_eq!(summary.len(), want.len(), "{summary:?}");
    for (got, want) in summary.iter().zip(&want) {
        assert_eq!(got.0, want.0);
        assert_eq!(got.2, want.2);
        for (a, b) in got.1.iter().zip(&want.1) {
            assert!((a - b).abs() < 1e-12, "{got:?} vs {want:?}");
        }
    }
}

/// `(source body after the header, expected unitary)` on `n` qubits, each checked against a
/// matrix built from the table directly.
#[test]
fn modifiers_match_matrices_from_the_table() {
    let inc = "OPENQASM 3.0;\ninclude \"stdgates.inc\";\n";
    let th = 0.37;
    let id2 = Matrix::identity(2);
    let ctrl_on = |name: &str, p: &[f64], state: u64| -> Matrix {
        gates::lookup(name).unwrap().matrix(p).controlled(1, state)
    };
    let cases: Vec<(&str, u32, Matrix)> = vec![
        ("qubit[2] q; ctrl @ x q[0], q[1];", 2, table("cx", &[], &[0, 1], 2)),
        ("qubit[2] q; ctrl @ x q[1], q[0];", 2, table("cx", &[], &[1, 0], 2)),
        ("qubit[2] q; negctrl @ x q[0], q[1];", 2, ctrl_on("x", &[], 0)),
        ("qubit[2] q; ctrl @ rx(0.37) q[0], q[1];", 2, table("crx", &[th], &[0, 1], 2)),
        ("qubit[3] q; ctrl @ ctrl @ x q[0], q[1], q[2];", 3, table("ccx", &[], &[0, 1, 2], 3)),
        ("qubit[3] q; ctrl(2) @ x q[2], q[0], q[1];", 3, table("ccx", &[], &[2, 0, 1], 3)),
        ("qubit[3] q; ctrl @ cx q[0], q[1], q[2];", 3, table("ccx", &[], &[0, 1, 2], 3)),
        ("qubit[3] q; negctrl @ ctrl @ x q[0], q[1], q[2];", 3, {
            let cc = gates::lookup("x").unwrap().matrix(&[]).controlled(2, 0b10);
            cc.embed(&[0, 1, 2], 3)
        }),
        ("qubit q; inv @ s q;", 1, table("sdg", &[], &[0], 1)),
        ("qubit q; inv @ rx(0.37) q;", 1, table("rx", &[-th], &[0], 1)),
        ("qubit q; inv @ u3(0.1, 0.2, 0.3) q;", 1, table("u3", &[0.1, 0.2, 0.3], &[0], 1).adjoint()),
        ("qubit q; pow(2) @ s q;", 1, table("z", &[], &[0], 1)),
        ("qubit q; pow(-1) @ t q;", 1, table("tdg", &[], &[0], 1)),
        ("qubit q; pow(3) @ t q;", 1, table("p", &[3.0 * PI / 4.0], &[0], 1)),
        ("qubit q; pow(0) @ h q;", 1, id2.clone()),
        ("qubit q; pow(0.5) @ x q;", 1, table("sx", &[], &[0], 1)),
        ("qubit q; pow(0.5) @ z q;", 1, table("s", &[], &[0], 1)),
        ("qubit q; pow(0.25) @ z q;", 1, table("t", &[], &[0], 1)),
        ("qubit q; pow(0.5) @ rz(0.37) q;", 1, table("rz", &[th / 2.0], &[0], 1)),
        ("qubit[2] q; pow(0.5) @ ctrl @ x q[0], q[1];", 2, ctrl_on("sx", &[], 1)),
        ("qubit[2] q; ctrl @ pow(0.5) @ x q[0], q[1];", 2, ctrl_on("sx", &[], 1)),
        ("qubit[2] q; ctrl @ inv @ sx q[0], q[1];", 2, ctrl_on("sx", &[], 1).adjoint()),
        ("qubit q; gphase(0.37);", 1, id2.scale(C64::from_polar(1.0, th))),
        ("qubit[2] q; ctrl @ gphase(0.37) q[1];", 2, table("p", &[th], &[1], 2)),
        ("qubit[2] q; negctrl @ gphase(0.37) q[0];", 2, {
            Matrix::diagonal(&[C64::from_polar(1.0, th), C64::new(1.0, 0.0)]).embed(&[0], 2)
        }),
        ("qubit[2] q; ctrl @ U(0.1, 0.2, 0.3) q[0], q[1];", 2, table("cu3", &[0.1, 0.2, 0.3], &[0, 1], 2)),
        ("gate g(a) x { rx(a) x; gphase(a / 2); } qubit[2] q; ctrl @ g(0.37) q[0], q[1];", 2, {
            // e^{ia/2}·rx(a) under control: the gphase becomes a phase on the control.
            let m = gates::lookup("rx").unwrap().matrix(&[th]).scale(C64::from_polar(1.0, th / 2.0));
            m.controlled(1, 1)
        }),
        ("gate g(a, b) x, y { rz(a) x; cx x, y; ry(b) y; } qubit[2] q; inv @ g(0.37, -0.5) q[0], q[1];", 2, {
            table("rz", &[th], &[0], 2)
                .adjoint()
                .mul(&table("cx", &[], &[0, 1], 2))
                .mul(&table("ry", &[0.5], &[1], 2))
        }),
        ("qubit[3] q; ctrl @ negctrl @ gphase(0.37) q[0], q[1];", 3, {
            // e^{iθ} when q[0] = 1 and q[1] = 0.
            let d: Vec<C64> = (0..8)
                .map(|i| if i & 0b11 == 0b01 { C64::from_polar(1.0, th) } else { C64::new(1.0, 0.0) })
                .collect();
            Matrix::diagonal(&d)
        }),
        ("qubit[3] q; negctrl @ ctrl @ pow(0.5) @ x q[0], q[1], q[2];", 3, {
            let m = gates::lookup("sx").unwrap().matrix(&[]).controlled(2, 0b10);
            m.embed(&[0, 1, 2], 3)
        }),
    ];
    for (body, n, want) in cases {
        let src = format!("{inc}{body}");
        let c = parse_str(&src).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(c.num_qubits, n, "{body}");
        let got = unitary(&c);
        let d = got.max_diff(&want);
        assert!(
            d < 1e-9,
            "{body}: differs by {d}\n got {got:?}\nwant {want:?}"
        );
    }
}

#[test]
fn non_integer_powers_are_roots() {
    // (g^{1/k})^k = g for user gates and table gates on one qubit, as U gates with a global phase.
    let inc =
        "OPENQASM 3.0;\ninclude \"stdgates.inc\";\ngate g x { h x; t x; ry(0.3) x; }\nqubit q;\n";
    for (call, k) in [
        ("g q;", 2),
        ("g q;", 3),
        ("h q;", 3),
        ("rx(2.5) q;", 4),
        ("sx q;", 2),
        ("y q;", 5),
    ] {
        let base = unitary(&parse_str(&format!("{inc}{call}")).unwrap());
        let root = parse_str(&format!("{inc}pow(1.0 / {k}) @ {call}")).unwrap();
        let Op::Gate(g) = &root.ops[0] else { panic!() };
        assert_eq!(g.name, "U", "{call}");
        let r = unitary(&root);
        let mut acc = Matrix::identity(2);
        for _ in 0..k {
            acc = acc.mul(&r);
        }
        let d = acc.max_diff(&base);
        assert!(
            d < 1e-9,
            "pow(1/{k}) @ {call}: the {k}th power differs by {d}"
        );
    }
}

#[test]
fn modifier_order_is_documented_order() {
    // ctrl @ negctrl @ x a, b, t: controls [a, b] with states (1, 0), target t.
    let src = "OPENQASM 3.0;\ninclude \"stdgates.inc\";\nqubit[3] q;\nctrl @ negctrl @ x q[2], q[0], q[1];\n";
    let c = parse_str(src).unwrap();
    let Op::Gate(g) = &c.ops[0] else { panic!() };
    assert_eq!(g.name, "x");
    assert_eq!(g.controls, vec![2, 0]);
    assert_eq!(g.targets, vec![1]);
    assert_eq!(g.ctrl_state, 0b01);
    // A table gate's own control comes after the modifier's.
    let c = parse_str(
        "OPENQASM 3.0;\ninclude \"stdgates.inc\";\nqubit[3] q;\nnegctrl @ cx q[0], q[1], q[2];\n",
    )
    .unwrap();
    let Op::Gate(g) = &c.ops[0] else { panic!() };
    assert_eq!(
        (g.name.as_str(), g.controls.clone(), g.ctrl_state),
        ("cx", vec![0, 1], 0b10)
    );
}

#[test]
fn oq2_and_oq3_forms_lower_to_the_same_circuit() {
    for (a, b) in [
        ("bell_oq2.qasm", "bell_oq3.qasm"),
        ("pair_oq2.qasm", "pair_oq3.qasm"),
    ] {
        let (x, y) = (valid(a), valid(b));
        assert_eq!(x.num_qubits, y.num_qubits, "{a} vs {b}");
        assert_eq!(x.num_clbits, y.num_clbits, "{a} vs {b}");
        assert_eq!(x.ops, y.ops, "{a} vs {b}");
    }
}

#[test]
fn broadcast_over_registers() {
    let c = parse_str("OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg a[3];\nqreg b[3];\ncreg c[3];\nh a;\ncx a, b;\ncx a[0], b;\nmeasure b -> c;\nbarrier a, b[1];\nreset a;\n").unwrap();
    let mut gs = Vec::new();
    all_gates(&c.ops, &mut gs);
    let pairs: Vec<(Vec<u32>, Vec<u32>)> = gs
        .iter()
        .map(|g| (g.controls.clone(), g.targets.clone()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            (vec![], vec![0]),
            (vec![], vec![1]),
            (vec![], vec![2]),
            (vec![0], vec![3]),
            (vec![1], vec![4]),
            (vec![2], vec![5]),
            (vec![0], vec![3]),
            (vec![0], vec![4]),
            (vec![0], vec![5]),
        ]
    );
    let rest: Vec<&Op> = c.ops.iter().filter(|o| !matches!(o, Op::Gate(_))).collect();
    assert_eq!(rest.len(), 3 + 1 + 3);
    assert_eq!(
        rest[3],
        &Op::Barrier {
            qubits: vec![0, 1, 2, 4]
        }
    );
}

#[test]
fn oq2_if_conditions_on_the_whole_register() {
    let c = valid("qasmbench_style.qasm");
    let cond = c
        .ops
        .iter()
        .find_map(|o| match o {
            Op::If { cond, .. } => Some(cond.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(cond.clbits, vec![0, 1, 2, 3, 4]);
    assert_eq!(cond.value, 3);
}

#[test]
fn qasmbench_style_user_gates_expand_to_table_gates() {
    let c = valid("qasmbench_style.qasm");
    let names: Vec<String> = c
        .ops
        .iter()
        .filter_map(|o| match o {
            Op::Gate(g) => Some(g.name.clone()),
            _ => None,
        })
        .collect();
    // majority → cx, cx, ccx; rot → u3, u1
    let at = names.iter().position(|n| n == "cswap").unwrap();
    assert_eq!(&names[at + 1..at + 6], ["cx", "cx", "ccx", "u3", "u1"]);
    let Some(Op::Gate(u3)) = c
        .ops
        .iter()
        .find(|o| matches!(o, Op::Gate(g) if g.name == "u3" && g.targets == [3]))
    else {
        panic!("no u3 on q[3]")
    };
    assert_eq!(u3.params, vec![0.4, 0.5f64.cos(), -(0.5f64.cos())]);
}

#[test]
fn input_parameters_are_checked() {
    let src =
        "OPENQASM 3.0;\ninclude \"stdgates.inc\";\ninput float theta;\nqubit q;\nrx(theta) q;\n";
    let p = vec![("theta".to_string(), 0.5)];
    let c = qasm::parse(
        src,
        "in.qasm",
        &Options {
            params: &p,
            include: None,
        },
    )
    .unwrap();
    let Op::Gate(g) = &c.ops[0] else { panic!() };
    assert_eq!(g.params, vec![0.5]);
    let e = parse_str(src).unwrap_err();
    assert_eq!(e.kind, QasmErrorKind::Param);
    assert!(
        e.hint.as_deref().unwrap().contains("--param theta=VALUE"),
        "{e}"
    );
    let extra = vec![("theta".to_string(), 0.5), ("phi".to_string(), 1.0)];
    let e = qasm::parse(
        src,
        "in.qasm",
        &Options {
            params: &extra,
            include: None,
        },
    )
    .unwrap_err();
    assert_eq!(e.kind, QasmErrorKind::Param);
    assert!(e.message.contains("'phi'"), "{e}");
    assert!(e.hint.as_deref().unwrap().contains("theta"), "{e}");
}

#[test]
fn errors_in_included_files_point_into_them() {
    let src = "OPENQASM 2.0;\ninclude \"qelib1.inc\";\ninclude \"broken.inc\";\nqreg q[1];\n";
    let resolver = include_resolver;
    let e = qasm::parse(
        src,
        "main.qasm",
        &Options {
            params: &[],
            include: Some(&resolver),
        },
    )
    .unwrap_err();
    assert_eq!(
        (e.origin.as_str(), e.line, e.column),
        ("broken.inc", 2, 18),
        "{e}"
    );
    assert!(e.message.contains("expected ';'"), "{e}");
    let e = qasm::parse(
        "OPENQASM 2.0;\ninclude \"missing.inc\";\n",
        "main.qasm",
        &Options {
            params: &[],
            include: Some(&resolver),
        },
    )
    .unwrap_err();
    assert_eq!(
        (e.kind, e.line, e.column),
        (QasmErrorKind::Include, 2, 9),
        "{e}"
    );
    // An include that includes itself hits the depth limit instead of looping.
    let selfish = |_: &str| Ok::<_, String>("include \"self.inc\";\n".to_string());
    let e = qasm::parse(
        "include \"self.inc\";\n",
        "main.qasm",
        &Options {
            params: &[],
            include: Some(&selfish),
        },
    )
    .unwrap_err();
    assert_eq!(e.kind, QasmErrorKind::Limit, "{e}");
    assert_eq!(e.origin, "self.inc");
}

#[test]
fn hints_and_display() {
    let e = parse_str("OPENQASM 2.0;\nqreg q[1];\nh q[0];\n").unwrap_err();
    assert!(
        e.hint
            .as_deref()
            .unwrap()
            .contains("include \"qelib1.inc\""),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "test.qasm:3:1: unknown gate 'h'\n  hint: {}",
            e.hint.clone().unwrap()
        )
    );
    let e = parse_str("OPENQASM 3.0;\nqubit q;\nh q;\n").unwrap_err();
    assert!(e.hint.as_deref().unwrap().contains("stdgates.inc"), "{e}");
    // The form docs/q.md shows: the error is at the next statement, the hint says what to add.
    let e =
        parse_str("OPENQASM 2.0;\nqreg q[1];\nU(0, 0, 0) q[0]\nU(0, 0, 0) q[0];\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "test.qasm:4:1: expected ';' after the statement, found 'U'\n  hint: end the previous statement with ';'"
    );
}

#[test]
fn deep_nesting_is_a_limit_not_a_crash() {
    let deep = format!(
        "OPENQASM 2.0;\nqreg q[1];\nU({}0{}, 0, 0) q[0];\n",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    assert_eq!(parse_str(&deep).unwrap_err().kind, QasmErrorKind::Limit);
    let minus = format!(
        "OPENQASM 2.0;\nqreg q[1];\nU({}1, 0, 0) q[0];\n",
        "-".repeat(100_000)
    );
    assert_eq!(parse_str(&minus).unwrap_err().kind, QasmErrorKind::Limit);
    let blocks = format!(
        "OPENQASM 3.0;\n{}{}",
        "{".repeat(100_000),
        "}".repeat(100_000)
    );
    assert_eq!(parse_str(&blocks).unwrap_err().kind, QasmErrorKind::Limit);
    // Gates nesting deeper than the limit.
    let mut src = String::from("OPENQASM 3.0;\ngate g0 a { U(0, 0, 0) a; }\n");
    for i in 1..=70 {
        src.push_str(&format!("gate g{i} a {{ g{} a; }}\n", i - 1));
    }
    src.push_str("qubit q;\ng70 q;\n");
    assert_eq!(parse_str(&src).unwrap_err().kind, QasmErrorKind::Limit);
}

#[test]
fn numbers_and_expressions() {
    let cases: &[(&str, f64)] = &[
        ("pi", PI),
        ("1.5e-1", 0.15),
        ("2^3^2", 512.0),
        ("-2^2", -4.0),
        ("(1+2)*3", 9.0),
        ("1/2", 0.5),
        ("sin(pi/2)+cos(0)", 2.0),
        ("exp(ln(3))", 3.0),
        ("sqrt(16)-tan(0)", 4.0),
        (".5", 0.5),
        ("3.", 3.0),
        ("-(-1)", 1.0),
    ];
    for (e, want) in cases {
        let src = format!("OPENQASM 2.0;\nqreg q[1];\nU({e}, 0, 0) q[0];\n");
        let c = parse_str(&src).unwrap_or_else(|err| panic!("{e}: {err}"));
        let Op::Gate(g) = &c.ops[0] else { panic!() };
        assert!((g.params[0] - want).abs() < 1e-12, "{e} = {}", g.params[0]);
    }
    let cases3: &[(&str, f64)] = &[
        ("2**3**2", 512.0),
        ("7/2", 3.0),
        ("7.0/2", 3.5),
        ("0b101 + 0x10", 21.0),
        ("5 ^ 1", 4.0),
        ("1 << 4", 16.0),
        ("7 % 4", 3.0),
        ("asin(1) * 2", PI),
        ("arccos(1)", 0.0),
        ("tau / 2", PI),
        ("1_000", 1000.0),
    ];
    for (e, want) in cases3 {
        let src = format!("OPENQASM 3.0;\nqubit q;\nU({e}, 0, 0) q;\n");
        let c = parse_str(&src).unwrap_or_else(|err| panic!("{e}: {err}"));
        let Op::Gate(g) = &c.ops[0] else { panic!() };
        assert!((g.params[0] - want).abs() < 1e-12, "{e} = {}", g.params[0]);
    }
}

// ---- inputs that once panicked, hung or exhausted memory ----

/// Sources that must be refused with an error of the given kind, quickly and without a panic or
/// a stack overflow (each ran into one before its limit existed).
#[test]
fn resource_bombs_are_limits_not_crashes() {
    let mut doubling = String::from("OPENQASM 3.0;\ngate g0 a { }\n");
    for i in 1..=63 {
        doubling.push_str(&format!("gate g{i} a {{ g{} a; g{} a; }}\n", i - 1, i - 1));
    }
    doubling.push_str("qubit q;\ng63 q;\n");
    let mut pow_nest =
        String::from("OPENQASM 3.0;\ngate e a { }\ngate p0 a { pow(9000000) @ e a; }\n");
    for i in 1..=30 {
        pow_nest.push_str(&format!("gate p{i} a {{ p{} a; p{} a; }}\n", i - 1, i - 1));
    }
    pow_nest.push_str("qubit q;\np30 q;\n");
    let cases: Vec<(&str, String, QasmErrorKind)> = vec![
        (
            // A flat chain of operators built a left-deep tree that evaluation recursed through.
            "long operator chain",
            format!(
                "OPENQASM 2.0;\nqreg q[1];\nU(0{}, 0, 0) q[0];\n",
                "+1".repeat(200_000)
            ),
            QasmErrorKind::Limit,
        ),
        (
            // Gates whose bodies emit nothing were expanded 2^63 times.
            "doubling empty gates",
            doubling,
            QasmErrorKind::Limit,
        ),
        (
            "pow of an empty gate, nested",
            pow_nest,
            QasmErrorKind::Limit,
        ),
        (
            // Each barrier over a million qubits is a million-element list.
            "barriers over a huge register",
            "OPENQASM 3.0;\nqubit[1000000] q;\nfor int i in [0:20] { barrier q; }\n".into(),
            QasmErrorKind::Limit,
        ),
    ];
    for (what, src, kind) in cases {
        match parse_str(&src) {
            Ok(c) => panic!("{what}: accepted ({} ops)", c.ops.len()),
            Err(e) => assert_eq!(e.kind, kind, "{what}: {e}"),
        }
    }
    // A range whose last `start + k·step` overflowed i64 in the multiplication (a panic): its
    // elements are the closed form, i = −(2^63 − 1) + k·2^62 for k = 0..=3.
    let c = parse_str(
        "OPENQASM 3.0;\ninclude \"stdgates.inc\";\nqubit q;\nfor int i in [-9223372036854775807:4611686018427387904:9223372036854775807] { rz(i / 4611686018427387904) q; }\n",
    )
    .unwrap();
    let ks: Vec<f64> = c
        .ops
        .iter()
        .map(|o| match o {
            Op::Gate(g) => g.params[0],
            _ => f64::NAN,
        })
        .collect();
    let (start, step) = (-(1i128 << 63) + 1, 1i128 << 62);
    let want: Vec<f64> = (0..4)
        .map(|k| ((start + k * step) / step) as f64) // integer division truncates toward zero
        .collect();
    assert_eq!(ks, want);
    // A sum of many terms within the limit still evaluates.
    let src = format!(
        "OPENQASM 2.0;\nqreg q[1];\nU(0{}, 0, 0) q[0];\n",
        "+1".repeat(500)
    );
    let Op::Gate(g) = &parse_str(&src).unwrap().ops[0] else {
        panic!()
    };
    assert_eq!(g.params[0], 500.0);
}

/// A typed loop variable has its declared type: `for float x in {1, 2, 3}` makes `x / 2` a real
/// division, as for a `const float`.
#[test]
fn loop_variables_take_their_declared_type() {
    let check = |decl: &str, want: &[f64]| {
        let src = format!(
            "OPENQASM 3.0;\ninclude \"stdgates.inc\";\nqubit q;\nfor {decl} in {{1, 2, 3}} {{ rx(x / 2) q; }}\n"
        );
        let c = parse_str(&src).unwrap_or_else(|e| panic!("{decl}: {e}"));
        let got: Vec<f64> = c
            .ops
            .iter()
            .filter_map(|o| match o {
                Op::Gate(g) => Some(g.params[0]),
                _ => None,
            })
            .collect();
        assert_eq!(got, want, "{decl}");
    };
    check("float x", &[0.5, 1.0, 1.5]);
    check("float[64] x", &[0.5, 1.0, 1.5]);
    check("angle x", &[0.5, 1.0, 1.5]);
    check("int x", &[0.0, 1.0, 1.0]);
    check("x", &[0.0, 1.0, 1.0]);
    let e = parse_str("OPENQASM 3.0;\nfor uint i in {-1} { }\n").unwrap_err();
    assert_eq!(e.kind, QasmErrorKind::Type, "{e}");
    assert_eq!((e.line, e.column), (2, 16), "{e}");
}

/// One qubit measured into a one-bit register (and the reverse) is a measurement of matching
/// sizes, as Qiskit and the OpenQASM 3 grammar read it.
#[test]
fn single_qubit_and_one_bit_registers_measure_into_each_other() {
    for src in [
        "OPENQASM 3.0;\nqubit q;\nbit[1] c;\nc = measure q;\n",
        "OPENQASM 3.0;\nqubit[1] q;\nbit c;\nc = measure q;\n",
        "OPENQASM 2.0;\nqreg q[1];\ncreg c[1];\nmeasure q[0] -> c;\n",
    ] {
        let c = parse_str(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(c.ops, vec![Op::Measure { qubit: 0, clbit: 0 }], "{src}");
    }
}

// ---- never panic ----

const VOCAB: &[&str] = &[
    "OPENQASM 2.0;",
    "OPENQASM 3;",
    "include \"qelib1.inc\";",
    "include \"stdgates.inc\";",
    "qreg",
    "creg",
    "qubit",
    "bit",
    "q",
    "c",
    "[",
    "]",
    "(",
    ")",
    "{",
    "}",
    ";",
    ",",
    ":",
    "->",
    "=",
    "==",
    "!=",
    "!",
    "@",
    "ctrl",
    "negctrl",
    "inv",
    "pow",
    "gate",
    "measure",
    "reset",
    "barrier",
    "if",
    "else",
    "for",
    "int",
    "in",
    "const",
    "input",
    "float",
    "angle",
    "h",
    "cx",
    "x",
    "rx",
    "U",
    "CX",
    "gphase",
    "pi",
    "0",
    "1",
    "2",
    "3",
    "-1",
    "0.5",
    "1e9",
    "99999999999",
    "+",
    "-",
    "*",
    "/",
    "^",
    "**",
    "$0",
    "$1",
    "sin",
    "\"",
    "/*",
    "*/",
    "//",
    "\n",
    " ",
    "é",
    "opaque",
    "def",
    "while",
];

fn mutate(src: &str, edits: &[(usize, u8, u8)]) -> String {
    let mut chars: Vec<char> = src.chars().collect();
    for &(at, op, byte) in edits {
        if chars.is_empty() {
            break;
        }
        let i = at % chars.len();
        let ch = char::from(
            b" ;[](){}0123456789q,-=>@$\"/*"
                .get(byte as usize % 29)
                .copied()
                .unwrap_or(b' '),
        );
        match op % 3 {
            0 => {
                chars.remove(i);
            }
            1 => chars.insert(i, ch),
            _ => chars[i] = ch,
        }
    }
    chars.into_iter().collect()
}

fn corpus_texts() -> Vec<String> {
    files("valid")
        .into_iter()
        .chain(files("invalid"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

fn parse_any(src: &str) {
    let resolver = |name: &str| -> Result<String, String> {
        if name == "loop.inc" {
            Ok("include \"loop.inc\";".into())
        } else {
            Err("not found".into())
        }
    };
    let params = vec![("theta".to_string(), 0.5)];
    let _ = qasm::parse(
        src,
        "fuzz.qasm",
        &Options {
            params: &params,
            include: Some(&resolver),
        },
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        parse_any(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn token_soup_never_panics(toks in proptest::collection::vec(0..VOCAB.len(), 0..80)) {
        let src: Vec<&str> = toks.iter().map(|&i| VOCAB[i]).collect();
        parse_any(&src.join(" "));
    }

    #[test]
    fn mutated_corpus_never_panics(
        which in 0usize..64,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
    ) {
        let texts = corpus_texts();
        let src = &texts[which % texts.len()];
        parse_any(&mutate(src, &edits));
    }
}
