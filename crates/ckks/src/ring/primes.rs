//! Deterministic generation of NTT-friendly primes (p = 1 mod 2N).

use crate::error::{CkksError, Result};

/// Deterministic Miller-Rabin for 64-bit integers: the first 12 prime bases are a proven
/// witness set for all n < 3.3 * 10^24 (Sorenson and Webster 2015).
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    const BASES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    for &p in &BASES {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    let mut d = n - 1;
    let mut s = 0;
    while d.is_multiple_of(2) {
        d /= 2;
        s += 1;
    }
    let mulmod = |a: u64, b: u64| ((a as u128 * b as u128) % n as u128) as u64;
    let powmod = |mut a: u64, mut e: u64| {
        let mut r = 1u64;
        while e > 0 {
            if e & 1 == 1 {
                r = mulmod(r, a);
            }
            a = mulmod(a, a);
            e >>= 1;
        }
        r
    };
    'witness: for &a in &BASES {
        let mut x = powmod(a, d);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mulmod(x, x);
            if x == n - 1 {
                continue 'witness;
            }
        }
        return false;
    }
    true
}

/// Finds `count` primes p = 1 mod 2n with exactly `bits` bits, searching downward from
/// 2^bits so that the primes are as close to 2^bits as possible (which keeps the CKKS scale
/// close to a power of two after rescaling). Primes in `exclude` are skipped so that a chain
/// with repeated bit sizes gets distinct primes. Deterministic.
pub fn generate_primes(bits: u32, count: usize, n: usize, exclude: &[u64]) -> Result<Vec<u64>> {
    if !(20..=61).contains(&bits) {
        return Err(CkksError::InvalidParameters(format!(
            "prime bit size {bits} outside 20..=61"
        )));
    }
    let two_n = 2 * n as u64;
    let upper = 1u64 << bits;
    let lower = 1u64 << (bits - 1);
    // Largest candidate below 2^bits that is 1 mod 2n.
    let mut candidate = (upper - 1) / two_n * two_n + 1;
    let mut found = Vec::with_capacity(count);
    while found.len() < count {
        if candidate <= lower {
            return Err(CkksError::NotEnoughPrimes { bits, count, n });
        }
        if is_prime(candidate) && !exclude.contains(&candidate) {
            found.push(candidate);
        }
        candidate -= two_n;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_primes() {
        assert!(is_prime(2));
        assert!(is_prime(1_152_921_504_606_584_833));
        assert!(!is_prime(4_294_967_291 * 4_294_967_279));
        assert!(!is_prime(561)); // Carmichael number
        assert!(is_prime((1u64 << 61) - 1));
    }

    #[test]
    fn generated_primes_are_ntt_friendly_and_distinct() {
        let n = 1 << 13;
        let a = generate_primes(40, 5, n, &[]).unwrap();
        let b = generate_primes(40, 2, n, &a).unwrap();
        for &p in a.iter().chain(&b) {
            assert!(is_prime(p));
            assert_eq!(p % (2 * n as u64), 1);
            assert_eq!(64 - p.leading_zeros(), 40);
        }
        let mut all: Vec<u64> = a.iter().chain(&b).copied().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 7);
        // Deterministic and descending from 2^40.
        assert_eq!(a, generate_primes(40, 5, n, &[]).unwrap());
        assert!(a.windows(2).all(|w| w[0] > w[1]));
    }
}
