//! Prints what a simulation's state looks like at a few points: population, nesting depth,
//! capabilities, queues, channels and windows.
fn main() {
    for ops in [1000u64, 10_000, 100_000, 1_000_000] {
        let cfg = xdv_sim::SimConfig::new(1, ops);
        let (rep, core) = xdv_sim::run::<std::io::Sink>(&cfg, None).expect("simulation");
        let st = core.state();
        let depth = st.vhms.values().map(|v| v.depth).max().unwrap_or(0);
        println!(
            "ops {ops}: accepted {} rejected {}; live VHMs {} (max depth {depth}), caps {}, jobs {}, queues {:?}, channels {}, windows {}",
            rep.accepted,
            rep.rejected,
            st.vhms.len(),
            st.caps.caps.len(),
            st.jobs.len(),
            st.queues.iter().map(|q| q.len()).collect::<Vec<_>>(),
            st.channels.len(),
            st.windows.len()
        );
    }
}
