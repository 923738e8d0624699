//! VHM manifests: valid ones become the specs the core receives; every invalid one is refused with
//! the key, the line and column, and a hint.

use xdv_core::Resource;
use xdv_runtime::manifest::StepDecl;
use xdv_runtime::Manifest;

const GOOD: &str = r#"
name = "three-tenants"
seed = 7
max_ticks = 5000

[[vhm]]
name = "alice"
[vhm.k]
guest = "guests/alice.wat"
args = ["--rounds", "3"]
vcpus = 2
memory_mib = 16
fuel_units = 1000000
[vhm.q]
qubits = 4
shots = 10000
error_budget_ppm = 50000
provider = "xdv-statevector"
[vhm.policy]
priority = 5
deadline_tick = 4000
quotas = { fuel_units = 2000000, vcpu_slots = 2, memory_bytes = 16777216, logical_qubits = 4, shots = 20000, error_budget_ppm = 50000 }

[[vhm.vhm]]
name = "worker"
[vhm.vhm.q]
qubits = 2
shots = 1000

[[vhm]]
name = "bob"
[vhm.q]
qubits = 2
shots = 100
[vhm.phi]
modes = 4
coherence_window_ns = 5000000
tolerance_rad = 0.05
[vhm.k]
fuel_units = 1000
[[vhm.step]]
domain = "k"
guest = "pre.wat"
[[vhm.step]]
domain = "q"
circuit = "bell.qasm"
shots = 50
[[vhm.step]]
domain = "phi"
program = "dft.toml"

[[channel]]
between = ["alice", "bob"]
messages_max = 8
[[channel]]
between = ["alice/worker", "bob"]
"#;

#[test]
fn a_valid_manifest_becomes_core_specs() {
    let m = Manifest::from_toml(GOOD, "m.toml").unwrap();
    assert_eq!(
        (m.name.as_str(), m.seed, m.max_ticks),
        ("three-tenants", 7, 5000)
    );
    let all: Vec<&str> = m.all_vhms().iter().map(|v| v.path.as_str()).collect();
    assert_eq!(all, ["alice", "alice/worker", "bob"]);
    let alice = &m.vhms[0];
    let spec = alice.spec();
    assert_eq!(spec.k.as_ref().unwrap().memory_bytes, 16 << 20);
    assert_eq!(
        spec.q.as_ref().unwrap().provider.as_deref(),
        Some("xdv-statevector")
    );
    assert_eq!(spec.policy.priority, 5);
    assert_eq!(spec.policy.deadline_tick, Some(4000));
    assert_eq!(spec.quota().get(Resource::FuelUnits), 2_000_000);
    let guest = alice.k.as_ref().unwrap().guest.as_ref().unwrap();
    assert_eq!((guest.value.as_str(), guest.line), ("guests/alice.wat", 9));
    assert_eq!(alice.k.as_ref().unwrap().args, ["--rounds", "3"]);
    let bob = &m.vhms[1];
    assert_eq!(bob.steps.len(), 3);
    assert!(matches!(&bob.steps[1], StepDecl::Q { shots: 50, .. }));
    assert_eq!(bob.phi.as_ref().unwrap().channels, 1);
    assert_eq!(m.channels.len(), 2);
    assert_eq!(m.channels[0].messages_max, 8);
    assert_eq!(m.channels[1].messages_max, 64);
}

/// Replaces `from` with `to` in the good manifest and expects an error at `line`, naming `key`
/// and saying `needle`.
fn check(cases: &[(&str, &str, usize, &str, &str)]) {
    for (i, (from, to, line, key, needle)) in cases.iter().enumerate() {
        assert!(
            GOOD.contains(from),
            "case {i}: {from:?} is not in the manifest"
        );
        let text = GOOD.replacen(from, to, 1);
        let e = Manifest::from_toml(&text, "m.toml").expect_err("must be refused");
        assert_eq!(e.line, *line, "case {i}: {e}");
        assert_eq!(e.key, *key, "case {i}: {e}");
        assert!(e.message.contains(needle), "case {i}: {e}");
        assert!(!e.hint.is_empty(), "case {i}: {e}");
        assert!(
            e.to_string().starts_with(&format!("m.toml:{line}:")),
            "case {i}: {e}"
        );
    }
}

