//! Deterministic placement: which physical qubits form a VHM's Q partition and which rectangle of
//! the Φ mesh forms its region.
//!
//! Both searches are first-fit in ascending index order with ascending neighbour order, so the
//! same state always gives the same placement.

use crate::model::PhiRegion;

/// Finds `n` connected qubits of one provider (the global qubits in `range`) among those
/// `eligible` says yes to.
///
/// With `all_to_all` the provider's coupling is complete and the first `n` eligible qubits are
/// taken. Otherwise a breadth-first search over `adjacency` (global qubit lists, which never leave
/// the provider) grows from each eligible start in ascending order, visiting neighbours in
/// ascending order, and the first search that reaches `n` qubits wins. The result is sorted
/// ascending.
pub fn find_partition(
    range: std::ops::Range<u32>,
    adjacency: &[Vec<u32>],
    all_to_all: bool,
    n: u32,
    eligible: impl Fn(u32) -> bool,
) -> Option<Vec<u32>> {
    if n == 0 {
        return Some(Vec::new());
    }
    if all_to_all {
        let picked: Vec<u32> = range.filter(|&q| eligible(q)).take(n as usize).collect();
        return (picked.len() == n as usize).then_some(picked);
    }
    let base = range.start;
    let mut stamp = vec![u32::MAX; range.len()];
    let mut queue: Vec<u32> = Vec::with_capacity(n as usize);
    for start in range {
        if stamp[(start - base) as usize] != u32::MAX || !eligible(start) {
            continue;
        }
        // Qubits reached from an earlier start belong to a component too small for n, so they
        // are marked and never searched again.
        queue.clear();
        queue.push(start);
        stamp[(start - base) as usize] = start;
        let mut head = 0;
        while head < queue.len() && queue.len() < n as usize {
            let q = queue[head];
            head += 1;
            for &nb in &adjacency[q as usize] {
                if queue.len() == n as usize {
                    break;
                }
                if stamp[(nb - base) as usize] == u32::MAX && eligible(nb) {
                    stamp[(nb - base) as usize] = start;
                    queue.push(nb);
                }
            }
        }
        if queue.len() == n as usize {
            queue.sort_unstable();
            return Some(queue.clone());
        }
    }
    None
}

/// Finds a free `modes` × `channels` rectangle inside `bounds`. `occupied(mode)` is the bitmask of
/// channels already taken on that mode. First fit: lowest mode start, then lowest channel start.
pub fn find_region(
    bounds: PhiRegion,
    modes: u32,
    channels: u32,
    occupied: impl Fn(u32) -> u64,
) -> Option<PhiRegion> {
    if modes == 0 || channels == 0 || modes > bounds.modes || channels > bounds.channels {
        return None;
    }
    let masks: Vec<u64> = (bounds.mode_start..bounds.mode_end())
        .map(occupied)
        .collect();
    let want: u64 = if channels >= 64 {
        u64::MAX
    } else {
        (1u64 << channels) - 1
    };
    for m0 in 0..=(bounds.modes - modes) {
        let mut busy = 0u64;
        for m in &masks[m0 as usize..(m0 + modes) as usize] {
            busy |= m;
        }
        for c0 in bounds.channel_start..=(bounds.channel_end() - channels) {
            if busy & (want << c0) == 0 {
                return Some(PhiRegion {
                    mode_start: bounds.mode_start + m0,
                    modes,
                    channel_start: c0,
                    channels,
                });
            }
        }
    }
    None
}

/// The bitmask of channels `start..start+len`.
pub fn channel_mask(start: u32, len: u32) -> u64 {
    let m = if len >= 64 {
        u64::MAX
    } else {
        (1u64 << len) - 1
    };
    m << start
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: u32) -> Vec<Vec<u32>> {
        (0..n)
            .map(|i| {
                let mut v = Vec::new();
                if i > 0 {
                    v.push(i - 1);
                }
                if i + 1 < n {
                    v.push(i + 1);
                }
                v
            })
            .collect()
    }

    #[test]
    fn partition_is_connected_first_fit() {
        let adj = line(8);
        // qubit 2 is taken: the first connected run of 3 is 3,4,5.
        assert_eq!(
            find_partition(0..8, &adj, false, 3, |q| q != 2),
            Some(vec![3, 4, 5])
        );
        assert_eq!(
            find_partition(0..8, &adj, false, 2, |q| q != 2),
            Some(vec![0, 1])
        );
        assert_eq!(
            find_partition(0..8, &adj, false, 5, |q| q != 2 && q != 6),
            None
        );
        assert_eq!(
            find_partition(0..8, &[], true, 3, |q| q % 2 == 0),
            Some(vec![0, 2, 4])
        );
    }

    #[test]
    fn partition_stays_inside_its_provider() {
        // Two providers: a line of 4 (qubits 0..4) and all-to-all 4 (qubits 4..8).
        let mut adj = line(4);
        adj.extend(std::iter::repeat_n(Vec::new(), 4));
        assert_eq!(
            find_partition(4..8, &adj, true, 3, |q| q != 5),
            Some(vec![4, 6, 7])
        );
        assert_eq!(find_partition(0..4, &adj, false, 5, |_| true), None);
        assert_eq!(
            find_partition(0..4, &adj, false, 2, |q| q >= 2),
            Some(vec![2, 3])
        );
    }

    #[test]
    fn region_first_fit_respects_occupancy() {
        let b = PhiRegion {
            mode_start: 0,
            modes: 4,
            channel_start: 0,
            channels: 4,
        };
        let r = find_region(b, 2, 2, |m| if m < 2 { 0b0011 } else { 0 }).unwrap();
        assert_eq!(
            r,
            PhiRegion {
                mode_start: 0,
                modes: 2,
                channel_start: 2,
                channels: 2
            }
        );
        assert_eq!(
            find_region(b, 4, 3, |m| if m < 2 { 0b0011 } else { 0 }),
            None
        );
        assert_eq!(channel_mask(2, 3), 0b11100);
        assert_eq!(channel_mask(0, 64), u64::MAX);
    }
}
