//! Element-wise loops over residue vectors, compiled twice: a portable version and one with
//! AVX-512 enabled (selected at run time), so that LLVM vectorises the same simple code with
//! 8-lane 64-bit compares and gathers, which the x86-64 baseline (SSE2) lacks.

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512dq")
    })
}

macro_rules! dispatch {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident : $ty:ty),*) $body:block) => {
        $(#[$doc])*
        #[inline]
        pub fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq")]
                fn wide($($arg: $ty),*) {
                    body($($arg),*)
                }
                if has_avx512() {
                    // SAFETY: the CPU supports the features `wide` was compiled for.
                    unsafe { wide($($arg),*) };
                    return;
                }
            }
            body($($arg),*)
        }
    };
}

dispatch! {
    /// a = (a + b) mod q for a, b < q.
    fn add_mod(a: &mut [u64], b: &[u64], q: u64) {
        for (x, &y) in a.iter_mut().zip(b) {
            let s = *x + y;
            *x = s.min(s.wrapping_sub(q));
        }
    }
}

dispatch! {
    /// a = (a - b) mod q for a, b < q.
    fn sub_mod(a: &mut [u64], b: &[u64], q: u64) {
        for (x, &y) in a.iter_mut().zip(b) {
            let s = x.wrapping_sub(y);
            *x = s.min(s.wrapping_add(q));
        }
    }
}

dispatch! {
    /// a = -a mod q for a < q.
    fn neg_mod(a: &mut [u64], q: u64) {
        for x in a.iter_mut() {
            let s = q - *x;
            *x = if s == q { 0 } else { s };
        }
    }
}

dispatch! {
    /// a = (a + c) mod q for a, c < q.
    fn add_scalar_mod(a: &mut [u64], c: u64, q: u64) {
        for x in a.iter_mut() {
            let s = *x + c;
            *x = s.min(s.wrapping_sub(q));
        }
    }
}

dispatch! {
    /// out = x - p for x >= p, else x (one conditional subtraction).
    fn cond_sub(out: &mut [u64], x: &[u64], p: u64) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = v.min(v.wrapping_sub(p));
        }
    }
}

dispatch! {
    /// out = (out + shift) mod p where x > half (turns x mod p into (x - q) mod p).
    fn center_shift(out: &mut [u64], x: &[u64], half: u64, shift: u64, p: u64) {
        for (o, &v) in out.iter_mut().zip(x) {
            let s = *o + if v > half { shift } else { 0 };
            *o = s.min(s.wrapping_sub(p));
        }
    }
}

dispatch! {
    /// `out[i] = src[perm[i]]`.
    fn gather(out: &mut [u64], src: &[u64], perm: &[u32]) {
        for (o, &p) in out.iter_mut().zip(perm) {
            *o = src[p as usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_scalar_definitions() {
        let q = (1u64 << 50) - 27;
        let a: Vec<u64> = (0..64u64).map(|i| (i * 0x1234_5678_9abc) % q).collect();
        let b: Vec<u64> = (0..64u64).map(|i| (i * 0x0fed_cba9_8765 + 7) % q).collect();
        let mut s = a.clone();
        add_mod(&mut s, &b, q);
        let mut d = a.clone();
        sub_mod(&mut d, &b, q);
        let mut ng = a.clone();
        neg_mod(&mut ng, q);
        for i in 0..64 {
            assert_eq!(s[i], ((a[i] as u128 + b[i] as u128) % q as u128) as u64);
            assert_eq!(
                d[i],
                ((a[i] as i128 - b[i] as i128).rem_euclid(q as i128)) as u64
            );
            assert_eq!(ng[i], (q - a[i]) % q);
        }
        let perm: Vec<u32> = (0..64u32).rev().collect();
        let mut g = vec![0; 64];
        gather(&mut g, &a, &perm);
        assert_eq!(g[0], a[63]);
    }
}
