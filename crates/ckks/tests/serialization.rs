//! Serialisation round trips, seeded forms, and refusal of foreign, truncated, damaged or
//! mismatched bytes; no secret material in evaluation keys.

mod common;
use common::*;
use heman_ckks::*;

fn small() -> Ctx {
    setup(12, &[38, 32], &[38], 32)
}

#[test]
fn ciphertext_full_and_seeded_roundtrip() {
    let c = small();
    let x = random_vec(c.params.slots(), 3.0, 31);
    let pt = c.encoder.encode(&x, 1, c.params.default_scale()).unwrap();
    let ct = c.decryptor.encrypt_symmetric(&pt).unwrap();
    let full = ct.to_bytes(&c.params);
    let seeded = ct.to_bytes_seeded(&c.params).unwrap();
    assert!(
        seeded.len() * 10 < full.len() * 6,
        "{} vs {}",
        seeded.len(),
        full.len()
    );
    for bytes in [&full, &seeded] {
        let back = Ciphertext::from_bytes(&c.params, bytes).unwrap();
        assert_eq!(back.parts(), ct.parts());
        assert_eq!(back.scale(), ct.scale());
        assert!(precision_bits(&c.decrypt(&back), &x) >= 12.0);
    }
    // Public-key and evaluated ciphertexts have no seed.
    let pk_ct = c.encryptor.encrypt(&pt).unwrap();
    assert_eq!(pk_ct.to_bytes_seeded(&c.params), Err(CkksError::NotSeeded));
    let sum = c.eval.add(&ct, &ct).unwrap();
    assert_eq!(sum.to_bytes_seeded(&c.params), Err(CkksError::NotSeeded));
    // A degree-2 ciphertext round-trips too.
    let t = c.eval.mul(&pk_ct, &pk_ct).unwrap();
    assert_eq!(
        Ciphertext::from_bytes(&c.params, &t.to_bytes(&c.params)).unwrap(),
        t
    );
}

#[test]
fn plaintext_params_and_secret_key_roundtrip() {
    let c = small();
    let pt = c.encoder.encode(&[1.0, 2.0, 3.0], 0, 1e6).unwrap();
    assert_eq!(
        Plaintext::from_bytes(&c.params, &pt.to_bytes(&c.params)).unwrap(),
        pt
    );
    let p2 = CkksParameters::from_bytes(&c.params.to_bytes()).unwrap();
    assert_eq!(p2, c.params);
    assert_eq!(p2.q(), c.params.q());
    let sk_bytes = c.sk.to_bytes(&c.params);
    let sk2 = SecretKey::from_bytes(&c.params, &sk_bytes).unwrap();
    let ct = c.encrypt(&[0.5, -0.25]);
    let out = c.encoder.decode(
        &Decryptor::new(&c.params, &sk2)
            .unwrap()
            .decrypt(&ct)
            .unwrap(),
    );
    assert!((out[0] - 0.5).abs() < 1e-3 && (out[1] + 0.25).abs() < 1e-3);
}

#[test]
fn evaluation_keys_roundtrip_in_seeded_form() {
    let mut c = small();
    let gk = c.kg.gen_galois_keys(&c.sk, &[1, -3], true).unwrap();
    // One bit-packed polynomial (b) and the seed: less than one unpacked
    // polynomial, where the full form (b, a) would take two packed ones.
    let polynomial = c.params.n() * (c.params.max_level() + 1) * 8;
    let pk = c.pk.to_bytes(&c.params);
    assert!(pk.len() < polynomial * 8, "{} bytes", pk.len());
    assert_eq!(PublicKey::from_bytes(&c.params, &pk).unwrap(), c.pk);
    let rlk = c.rlk.to_bytes(&c.params);
    assert_eq!(
        RelinearizationKey::from_bytes(&c.params, &rlk).unwrap(),
        c.rlk
    );
    let gk2 = GaloisKeys::from_bytes(&c.params, &gk.to_bytes(&c.params)).unwrap();
    assert_eq!(gk2, gk);
    // Loaded keys work.
    let x = random_vec(c.params.slots(), 1.0, 32);
    let ct = c.encrypt(&x);
    let r = c.eval.rotate(&ct, -3, &gk2).unwrap();
    let n = x.len();
    let want: Vec<f64> = (0..n).map(|j| x[(j + n - 3) % n]).collect();
    assert!(precision_bits(&c.decrypt(&r), &want) >= 12.0);
}

