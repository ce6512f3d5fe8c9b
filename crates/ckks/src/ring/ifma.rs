//! Constant multiplications with AVX-512 IFMA (52-bit multiply-add), selected at run time.
//!
//! Shoup's method on 52-bit lanes: with w' = floor(w 2^52 / p), q = floor(a w' / 2^52)
//! underestimates floor(a w / p) by at most one for any a < 2^52, so a w - q p lies in
//! [0, 2p) and is exact modulo 2^52 (p < 2^50). One conditional subtraction finishes.
//! This serves basis conversion, whose inputs are residues of *other* primes (not reduced
//! modulo the target), and multiplication by per-limb constants, without materialising a
//! constant vector for tfhe-ntt's point-wise kernels.

/// Shoup companion for 52-bit lanes: floor(w 2^52 / p).
#[inline]
pub fn shoup52(w: u64, p: u64) -> u64 {
    (((w as u128) << 52) / p as u128) as u64
}

/// Whether the IFMA kernels can run (CPU support, checked once).
#[inline]
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512ifma")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[inline(always)]
fn scalar_mul(a: u64, w: u64, ws: u64, p: u64) -> u64 {
    let q = ((a as u128 * ws as u128) >> 52) as u64;
    let r = a.wrapping_mul(w).wrapping_sub(q.wrapping_mul(p)) & ((1u64 << 52) - 1);
    r.min(r.wrapping_sub(p))
}

/// out = a * w mod p. Requires p < 2^50, w < p, ws = shoup52(w, p), a < 2^52, and
/// [`available`].
pub fn mul_const_into(out: &mut [u64], a: &[u64], w: u64, ws: u64, p: u64) {
    #[cfg(target_arch = "x86_64")]
    {
        if available() {
            // SAFETY: `available` checked the CPU features the function is compiled for.
            unsafe { x86::mul_const_into(out, a, w, ws, p) };
            return;
        }
    }
    for (o, &x) in out.iter_mut().zip(a) {
        *o = scalar_mul(x, w, ws, p);
    }
}

/// a = a * w mod p, in place. Same requirements as [`mul_const_into`].
pub fn mul_const_assign(a: &mut [u64], w: u64, ws: u64, p: u64) {
    #[cfg(target_arch = "x86_64")]
    {
        if available() {
            // SAFETY: `available` checked the CPU features the function is compiled for.
            unsafe { x86::mul_const_assign(a, w, ws, p) };
            return;
        }
    }
    for x in a.iter_mut() {
        *x = scalar_mul(*x, w, ws, p);
    }
}

