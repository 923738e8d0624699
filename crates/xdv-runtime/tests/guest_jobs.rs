//! A guest's Q jobs as a provider runs them: on the ideal simulator, and routed onto the VHM's
//! partition of a device, where the answers must not change when the device adds no noise.

use serde_json::Value;
use xdv_runtime::provider::{run_guest_q, GuestQJob};

/// A noiseless line of six qubits with a native gate set: circuits are routed and translated.
const LINE6: &str = r#"
name = "line6"
qubits = 6
coupling = [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]]
native_gates = ["rz", "sx", "x", "cx"]
"#;

/// A noiseless star: qubit 3 at the centre. Logical qubits 0, 1, 2 land on the tips, so a CX
/// between two of them is routed through the centre, a qubit the circuit does not have.
const STAR4: &str = r#"
name = "star4"
qubits = 4
coupling = [[0, 3], [1, 3], [2, 3]]
native_gates = ["rz", "sx", "x", "cx"]
"#;

/// Qubit 0 flipped, then CX onto qubit 2 (not adjacent to it on a line): ⟨Z0⟩ = ⟨Z2⟩ = −1.
const QASM: &str = "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[3];\nx q[0];\ncx q[0], q[2];\n";

fn job(request: Value, physical: Vec<u32>) -> GuestQJob {
    GuestQJob {
        request: serde_json::to_vec(&request).expect("json"),
        seed: 7,
        limits: xdv_k::Limits::default(),
        physical,
        parsed: None,
    }
}

fn device() -> xdv_q::device::Device {
    xdv_q::device::Device::from_toml(LINE6, "line6.toml").expect("device")
}

#[test]
fn an_observable_reads_the_logical_qubits_when_routing_borrows_a_qubit_the_circuit_lacks() {
    let star = xdv_q::device::Device::from_toml(STAR4, "star4.toml").expect("device");
    for (observable, expected) in [("IIZ", -1.0), ("ZII", -1.0), ("IZI", 1.0), ("ZIZ", 1.0)] {
        let req = serde_json::json!({"qasm": QASM, "observable": observable});
        let routed = run_guest_q(&job(req, vec![0, 1, 2, 3]), Some(&star));
        assert_eq!(routed["ok"], Value::Bool(true), "{observable}: {routed}");
        assert_eq!(routed["qubits"], 4, "{routed}");
        let r = routed["expectation"].as_f64().expect("expectation");
        assert!((r - expected).abs() < 1e-6, "{observable}: {r}");
    }
}

#[test]
fn an_exact_expectation_is_the_same_on_the_ideal_simulator_and_routed_on_a_partition() {
    let d = device();
    for (observable, expected) in [("IIZ", -1.0), ("ZII", -1.0), ("IZI", 1.0), ("ZIZ", 1.0)] {
        let req = serde_json::json!({"qasm": QASM, "observable": observable});
        let ideal = run_guest_q(&job(req.clone(), vec![0, 1, 2]), None);
        assert_eq!(ideal["ok"], Value::Bool(true), "{ideal}");
        let e = ideal["expectation"].as_f64().expect("expectation");
        assert!((e - expected).abs() < 1e-9, "{observable}: {e}");
        // The upper half of the line, and the whole line.
        for physical in [vec![3, 4, 5], vec![0, 1, 2, 3, 4, 5]] {
            let routed = run_guest_q(&job(req.clone(), physical.clone()), Some(&d));
            assert_eq!(routed["ok"], Value::Bool(true), "{routed}");
            let r = routed["expectation"].as_f64().expect("expectation");
            assert!(
                (r - e).abs() < 1e-6,
                "{observable} on {physical:?}: {r} against {e}"
            );
        }
    }
}

#[test]
fn sampling_routed_on_a_partition_gives_the_ideal_counts() {
    let d = device();
    let qasm = format!("{QASM}creg c[3];\nmeasure q -> c;\n");
    let req = serde_json::json!({"qasm": qasm, "shots": 100});
    let ideal = run_guest_q(&job(req.clone(), vec![0, 1, 2]), None);
    let routed = run_guest_q(&job(req, vec![3, 4, 5]), Some(&d));
    assert_eq!(ideal["counts"], serde_json::json!({"101": 100}), "{ideal}");
    assert_eq!(routed["counts"], ideal["counts"], "{routed}");
}

#[test]
fn a_partition_that_is_not_on_the_device_or_a_bad_request_is_the_guests_error_result() {
    let d = device();
    let req = serde_json::json!({"qasm": QASM, "observable": "IIZ"});
    let off = run_guest_q(&job(req, vec![4, 5, 6]), Some(&d));
    assert_eq!(off["ok"], Value::Bool(false), "{off}");
    assert_eq!(off["error"]["kind"], "device", "{off}");
    let bad = run_guest_q(
        &job(serde_json::json!({"qasm": QASM}), vec![0, 1, 2]),
        Some(&d),
    );
    assert_eq!(bad["ok"], Value::Bool(false), "{bad}");
    assert_eq!(bad["error"]["kind"], "request", "{bad}");
}
