//! Measures VHM creation plus teardown in the core: each iteration creates a root VHM holding
//! K, Q and Φ resources (placement of 2 qubits and a 2-mode region included), creates a nested
//! VHM inside it, and terminates the root (children first), reclaiming everything. Prints the
//! median over several runs as JSON, for `cargo xtask bench run`.
//!
//! `cargo run --release -p xdv-core --example vhm_churn -- [PAIRS] [RUNS]`

use std::time::Instant;
use xdv_core::{
    Command, Core, Event, Genesis, Input, KSpec, Limits, Machine, Outcome, PhiSpec, Principal,
    QSpec, VhmSpec, ROOT_CAP,
};

fn spec(name: &str, qubits: u32, modes: u32) -> VhmSpec {
    VhmSpec {
        name: name.to_string(),
        k: Some(KSpec {
            vcpus: 1,
            memory_bytes: 1 << 20,
            fuel_units: 1_000_000,
        }),
        q: Some(QSpec {
            provider: None,
            logical_qubits: qubits,
            shots: 1000,
            error_budget_ppm: 1000,
        }),
        phi: Some(PhiSpec {
            provider: None,
            modes,
            wavelength_channels: 1,
            coherence_window_ns: 10_000,
            thermal_budget_mw: 1,
            optical_bandwidth_mhz: 1,
        }),
        policy: Default::default(),
    }
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("PAIRS and RUNS are integers"))
        .collect();
    let pairs = args.first().copied().unwrap_or(200_000);
    let runs = args.get(1).copied().unwrap_or(5).max(1);
    let root = spec("tenant", 2, 2);
    let child = spec("child", 1, 1);
    let mut rates = Vec::new();
    for _ in 0..runs {
        let mut core = Core::new(Genesis {
            machine: Machine::default_machine(),
            limits: Limits::default(),
        });
        let mut out = Outcome::default();
        let t0 = Instant::now();
        for _ in 0..pairs {
            out.clear();
            core.apply(
                &Input::Command {
                    principal: Principal::Operator,
                    cap: ROOT_CAP,
                    command: Command::CreateVhm { spec: root.clone() },
                },
                &mut out,
            );
            let Some((vhm, cap)) = out.events.iter().find_map(|e| match e {
                Event::VhmCreated { vhm, cap, .. } => Some((*vhm, *cap)),
                _ => None,
            }) else {
                panic!("create refused: {:?}", out.rejection);
            };
            out.clear();
            core.apply(
                &Input::Command {
                    principal: Principal::Vhm(vhm),
                    cap,
                    command: Command::CreateNested {
                        parent: vhm,
                        spec: child.clone(),
                    },
                },
                &mut out,
            );
            assert!(out.accepted(), "nested create refused: {:?}", out.rejection);
            out.clear();
            core.apply(
                &Input::Command {
                    principal: Principal::Operator,
                    cap: ROOT_CAP,
                    command: Command::Terminate { vhm },
                },
                &mut out,
            );
            assert!(out.accepted(), "terminate refused: {:?}", out.rejection);
        }
        let secs = t0.elapsed().as_secs_f64();
        assert!(core.state().vhms.is_empty(), "VHMs left after teardown");
        rates.push(pairs as f64 / secs);
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "{{\"pairs\": {pairs}, \"runs\": {runs}, \"vhm_trees_per_sec_median\": {median:.0}, \"vhms_per_sec_median\": {:.0}, \"rates\": {rates:?}}}",
        median * 2.0
    );
}
