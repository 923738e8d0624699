//! The device model: parsing, validation with file:line:column, and circuit checks.

use xdv_q::circuit::{Circuit, Gate, Op, Register};
use xdv_q::device::{Device, DeviceCheckError, DeviceError, EXAMPLE_TOML};

fn g(name: &str, params: &[f64], qubits: &[u32]) -> Op {
    Op::Gate(Gate::table(name, params, qubits).expect("a table gate"))
}

fn circuit(n: u32, ops: Vec<Op>) -> Circuit {
    Circuit {
        num_qubits: n,
        num_clbits: 0,
        qregs: vec![Register {
            name: "q".into(),
            offset: 0,
            size: n,
        }],
        cregs: vec![],
        ops,
        global_phase: 0.0,
    }
}

fn devices_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/devices")
}

#[test]
fn the_example_device_reads_as_written() {
    let d = Device::example();
    assert_eq!(d.name(), "line5");
    assert_eq!(d.qubits(), 5);
    assert!(d.coupled(0, 1) && d.coupled(1, 0) && !d.coupled(0, 2));
    assert_eq!(d.neighbours(1), vec![0, 2]);
    let gate = |name: &str, qs: &[u32]| {
        let params = vec![0.1; xdv_q::gates::lookup(name).expect("a table gate").params];
        Gate::table(name, &params, qs).expect("a table gate")
    };
    assert_eq!(d.gate_error(&gate("rz", &[2])), 0.0, "by_name wins");
    assert_eq!(
        d.gate_error(&gate("sx", &[2])),
        4.0e-4,
        "per-qubit override"
    );
    assert_eq!(d.gate_error(&gate("sx", &[1])), 2.5e-4);
    assert_eq!(
        d.gate_error(&gate("cx", &[4, 3])),
        1.1e-2,
        "per-pair, undirected"
    );
    assert_eq!(d.gate_error(&gate("cx", &[0, 1])), 7.5e-3);
    assert_eq!(d.gate_duration_ns(&gate("cx", &[3, 4])), 400.0);
    assert_eq!(d.gate_duration_ns(&gate("cx", &[1, 2])), 320.0);
    assert_eq!(d.gate_duration_ns(&gate("rz", &[1])), 0.0);
    assert_eq!(d.measure_duration_ns(), 1400.0);
    assert_eq!(d.reset_duration_ns(), 1400.0, "reset defaults to measure");
    assert_eq!(d.readout(2), (0.02, 0.03));
    assert_eq!(d.readout(0), (0.010, 0.016));
    assert_eq!(d.t1_ns(2), 110_000.0);
    assert_eq!(d.t2_ns(0), 140_000.0);
    let tphi = 1.0 / (1.0 / 140_000.0 - 1.0 / 440_000.0);
    assert!((d.tphi_ns(0) / tphi - 1.0).abs() < 1e-12);
    assert!(!d.is_noiseless());
    assert!(EXAMPLE_TOML.contains("line5"));
    assert!(Device::ideal(3).is_noiseless() && Device::ideal(3).coupled(0, 2));
}

#[test]
fn device_files_load_from_disk() {
    let d = Device::load(&devices_dir().join("grid.toml")).unwrap();
    assert_eq!((d.name(), d.qubits()), ("grid", 6));
    assert_eq!(d.neighbours(4), vec![1, 3, 5]);
    assert_eq!(d.readout(5), (0.02, 0.02));
    let e = Device::load(&devices_dir().join("missing.toml")).unwrap_err();
    assert!(matches!(e, DeviceError::Read { .. }), "{e}");
}

const BASE: &str = "name = \"t\"\nqubits = 3\ncoupling = [[0, 1], [1, 2]]\n";

