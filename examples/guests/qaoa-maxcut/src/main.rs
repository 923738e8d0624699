//! QAOA for Max-Cut, run as an XDV K guest.
//!
//! The graph is the five-node "house" (a square 1-3-4-2 with the roof 0 on the edge 1-2):
//! edges 0-1, 0-2, 1-2, 1-3, 2-4, 3-4. QAOA with p = 2: Hadamards, then twice the cost layer
//! exp(−iγ Σ Z_i Z_j / 2) (as CX · RZ(γ) · CX on each edge) and the mixer RX(2β) on every qubit.
//! The expected cut ⟨C⟩ = Σ_edges (1 − ⟨Z_i Z_j⟩)/2 is one exact expectation-value job per
//! evaluation; the Nelder–Mead minimiser of −⟨C⟩ runs here in the guest. Then the optimised
//! circuit is sampled (2000 shots, one job) and the best cut among the samples is reported.
//! The guest prints one JSON line with the result.

use serde_json::json;
use xdv_guest::{log, optim, q_counts, q_expectation, JobError, Level};

/// The graph's edges.
const EDGES: [(usize, usize); 6] = [(0, 1), (0, 2), (1, 2), (1, 3), (2, 4), (3, 4)];
/// Its nodes (one qubit each).
const NODES: usize = 5;
/// Shots of the final sampling.
const SHOTS: u64 = 2000;

/// The circuit for angles g0, b0, g1, b1 (OpenQASM 3 inputs); `measure` adds measurements.
fn circuit(measure: bool) -> String {
    let mut s = String::from("OPENQASM 3.0;\ninclude \"stdgates.inc\";\n");
    s += "input float g0; input float b0; input float g1; input float b1;\n";
    s += &format!("qubit[{NODES}] q;\n");
    if measure {
        s += &format!("bit[{NODES}] c;\n");
    }
    for i in 0..NODES {
        s += &format!("h q[{i}];\n");
    }
    for (g, b) in [("g0", "b0"), ("g1", "b1")] {
        for (i, j) in EDGES {
            s += &format!("cx q[{i}], q[{j}];\nrz({g}) q[{j}];\ncx q[{i}], q[{j}];\n");
        }
        for i in 0..NODES {
            s += &format!("rx(2 * {b}) q[{i}];\n");
        }
    }
    if measure {
        s += "c = measure q;\n";
    }
    s
}

/// −C as a Pauli sum: Σ_edges (Z_i Z_j − I)/2, leftmost letter on the highest qubit.
fn negative_cut_observable() -> String {
    let mut terms = Vec::new();
    for (i, j) in EDGES {
        let label: String = (0..NODES)
            .rev()
            .map(|q| if q == i || q == j { 'Z' } else { 'I' })
            .collect();
        terms.push(format!("0.5*{label}"));
    }
    format!(
        "{} - {}*{}",
        terms.join(" + "),
        EDGES.len() as f64 / 2.0,
        "I".repeat(NODES)
    )
}

/// The cut of a counts key (the highest qubit leftmost).
fn cut_of(key: &str) -> usize {
    let bits: Vec<bool> = key.chars().rev().map(|c| c == '1').collect();
    EDGES
        .iter()
        .filter(|(i, j)| bits.get(*i) != bits.get(*j))
        .count()
}

fn run() -> Result<serde_json::Value, JobError> {
    let ansatz = circuit(false);
    let observable = negative_cut_observable();
    let f = |t: &[f64]| {
        q_expectation(
            &ansatz,
            &observable,
            &[("g0", t[0]), ("b0", t[1]), ("g1", t[2]), ("b1", t[3])],
        )
    };
    let m = optim::nelder_mead(f, &[0.5, 0.4, 1.0, 0.2], 0.3, 1e-9, 3000)?;
    let t = &m.x;
    let counts = q_counts(
        &circuit(true),
        SHOTS,
        &[("g0", t[0]), ("b0", t[1]), ("g1", t[2]), ("b1", t[3])],
    )?;
    let (best_key, best_cut) = counts
        .iter()
        .map(|(k, _)| (k.clone(), cut_of(k)))
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .unwrap_or_default();
    let (top_key, top_count) = counts
        .iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .cloned()
        .unwrap_or_default();
    Ok(json!({
        "graph": {"nodes": NODES, "edges": EDGES},
        "expected_cut": -m.value, "parameters": m.x, "evaluations": m.evaluations,
        "shots": SHOTS, "best_cut": best_cut, "best_bitstring": best_key,
        "most_frequent_bitstring": top_key, "most_frequent_count": top_count,
        "most_frequent_cut": cut_of(&top_key),
    }))
}

fn main() {
    log(Level::Info, "qaoa-maxcut: house graph, p = 2, Nelder–Mead");
    match run() {
        Ok(doc) => println!("{doc}"),
        Err(e) => {
            eprintln!("qaoa-maxcut: {e}");
            std::process::exit(1);
        }
    }
}
