//! Word-sized modular arithmetic: Barrett reduction for products of two residues and Shoup
//! multiplication by a precomputed constant (Shoup, "NTL", see also Harvey 2014 for the bound).

/// An odd modulus below 2^62 with precomputed reduction constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modulus {
    value: u64,
    bits: u32,
    /// floor(2^(2*bits) / value), fits in 64 bits because value >= 2^(bits-1).
    barrett: u64,
    /// floor(2^64 / value): Shoup companion of 1, reduces any u64 with one high product.
    shoup_one: u64,
}

impl Modulus {
    /// Builds a modulus. `value` must be odd, at least 3 and below 2^62.
    pub fn new(value: u64) -> Self {
        assert!((3..(1u64 << 62)).contains(&value), "modulus out of range");
        let bits = 64 - value.leading_zeros();
        let barrett = ((1u128 << (2 * bits)) / value as u128) as u64;
        let shoup_one = ((1u128 << 64) / value as u128) as u64;
        Self {
            value,
            bits,
            barrett,
            shoup_one,
        }
    }

    /// The modulus itself.
    #[inline]
    pub fn value(&self) -> u64 {
        self.value
    }

    /// Number of bits of the modulus.
    #[inline]
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// (a + b) mod q for a, b < q.
    #[inline]
    pub fn add(&self, a: u64, b: u64) -> u64 {
        let s = a + b;
        if s >= self.value {
            s - self.value
        } else {
            s
        }
    }

    /// (a - b) mod q for a, b < q.
    #[inline]
    pub fn sub(&self, a: u64, b: u64) -> u64 {
        if a >= b {
            a - b
        } else {
            a + self.value - b
        }
    }

    /// -a mod q for a < q.
    #[inline]
    pub fn neg(&self, a: u64) -> u64 {
        if a == 0 {
            0
        } else {
            self.value - a
        }
    }

    /// Barrett reduction of x < q^2 (classic Barrett with the 2^(2k) constant).
    #[inline]
    pub fn reduce_u128(&self, x: u128) -> u64 {
        let k = self.bits;
        // (x >> (k-1)) < 2^(k+1) and barrett < 2^(k+1): the product fits in 128 bits.
        let t = (((x >> (k - 1)) * self.barrett as u128) >> (k + 1)) as u64;
        let mut r = (x as u64).wrapping_sub(t.wrapping_mul(self.value));
        // The estimate is at most 2 below the true quotient.
        if r >= self.value {
            r -= self.value;
        }
        if r >= self.value {
            r -= self.value;
        }
        r
    }

    /// Reduces any u64 (Shoup multiplication by 1: one high product, one correction).
    #[inline]
    pub fn reduce(&self, x: u64) -> u64 {
        self.mul_shoup(x, 1, self.shoup_one)
    }

    /// Reduces a signed integer with |x| < q into [0, q), branch-free.
    #[inline]
    pub fn reduce_small_i64(&self, x: i64) -> u64 {
        (x as u64).wrapping_add(self.value & ((x >> 63) as u64))
    }

    /// Reduces a signed integer into [0, q).
    #[inline]
    pub fn reduce_i64(&self, x: i64) -> u64 {
        let r = self.reduce(x.unsigned_abs());
        if x < 0 {
            self.neg(r)
        } else {
            r
        }
    }

    /// Reduces a signed 128-bit integer into [0, q).
    #[inline]
    pub fn reduce_i128(&self, x: i128) -> u64 {
        match i64::try_from(x) {
            Ok(v) => self.reduce_i64(v),
            Err(_) => x.rem_euclid(self.value as i128) as u64,
        }
    }

    /// (a * b) mod q for a, b < q.
    #[inline]
    pub fn mul(&self, a: u64, b: u64) -> u64 {
        self.reduce_u128(a as u128 * b as u128)
    }