#[test]
fn bad_manifests_name_the_key_and_the_line() {
    check(&[
        (
            "name = \"three-tenants\"",
            "name = \"three tenants\"",
            2,
            "name",
            "not a valid run name",
        ),
        (
            "max_ticks = 5000",
            "max_ticks = 0",
            4,
            "max_ticks",
            "positive",
        ),
        (
            "vcpus = 2",
            "vcpus = 0",
            11,
            "vhm[0].k.vcpus",
            "at least one vCPU",
        ),
        (
            "memory_mib = 16",
            "memory_mib = 16\nmemory_bytes = 5",
            13,
            "vhm[0].k.memory_bytes",
            "both",
        ),
        (
            "fuel_units = 1000000",
            "fuel_units = 0",
            13,
            "vhm[0].k.fuel_units",
            "positive fuel",
        ),
        (
            "qubits = 4",
            "qubits = 0",
            15,
            "vhm[0].q.qubits",
            "at least one logical qubit",
        ),
        (
            "priority = 5",
            "priority = 300",
            20,
            "vhm[0].policy.priority",
            "0..=255",
        ),
        (
            "quotas = { fuel_units",
            "quotas = { fuel = 1, fuel_units",
            22,
            "vhm[0].policy.quotas.fuel",
            "not a resource",
        ),
        (
            "name = \"worker\"",
            "name = \"alice\"\n[vhm.vhm.k]\nfuel_units = 1\n[[vhm.vhm]]\nname = \"alice\"",
            29,
            "vhm[0].vhm[1].name",
            "already named",
        ),
        (
            "tolerance_rad = 0.05",
            "tolerance_rad = 7.0",
            38,
            "vhm[1].phi.tolerance_rad",
            "out of range",
        ),
        (
            "domain = \"k\"",
            "domain = \"x\"",
            42,
            "vhm[1].step[0].domain",
            "unknown domain",
        ),
        (
            "circuit = \"bell.qasm\"\n",
            "",
            45,
            "vhm[1].step[1].circuit",
            "needs circuit",
        ),
        (
            "between = [\"alice\", \"bob\"]",
            "between = [\"alice\", \"carol\"]",
            53,
            "channel[0].between",
            "no VHM",
        ),
        (
            "between = [\"alice\", \"bob\"]",
            "between = [\"alice\"]",
            53,
            "channel[0].between",
            "exactly two",
        ),
        (
            "between = [\"alice\", \"bob\"]",
            "between = [\"bob\", \"bob\"]",
            53,
            "channel[0].between",
            "two different",
        ),
        (
            "messages_max = 8",
            "messages_max = 0",
            54,
            "channel[0].messages_max",
            "out of range",
        ),
        (
            "seed = 7",
            "seed = 7\ncolour = 1",
            4,
            "manifest",
            "unknown field",
        ),
        (
            "seed = 7",
            "seed = \"seven\"",
            3,
            "manifest",
            "invalid type",
        ),
        (
            "qubits = 2\nshots = 100\n[vhm.phi]",
            "qubits = 2\n[vhm.phi]",
            32,
            "manifest",
            "missing field `shots`",
        ),
    ]);
}

#[test]
fn a_step_needs_its_domain_and_a_guest_excludes_steps() {
    let text = GOOD.replace(
        "[vhm.phi]\nmodes = 4\ncoherence_window_ns = 5000000\ntolerance_rad = 0.05\n",
        "",
    );
    let e = Manifest::from_toml(&text, "m.toml").unwrap_err();
    assert_eq!(e.key, "vhm[1].step[2].domain", "{e}");
    assert!(e.message.contains("hold that domain"), "{e}");
    let text = GOOD.replace(
        "[vhm.k]\nfuel_units = 1000\n",
        "[vhm.k]\nfuel_units = 1000\nguest = \"g.wat\"\n",
    );
    let e = Manifest::from_toml(&text, "m.toml").unwrap_err();
    assert!(e.message.contains("not both"), "{e}");
}
