//! The simulator's only source of randomness: xoshiro256** seeded through
//! splitmix64. Written here (a few lines) rather than taken from a crate so
//! that a seed replays the same schedule forever, whatever crate versions
//! the build resolves.

/// One splitmix64 step: advances `state` and returns a well-mixed output.
/// Used to expand a 64-bit seed into xoshiro's 256-bit state and to derive
/// independent sub-seeds.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256** (Blackman & Vigna): fast, 256-bit state, good enough
/// statistics for schedule generation. Deterministic for a given seed.
#[derive(Debug, Clone)]
pub struct SimRng {
    s: [u64; 4],
}

impl SimRng {
    /// A generator whose whole stream is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let mut s = [0u64; 4];
        for w in &mut s {
            *w = splitmix64(&mut sm);
        }
        // splitmix64 never yields four zero words in a row, but xoshiro must
        // not start from the all-zero state, so make it impossible anyway.
        if s == [0; 4] {
            s[0] = 1;
        }
        SimRng { s }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `lo..=hi` (`lo` if `hi < lo`). Always consumes exactly one
    /// draw, so a schedule generated with a narrowed range (`--peers 5..5`)
    /// sees the same stream afterwards as the wide range that picked 5.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        let x = self.next_u64();
        if hi <= lo {
            return lo;
        }
        let span = hi - lo + 1;
        // Multiply-shift: unbiased enough for simulation and branch-free.
        lo + ((u128::from(x) * u128::from(span)) >> 64) as u64
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        self.range(0, 999) < u64::from(per_mille)
    }

    /// Uniform in `0..n` (0 when `n` is 0). One draw.
    pub fn below(&mut self, n: u64) -> u64 {
        self.range(0, n.saturating_sub(1))
    }

    /// A uniformly chosen element index of a slice of length `len` (> 0).
    pub fn index(&mut self, len: usize) -> usize {
        self.range(0, len.saturating_sub(1) as u64) as usize
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.range(0, i as u64) as usize;
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_seeds_differ() {
        let a: Vec<u64> = {
            let mut r = SimRng::new(42);
            (0..8).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = SimRng::new(42);
            (0..8).map(|_| r.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut r = SimRng::new(43);
            (0..8).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn pinned_stream_never_changes() {
        // Replaying a reported seed depends on this exact stream.
        let mut sm = 0u64;
        assert_eq!(splitmix64(&mut sm), 0xE220_A839_7B1D_CDAF);
        let mut r = SimRng::new(0);
        let first = r.next_u64();
        let mut again = SimRng::new(0);
        assert_eq!(first, again.next_u64());
    }

    #[test]
    fn range_stays_in_bounds_and_covers_it() {
        let mut r = SimRng::new(7);
        let mut seen = [false; 5];
        for _ in 0..1000 {
            let x = r.range(3, 7);
            assert!((3..=7).contains(&x));
            seen[(x - 3) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(r.range(9, 9), 9);
        assert_eq!(r.range(9, 2), 9);
    }
}
