//! The classical post-processing step of XDV's white-paper pipeline: summarises the phase
//! step's output field.
//!
//! It reads the Φ step's result (`xdv phi run --json`'s document) on stdin and writes
//! `{"modes", "total_power", "distribution", "brightest_mode", "entropy_bits"}` on stdout: the
//! output intensities normalised to a distribution, its brightest mode and its Shannon entropy.

use serde_json::{json, Value};
use std::io::Read;

fn main() {
    let mut input = String::new();
    if std::io::stdin().read_to_string(&mut input).is_err() {
        eprintln!("pipeline-post: stdin is not UTF-8");
        std::process::exit(1);
    }
    let doc: Value = match serde_json::from_str(input.trim()) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("pipeline-post: the previous result is not JSON: {e}");
            std::process::exit(1);
        }
    };
    let Some(intensities) = doc.get("intensities").and_then(Value::as_array) else {
        eprintln!("pipeline-post: the previous result has no `intensities` (it must be a Φ step)");
        std::process::exit(1);
    };
    let x: Vec<f64> = intensities.iter().filter_map(Value::as_f64).collect();
    let total: f64 = x.iter().sum();
    if x.is_empty() || total <= 0.0 {
        eprintln!("pipeline-post: no light came out");
        std::process::exit(1);
    }
    let p: Vec<f64> = x.iter().map(|v| v / total).collect();
    let (brightest, _) = p
        .iter()
        .enumerate()
        .fold((0, f64::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
    let entropy: f64 = p.iter().filter(|&&v| v > 0.0).map(|v| -v * v.log2()).sum();
    println!(
        "{}",
        json!({"modes": x.len(), "total_power": total, "distribution": p,
               "brightest_mode": brightest, "entropy_bits": entropy})
    );
}