/// acc = (acc + a * w) mod p with acc < p. Same requirements as [`mul_const_into`].
pub fn mul_const_acc(acc: &mut [u64], a: &[u64], w: u64, ws: u64, p: u64) {
    #[cfg(target_arch = "x86_64")]
    {
        if available() {
            // SAFETY: `available` checked the CPU features the function is compiled for.
            unsafe { x86::mul_const_acc(acc, a, w, ws, p) };
            return;
        }
    }
    for (o, &x) in acc.iter_mut().zip(a) {
        let s = *o + scalar_mul(x, w, ws, p);
        *o = s.min(s.wrapping_sub(p));
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::scalar_mul;
    use core::arch::x86_64::*;

    #[inline(always)]
    unsafe fn lane_mul(a: __m512i, w: __m512i, ws: __m512i, p: __m512i) -> __m512i {
        let zero = _mm512_setzero_si512();
        let mask52 = _mm512_set1_epi64(((1u64 << 52) - 1) as i64);
        let q = _mm512_madd52hi_epu64(zero, a, ws);
        let lo = _mm512_madd52lo_epu64(zero, a, w);
        let qp = _mm512_madd52lo_epu64(zero, q, p);
        let r = _mm512_and_si512(_mm512_sub_epi64(lo, qp), mask52);
        _mm512_min_epu64(r, _mm512_sub_epi64(r, p))
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) unsafe fn mul_const_into(out: &mut [u64], a: &[u64], w: u64, ws: u64, p: u64) {
        let len = out.len().min(a.len());
        let body = len / 8 * 8;
        let (vw, vws, vp) = (
            _mm512_set1_epi64(w as i64),
            _mm512_set1_epi64(ws as i64),
            _mm512_set1_epi64(p as i64),
        );
        let mut j = 0;
        while j < body {
            // SAFETY: j + 8 <= len for both slices; unaligned loads/stores.
            unsafe {
                let va = _mm512_loadu_si512(a.as_ptr().add(j) as *const _);
                let r = lane_mul(va, vw, vws, vp);
                _mm512_storeu_si512(out.as_mut_ptr().add(j) as *mut _, r);
            }
            j += 8;
        }
        for k in body..len {
            out[k] = scalar_mul(a[k], w, ws, p);
        }
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) unsafe fn mul_const_assign(a: &mut [u64], w: u64, ws: u64, p: u64) {
        let len = a.len();
        let body = len / 8 * 8;
        let (vw, vws, vp) = (
            _mm512_set1_epi64(w as i64),
            _mm512_set1_epi64(ws as i64),
            _mm512_set1_epi64(p as i64),
        );
        let mut j = 0;
        while j < body {
            // SAFETY: j + 8 <= len; unaligned loads/stores.
            unsafe {
                let ptr = a.as_mut_ptr().add(j);
                let r = lane_mul(_mm512_loadu_si512(ptr as *const _), vw, vws, vp);
                _mm512_storeu_si512(ptr as *mut _, r);
            }
            j += 8;
        }
        for x in a[body..].iter_mut() {
            *x = scalar_mul(*x, w, ws, p);
        }
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) unsafe fn mul_const_acc(acc: &mut [u64], a: &[u64], w: u64, ws: u64, p: u64) {
        let len = acc.len().min(a.len());
        let body = len / 8 * 8;
        let (vw, vws, vp) = (
            _mm512_set1_epi64(w as i64),
            _mm512_set1_epi64(ws as i64),
            _mm512_set1_epi64(p as i64),
        );
        let mut j = 0;
        while j < body {
            // SAFETY: j + 8 <= len for both slices; unaligned loads/stores.
            unsafe {
                let va = _mm512_loadu_si512(a.as_ptr().add(j) as *const _);
                let vo = _mm512_loadu_si512(acc.as_ptr().add(j) as *const _);
                let s = _mm512_add_epi64(vo, lane_mul(va, vw, vws, vp));
                let s = _mm512_min_epu64(s, _mm512_sub_epi64(s, vp));
                _mm512_storeu_si512(acc.as_mut_ptr().add(j) as *mut _, s);
            }
            j += 8;
        }
        for k in body..len {
            let s = acc[k] + scalar_mul(a[k], w, ws, p);
            acc[k] = s.min(s.wrapping_sub(p));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn ifma_kernels_match_u128(
            p in (1u64 << 20)..(1u64 << 50),
            w in any::<u64>(),
            a in proptest::collection::vec(0u64..(1u64 << 52), 1..40),
        ) {
            let p = p | 1;
            let w = w % p;
            let ws = shoup52(w, p);
            let mut out = vec![0u64; a.len()];
            mul_const_into(&mut out, &a, w, ws, p);
            let mut inplace = a.clone();
            mul_const_assign(&mut inplace, w, ws, p);
            prop_assert_eq!(&inplace, &out);
            let mut acc: Vec<u64> = a.iter().map(|x| x % p).collect();
            let start = acc.clone();
            mul_const_acc(&mut acc, &a, w, ws, p);
            for i in 0..a.len() {
                let want = ((a[i] as u128 * w as u128) % p as u128) as u64;
                prop_assert_eq!(out[i], want);
                prop_assert_eq!(acc[i], (start[i] + want) % p);
            }
        }
    }
}