    /// Precomputes the Shoup companion floor(w * 2^64 / q) of a constant w < q.
    #[inline]
    pub fn shoup(&self, w: u64) -> u64 {
        (((w as u128) << 64) / self.value as u128) as u64
    }

    /// (a * w) mod q with w's Shoup companion; a may be any u64 below 2^64 when q < 2^62
    /// (result fully reduced).
    #[inline]
    pub fn mul_shoup(&self, a: u64, w: u64, w_shoup: u64) -> u64 {
        let q_hat = ((a as u128 * w_shoup as u128) >> 64) as u64;
        let r = a
            .wrapping_mul(w)
            .wrapping_sub(q_hat.wrapping_mul(self.value));
        if r >= self.value {
            r - self.value
        } else {
            r
        }
    }

    /// a^e mod q.
    pub fn pow(&self, mut a: u64, mut e: u64) -> u64 {
        let mut r = 1 % self.value;
        a = self.reduce(a);
        while e > 0 {
            if e & 1 == 1 {
                r = self.mul(r, a);
            }
            a = self.mul(a, a);
            e >>= 1;
        }
        r
    }

    /// Inverse of a modulo a prime q (Fermat). Returns None for a = 0 mod q.
    pub fn inv(&self, a: u64) -> Option<u64> {
        let a = self.reduce(a);
        if a == 0 {
            None
        } else {
            Some(self.pow(a, self.value - 2))
        }
    }

    /// Centered representative of a residue: a value in (-q/2, q/2].
    #[inline]
    pub fn center(&self, a: u64) -> i64 {
        if a > self.value / 2 {
            a as i64 - self.value as i64
        } else {
            a as i64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn mul_matches_u128(q in 3u64..(1u64 << 61), a in any::<u64>(), b in any::<u64>()) {
            let q = q | 1;
            let m = Modulus::new(q);
            let (a, b) = (a % q, b % q);
            prop_assert_eq!(m.mul(a, b), ((a as u128 * b as u128) % q as u128) as u64);
        }

        #[test]
        fn shoup_matches_u128(q in 3u64..(1u64 << 61), a in any::<u64>(), w in any::<u64>()) {
            let q = q | 1;
            let m = Modulus::new(q);
            let w = w % q;
            let ws = m.shoup(w);
            prop_assert_eq!(m.mul_shoup(a, w, ws), ((a as u128 * w as u128) % q as u128) as u64);
        }

        #[test]
        fn add_sub_neg(q in 3u64..(1u64 << 61), a in any::<u64>(), b in any::<u64>()) {
            let q = q | 1;
            let m = Modulus::new(q);
            let (a, b) = (a % q, b % q);
            prop_assert_eq!(m.add(a, b) as u128, (a as u128 + b as u128) % q as u128);
            prop_assert_eq!(m.add(m.sub(a, b), b), a);
            prop_assert_eq!(m.add(a, m.neg(a)), 0);
            prop_assert_eq!(m.reduce_i64(m.center(a)), a);
            prop_assert_eq!(m.reduce(a.wrapping_mul(b)), a.wrapping_mul(b) % q);
            let s = (b % q) as i64 * if a % 2 == 0 { 1 } else { -1 };
            prop_assert_eq!(m.reduce_small_i64(s), (s as i128).rem_euclid(q as i128) as u64);
            let big = (a as i128) * if b % 2 == 0 { 3 } else { -5 };
            prop_assert_eq!(m.reduce_i128(big), big.rem_euclid(q as i128) as u64);
            prop_assert_eq!(m.reduce_i64(big as i64), (big as i64 as i128).rem_euclid(q as i128) as u64);
        }
    }

    #[test]
    fn inverse_of_prime_modulus() {
        let m = Modulus::new(1_152_921_504_606_584_833); // a 60-bit NTT prime
        for a in [1u64, 2, 3, 12345, 1 << 40] {
            let inv = m.inv(a).expect("nonzero");
            assert_eq!(m.mul(a, inv), 1);
        }
        assert_eq!(m.inv(0), None);
    }
}
