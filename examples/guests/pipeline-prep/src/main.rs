//! The classical pre-processing step of XDV's white-paper pipeline: turns a small data vector
//! into the rotation angles of the quantum step.
//!
//! It reads the previous step's result (JSON; `null` for the first step) on stdin and writes
//! `{"params": {"theta0", "theta1", "theta2"}, "data": [...], "norm": n}` on stdout. The angles
//! encode the normalised data vector (a, b, c, d) as the amplitudes of a two-qubit state prepared
//! by `ry(theta0)` on qubit 1 and rotations of qubit 0 controlled by it (see the example's
//! `encode.qasm`): theta0 = 2·atan2(‖(c, d)‖, ‖(a, b)‖), theta1 = 2·atan2(b, a),
//! theta2 = 2·atan2(d, c).

use serde_json::{json, Value};
use std::io::Read;

/// The data the pipeline processes (a fixed example; a real job would read it from its input).
const DATA: [f64; 4] = [3.0, 1.0, 2.0, 0.5];

fn main() {
    let mut input = String::new();
    if std::io::stdin().read_to_string(&mut input).is_err() {
        eprintln!("pipeline-prep: stdin is not UTF-8");
        std::process::exit(1);
    }
    // The first step of a pipeline receives `null`; a later one could pass data along.
    let data: Vec<f64> = match serde_json::from_str::<Value>(input.trim()) {
        Ok(Value::Object(m)) => match m.get("data").and_then(Value::as_array) {
            Some(a) => a.iter().filter_map(Value::as_f64).collect(),
            None => DATA.to_vec(),
        },
        _ => DATA.to_vec(),
    };
    if data.len() != 4 || data.iter().any(|x| !x.is_finite() || *x < 0.0) {
        eprintln!("pipeline-prep: the data must be 4 finite non-negative numbers");
        std::process::exit(1);
    }
    let norm = data.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm == 0.0 {
        eprintln!("pipeline-prep: the data vector is zero");
        std::process::exit(1);
    }
    let v: Vec<f64> = data.iter().map(|x| x / norm).collect();
    let low = (v[0] * v[0] + v[1] * v[1]).sqrt();
    let high = (v[2] * v[2] + v[3] * v[3]).sqrt();
    let theta0 = 2.0 * high.atan2(low);
    let theta1 = 2.0 * v[1].atan2(v[0]);
    let theta2 = 2.0 * v[3].atan2(v[2]);
    println!(
        "{}",
        json!({"params": {"theta0": theta0, "theta1": theta1, "theta2": theta2},
               "data": data, "norm": norm})
    );
}