#[test]
fn header_reports_kind_and_fingerprint() {
    let c = small();
    let info = inspect(&c.rlk.to_bytes(&c.params)).unwrap();
    assert_eq!(info.kind, ObjectKind::RelinearizationKey);
    assert!(info.seeded);
    assert_eq!(info.fingerprint, c.params.fingerprint());
}

#[test]
fn fingerprint_mismatch_and_wrong_kind_refused() {
    let c = small();
    let other = setup(12, &[38, 33], &[38], 32);
    assert_ne!(c.params.fingerprint(), other.params.fingerprint());
    let ct = c.encrypt(&[1.0]);
    let bytes = ct.to_bytes(&c.params);
    assert_eq!(
        Ciphertext::from_bytes(&other.params, &bytes),
        Err(CkksError::FingerprintMismatch)
    );
    assert_eq!(
        RelinearizationKey::from_bytes(&other.params, &c.rlk.to_bytes(&c.params)),
        Err(CkksError::FingerprintMismatch)
    );
    assert!(matches!(
        PublicKey::from_bytes(&c.params, &bytes),
        Err(CkksError::WrongKind { .. })
    ));
    // Keys of other parameters are refused by the evaluator and encryptor too.
    assert_eq!(
        c.eval
            .relinearize(&c.eval.mul(&ct, &ct).unwrap(), &other.rlk),
        Err(CkksError::FingerprintMismatch)
    );
    assert!(Encryptor::new(&c.params, &other.pk).is_err());
}

#[test]
fn truncated_garbage_and_damaged_bytes_refused() {
    let c = small();
    let ct = c.encrypt(&[1.0, 2.0]);
    let bytes = ct.to_bytes(&c.params);
    for cut in [0usize, 3, 8, 20, 52, 60, bytes.len() / 2, bytes.len() - 1] {
        let r = Ciphertext::from_bytes(&c.params, &bytes[..cut]);
        assert!(
            matches!(
                r,
                Err(CkksError::Truncated { .. }) | Err(CkksError::BadMagic)
            ),
            "cut {cut}: {r:?}"
        );
    }
    assert!(matches!(
        Ciphertext::from_bytes(&c.params, &bytes[..bytes.len() - 1]),
        Err(CkksError::Truncated { needed: 1 })
    ));
    let mut long = bytes.clone();
    long.push(0);
    assert!(matches!(
        Ciphertext::from_bytes(&c.params, &long),
        Err(CkksError::Corrupt(_))
    ));
    assert_eq!(
        Ciphertext::from_bytes(
            &c.params,
            b"PK\x03\x04 this is a zip file, not a ciphertext"
        ),
        Err(CkksError::BadMagic)
    );
    // Flip one bit anywhere after the magic: refused, never a panic.
    for pos in [
        9usize,
        10,
        11,
        12,
        45,
        60,
        100,
        bytes.len() / 2,
        bytes.len() - 5,
    ] {
        let mut bad = bytes.clone();
        bad[pos] ^= 0x10;
        let r = Ciphertext::from_bytes(&c.params, &bad);
        assert!(r.is_err(), "flip at {pos} accepted");
    }
    // Pseudo-random garbage with a valid magic is refused too.
    let mut rng = 0x1234_5678_u64;
    for len in [0usize, 10, 52, 100, 1000] {
        let mut g = heman_ckks::serialization::MAGIC.to_vec();
        for _ in 0..len {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            g.push(rng as u8);
        }
        assert!(Ciphertext::from_bytes(&c.params, &g).is_err());
        assert!(GaloisKeys::from_bytes(&c.params, &g).is_err());
        assert!(CkksParameters::from_bytes(&g).is_err());
    }
}

#[test]
fn evaluation_keys_hold_no_secret_material() {
    let mut c = small();
    let gk = c.kg.gen_galois_keys(&c.sk, &[1, 2], true).unwrap();
    // The secret key's serialised coefficients (2 bits each): no 12-byte window of them may
    // appear in what goes to the model owner.
    let sk_bytes = c.sk.to_bytes(&c.params);
    let body = &sk_bytes[52..sk_bytes.len() - 32];
    let eval_blobs = [
        c.pk.to_bytes(&c.params),
        c.rlk.to_bytes(&c.params),
        gk.to_bytes(&c.params),
    ];
    for blob in &eval_blobs {
        for w in body.chunks(12).filter(|w| w.len() == 12) {
            assert!(
                !blob.windows(12).any(|b| b == w),
                "secret key bytes in an evaluation key"
            );
        }
    }
    // The evaluation key types' Debug output shows no coefficients either.
    let dbg = format!("{:?}{:?}", c.sk, c.rlk);
    assert!(dbg.contains("SecretKey { .. }"));
    assert!(!dbg.contains("data"));
}