/// check(device text, expected line, column, key, substring of the message).
fn check_err(text: &str, line: usize, column: usize, key: &str, needle: &str) {
    let e = Device::from_toml(text, "dev.toml").unwrap_err();
    let msg = e.to_string();
    let (l, c, k) = match &e {
        DeviceError::Parse {
            line, column, key, ..
        } => (*line, *column, key.clone().unwrap_or_default()),
        DeviceError::Invalid {
            line, column, key, ..
        } => (*line, *column, key.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!((l, c), (line, column), "{msg}");
    assert_eq!(k, key, "{msg}");
    assert!(
        msg.starts_with(&format!("dev.toml:{line}:{column}: ")),
        "{msg}"
    );
    assert!(msg.contains(needle), "{msg} lacks {needle:?}");
}

#[test]
fn bad_device_files_name_file_line_column_and_key() {
    let cases: Vec<(String, usize, usize, &str, &str)> = vec![
        (
            format!("{BASE}qubitz = 5\n"),
            4,
            1,
            "qubitz",
            "unknown field",
        ),
        (
            format!("{BASE}[gate_error]\none_qubit = 1.5\n"),
            5,
            13,
            "gate_error.one_qubit",
            "not a probability",
        ),
        (
            format!("{BASE}[gate_error]\nthree_qubit = 0.1\n"),
            5,
            1,
            "three_qubit",
            "unknown field",
        ),
        (
            format!("{BASE}[readout]\np01 = -0.1\n"),
            5,
            7,
            "readout.p01",
            "not a probability",
        ),
        (
            format!("{BASE}[readout]\nerror = 0.1\np01 = 0.1\n"),
            5,
            9,
            "readout.error",
            "both",
        ),
        (
            format!("{BASE}[coherence]\nt1_us = 10\nt2_us = 30\n"),
            6,
            9,
            "qubit[0].t2",
            "exceeds 2·T1",
        ),
        (
            format!("{BASE}[coherence]\nt1_us = 0\n"),
            5,
            9,
            "coherence.t1_us",
            "not a coherence time",
        ),
        (
            format!("{BASE}[coherence]\nt1_us = 10\nt1_ns = 10\n"),
            5,
            9,
            "coherence.t1_us",
            "both",
        ),
        (
            format!("{BASE}[duration_ns]\nmeasure = -5\n"),
            5,
            11,
            "duration_ns.measure",
            "not a duration",
        ),
        (
            format!("{BASE}native_gates = [\"cx\", \"frob\"]\n"),
            4,
            23,
            "native_gates",
            "`frob` is not a gate",
        ),
        (
            format!("{BASE}[[qubit]]\nindex = 7\n"),
            5,
            9,
            "qubit.index",
            "does not exist",
        ),
        (
            format!("{BASE}[[pair]]\nqubits = [0, 2]\n"),
            5,
            10,
            "pair.qubits",
            "not a coupled pair",
        ),
        (
            "name = \"t\"\nqubits = 3\ncoupling = [[0, 5]]\n".into(),
            3,
            13,
            "coupling",
            "does not exist",
        ),
        (
            "name = \"t\"\nqubits = 3\ncoupling = [[1, 1]]\n".into(),
            3,
            13,
            "coupling",
            "itself",
        ),
        (
            "name = \"t\"\nqubits = 3\ncoupling = [[0, 1, 2]]\n".into(),
            3,
            13,
            "coupling",
            "length",
        ),
        (
            "name = \"t\"\nqubits = 3\n".into(),
            2,
            10,
            "coupling",
            "no coupling map",
        ),
        (
            "name = \"t\"\nqubits = 3\nall_to_all = true\ncoupling = []\n".into(),
            4,
            12,
            "coupling",
            "both",
        ),
        (
            "name = \"t\"\nqubits = \"five\"\n".into(),
            2,
            10,
            "qubits",
            "invalid type",
        ),
        (
            "name = \"t\"\nqubits = -2\n".into(),
            2,
            10,
            "qubits",
            "invalid value",
        ),
        (
            "name = \"t\"\nqubits = 0\nall_to_all = true\n".into(),
            2,
            10,
            "qubits",
            "1 to",
        ),
        (
            "name = \"t\"\nqubits = 2\nall_to_all = true\n[readout\n".into(),
            4,
            9,
            "readout",
            "",
        ),
    ];
    for (text, line, column, key, needle) in cases {
        check_err(&text, line, column, key, needle);
    }
}

#[test]
fn valid_variants_parse() {
    let d = Device::from_toml("name = \"a\"\nqubits = 4\nall_to_all = true\nnative_gates = [\"*\"]\n[coherence]\nt1_ns = 5000\n", "a.toml").unwrap();
    assert!(d.is_all_to_all() && d.coupled(0, 3) && d.native_gates().is_none());
    assert_eq!(d.t1_ns(1), 5000.0);
    assert_eq!(
        d.t2_ns(1),
        f64::INFINITY,
        "T2 omitted: no pure dephasing (T_φ = ∞)"
    );
    assert_eq!(d.tphi_ns(1), f64::INFINITY);
    let one = Device::from_toml("name = \"one\"\nqubits = 1\n", "one.toml").unwrap();
    assert_eq!(one.qubits(), 1);
}

#[test]
fn circuits_are_checked_against_the_coupling_map_and_native_set() {
    let grid = Device::load(&devices_dir().join("grid.toml")).unwrap();
    let e = grid
        .check(&circuit(
            6,
            vec![
                g("h", &[], &[0]),
                g("cx", &[], &[0, 1]),
                g("cx", &[], &[0, 4]),
            ],
        ))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cx q[0], q[4] (op 2): qubits 0 and 4 are not coupled on device 'grid'; couplings of 0: 1, 3; route the circuit (insert swaps) or choose coupled qubits"
    );
    assert!(matches!(e, DeviceCheckError::NotCoupled { a: 0, b: 4, .. }));
    assert!(
        grid.check(&circuit(
            6,
            vec![g("cx", &[], &[4, 1]), g("ccx", &[], &[0, 1, 4])]
        ))
        .is_err(),
        "ccx needs 0–4"
    );
    assert!(grid
        .check(&circuit(
            6,
            vec![g("cx", &[], &[5, 2]), g("swap", &[], &[3, 4])]
        ))
        .is_ok());

    let line = Device::example();
    let e = line
        .check(&circuit(5, vec![g("sx", &[], &[0]), g("h", &[], &[1])]))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "h q[1] (op 1): `h` is not a native gate of device 'line5' (native: cx, id, rz, sx, x); decompose it into native gates first"
    );
    let e = line
        .check(&circuit(5, vec![g("cx", &[], &[0, 3])]))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("qubits 0 and 3 are not coupled on device 'line5'; couplings of 0: 1;"),
        "{e}"
    );
    let e = line.check(&circuit(6, vec![])).unwrap_err();
    assert_eq!(
        e,
        DeviceCheckError::TooManyQubits {
            circuit: 6,
            available: 5,
            device: "line5".into()
        }
    );
    // A controlled gate that is not the table gate of that arity is not native.
    let mut cx_ctrl = match g("x", &[], &[2]) {
        Op::Gate(x) => x,
        _ => unreachable!(),
    };
    cx_ctrl.controls = vec![1];
    cx_ctrl.ctrl_state = 1;
    let e = line
        .check(&circuit(5, vec![Op::Gate(cx_ctrl)]))
        .unwrap_err();
    assert!(e.to_string().contains("`ctrl(1) @ x`"), "{e}");
    // Gates inside conditionals are checked, and named by their position.
    let c = Circuit {
        num_clbits: 1,
        ..circuit(
            5,
            vec![Op::If {
                cond: xdv_q::Condition {
                    clbits: vec![0],
                    value: 1,
                },
                then_ops: vec![g("cx", &[], &[1, 4])],
                else_ops: vec![],
            }],
        )
    };
    assert!(line
        .check(&c)
        .unwrap_err()
        .to_string()
        .contains("(op 0, then-branch op 0)"));
    assert!(Device::ideal(5)
        .check(&circuit(5, vec![g("ccx", &[], &[0, 2, 4])]))
        .is_ok());
}
