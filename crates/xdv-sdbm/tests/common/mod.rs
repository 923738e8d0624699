//! Shared pieces of the integration tests: scratch directories and sample entries.

#![allow(dead_code)]

use std::path::PathBuf;
use xdv_sdbm::entry::{CapKind, Domain, Entry, Event, IpcKind};

/// A fresh, empty scratch directory unique to this process and `name`.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xdv-sdbm-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// One entry of every kind, cycled, at increasing times.
pub fn sample(i: u64) -> Entry {
    let v = (i % 7) as u32;
    let event = match i % 8 {
        0 => Event::VhmCreated {
            vhm: v,
            parent: i.is_multiple_of(2).then_some(1),
            name: format!("tenant-{i}"),
        },
        1 => Event::VhmStopped {
            vhm: v,
            reason: "terminated".into(),
        },
        2 => Event::Allocation {
            vhm: v,
            resource: "qubits".into(),
            amount: i * 3,
            released: i.is_multiple_of(3),
        },
        3 => Event::Transition {
            vhm: v,
            job: i,
            from: Domain::K,
            to: if i.is_multiple_of(2) {
                Domain::Q
            } else {
                Domain::Phi
            },
            detail: "submitted".into(),
        },
        4 => Event::Ipc {
            channel: 9,
            from: 1,
            to: 2,
            kind: IpcKind::Message,
            bytes: i,
        },
        5 => Event::Capability {
            cap: i,
            kind: CapKind::Issued,
            parent: Some(0),
            holder: "v3".into(),
        },
        6 => Event::TokenRevoked {
            token: [i as u8; 32],
        },
        _ => Event::Rejection {
            vhm: Some(v),
            rule: "quota".into(),
            detail: "asks for more than its quota — ünïcödé".into(),
        },
    };
    Entry {
        time_ns: 1000 + i * 10,
        event,
    }
}
