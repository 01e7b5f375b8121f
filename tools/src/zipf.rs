//! A Zipfian key generator, as in YCSB (Gray et al., "Quickly generating
//! billion-record synthetic databases", SIGMOD 1994): rank `r` of `n` is
//! drawn with probability proportional to `1 / (r + 1)^theta`. Ranks are
//! scrambled with a hash so the hot keys spread over the key space (and so
//! over many blocks), like YCSB's "scrambled zipfian".

/// Draws Zipf-distributed ranks in `0..n`.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: u64,
    theta: f64,
    alpha: f64,
    zeta_n: f64,
    eta: f64,
}

fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

impl Zipf {
    /// A generator over `0..n` (`n >= 2`) with skew `theta` in `(0, 1)`;
    /// YCSB's default is 0.99. Takes O(n) to set up.
    pub fn new(n: u64, theta: f64) -> Zipf {
        assert!(n >= 2 && theta > 0.0 && theta < 1.0);
        let zeta_n = zeta(n, theta);
        let zeta_2 = zeta(2, theta);
        Zipf {
            n,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zeta_n,
            eta: (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta_2 / zeta_n),
        }
    }

    /// The rank for a uniform `u` in `[0, 1)`: 0 is the most frequent.
    pub fn rank(&self, u: f64) -> u64 {
        let uz = u * self.zeta_n;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1;
        }
        let r = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        r.min(self.n - 1)
    }

    /// A scrambled draw: the rank hashed onto `0..n`, from 64 random bits.
    pub fn key(&self, random: u64) -> u64 {
        let u = (random >> 11) as f64 / (1u64 << 53) as f64;
        let mut h = self.rank(u).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 29;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 32;
        h % self.n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_follow_the_zipf_law() {
        let z = Zipf::new(10_000, 0.99);
        let mut counts = vec![0u64; 10_000];
        let mut x = 0x1234_5678_9abc_def0u64;
        let draws = 200_000;
        for _ in 0..draws {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            counts[z.rank((x >> 11) as f64 / (1u64 << 53) as f64) as usize] += 1;
        }
        // P(rank 0) = 1 / zeta_n; zeta(10^4, 0.99) is about 9.8.
        let p0 = counts[0] as f64 / draws as f64;
        assert!((p0 - 1.0 / z.zeta_n).abs() < 0.01, "p0 = {p0}");
        // Rank 0 about twice as frequent as rank 1, the top 1% of ranks
        // take most of the draws.
        assert!(counts[0] > counts[1] * 3 / 2 && counts[0] < counts[1] * 5 / 2);
        let top: u64 = counts[..100].iter().sum();
        assert!(top * 2 > draws, "top 1% drew {top} of {draws}");
    }

    #[test]
    fn scrambled_keys_stay_in_range() {
        let z = Zipf::new(1000, 0.9);
        for r in 0..10_000u64 {
            assert!(z.key(r.wrapping_mul(0x2545_f491_4f6c_dd1d)) < 1000);
        }
    }
}
