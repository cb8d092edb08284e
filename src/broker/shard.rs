//! Picks the Redis instance for a channel or key: a consistent hash, so
//! adding an instance moves only about 1/n of the channels.

/// FNV-1a, 64 bits: stable across processes and versions (unlike std's hasher).
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Jump consistent hash (Lamping and Veach, 2014): the bucket in `0..n` for `key`.
pub fn pick(key: &str, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let mut k = fnv1a(key);
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < n as i64 {
        b = j;
        k = k.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((k >> 33) + 1) as f64)) as i64;
    }
    b as usize
}

#[cfg(test)]
mod tests {
    use super::pick;

    #[test]
    fn buckets_are_stable_spread_and_move_little() {
        let keys: Vec<String> = (0..2000).map(|i| format!("ib:{i}")).collect();
        let three: Vec<usize> = keys.iter().map(|k| pick(k, 3)).collect();
        assert_eq!(three, keys.iter().map(|k| pick(k, 3)).collect::<Vec<_>>());
        for b in 0..3 {
            assert!(three.iter().filter(|x| **x == b).count() > 400);
        }
        let moved = keys.iter().zip(&three).filter(|(k, b)| pick(k, 4) != **b).count();
        assert!(moved < 800, "{moved} of 2000 moved");
        assert!(keys.iter().all(|k| pick(k, 1) == 0));
    }
}
