//! A memory-bandwidth probe: the floor under every pass a state-vector engine makes. One pass
//! over a state reads and writes every amplitude once; this measures how fast the machine can do
//! exactly that — an in-place scale of a buffer far larger than the caches — on a given number of
//! threads, so that a benchmark can set an engine's time per pass against it.
//!
//! It reads the clock (it is a measurement) and is used only by benchmarks and the CLI.

use rayon::prelude::*;
use std::time::Instant;
use thiserror::Error;

/// The largest buffer the probe allocates.
pub const PROBE_BYTES_MAX: u64 = 16 << 30;

/// Why the probe could not run.
#[derive(Debug, Error, PartialEq)]
pub enum BandwidthError {
    /// The buffer size is out of range.
    #[error("a bandwidth probe over {bytes} bytes: use between 1 MiB and {max} bytes")]
    Size {
        /// Requested.
        bytes: u64,
        /// [`PROBE_BYTES_MAX`].
        max: u64,
    },
    /// The thread pool could not be built.
    #[error("cannot start {threads} threads: {message}")]
    Threads {
        /// Requested.
        threads: usize,
        /// The system's message.
        message: String,
    },
}

/// What the probe measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Bandwidth {
    /// Threads used.
    pub threads: usize,
    /// Buffer size.
    pub bytes: u64,
    /// Passes timed.
    pub passes: usize,
    /// Median read + write bandwidth, bytes per second (each pass moves `2 · bytes`).
    pub bytes_per_s: f64,
}

/// Measures read + write bandwidth over a `bytes`-byte buffer on `threads` threads (0: every
/// core), as the median of `passes` timed passes after one untimed pass.
pub fn measure(bytes: u64, threads: usize, passes: usize) -> Result<Bandwidth, BandwidthError> {
    if !(1 << 20..=PROBE_BYTES_MAX).contains(&bytes) {
        return Err(BandwidthError::Size {
            bytes,
            max: PROBE_BYTES_MAX,
        });
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| BandwidthError::Threads {
            threads,
            message: e.to_string(),
        })?;
    let threads = pool.current_num_threads();
    let mut buf = vec![1.0f32; (bytes / 4) as usize];
    // Chunks large enough to stream, small enough to share among threads evenly.
    let chunk = (buf.len() / (threads * 16)).max(1 << 14);
    let pass = |buf: &mut Vec<f32>| {
        pool.install(|| {
            buf.par_chunks_mut(chunk).for_each(|c| {
                for x in c {
                    *x *= 1.000_000_1;
                }
            })
        })
    };
    pass(&mut buf);
    let mut times: Vec<f64> = (0..passes.max(1))
        .map(|_| {
            let t = Instant::now();
            pass(&mut buf);
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    // Keep the buffer observable so the passes are not optimised away.
    std::hint::black_box(&buf);
    Ok(Bandwidth {
        threads,
        bytes,
        passes: times.len(),
        bytes_per_s: 2.0 * bytes as f64 / median.max(1e-12),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_sizes_out_of_range() {
        assert!(matches!(
            measure(1000, 1, 1),
            Err(BandwidthError::Size { .. })
        ));
        assert!(matches!(
            measure(PROBE_BYTES_MAX + 1, 1, 1),
            Err(BandwidthError::Size { .. })
        ));
    }

    #[test]
    fn measures_something_positive() {
        let b = measure(4 << 20, 1, 3).unwrap();
        assert_eq!(b.threads, 1);
        assert_eq!(b.passes, 3);
        assert!(b.bytes_per_s > 0.0 && b.bytes_per_s.is_finite());
    }
}
