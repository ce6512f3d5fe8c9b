//! The scheme layer end to end on the 2_2 preset: keys split between the
//! parties, integers through linear combinations and bootstraps, serialisation.

use std::sync::OnceLock;

use heman_tfhe::{
    ClientKey, CompressedServerKey, Encoding, InputWindow, IntegerRows, KeyChoice, LookupTable,
    LweVector, ManyLookupTable, Preset, SeededLweVector, ServerKey, HALF_TORUS,
};

const PRESET: Preset = Preset::Message2Carry2;

/// One key pair for every test of this file (key generation takes seconds).
fn keys() -> &'static (ClientKey, ServerKey) {
    static KEYS: OnceLock<(ClientKey, ServerKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let client = ClientKey::generate(PRESET);
        // The model owner receives the compressed key as bytes only.
        let bytes = client.compressed_server_key().to_bytes();
        let server = CompressedServerKey::from_bytes(PRESET, &bytes)
            .unwrap()
            .expand();
        (client, server)
    })
}

fn encrypt(client: &ClientKey, values: &[i64], encoding: Encoding) -> LweVector {
    encrypt_under(client, values, encoding, KeyChoice::Big)
}

fn encrypt_under(
    client: &ClientKey,
    values: &[i64],
    encoding: Encoding,
    key: KeyChoice,
) -> LweVector {
    let plaintexts: Vec<u64> = values.iter().map(|&v| encoding.encode(v)).collect();
    client.encrypt(&plaintexts, key).expand()
}

fn decrypt(client: &ClientKey, cts: &LweVector, encoding: Encoding) -> Vec<i64> {
    client
        .decrypt(cts)
        .unwrap()
        .into_iter()
        .map(|p| encoding.decode(p))
        .collect()
}

#[test]
fn lookup_table_maps_every_value_of_its_window() {
    let (client, server) = keys();
    // 16 values (the preset's nominal message and carry space).
    let window = InputWindow {
        encoding: Encoding::fitting(16, HALF_TORUS),
        count: 16,
    };
    let out = Encoding::new(1 << 56);
    let f = |u: u64| (u as i64 - 8) * (u as i64 - 8) - 20;
    let table = LookupTable::new(PRESET, window, |u| out.encode(f(u))).unwrap();
    let inputs: Vec<i64> = (0..16).collect();
    let cts = encrypt(client, &inputs, window.encoding);
    let result = server.bootstrap(&cts, &[table], &[0; 16]).unwrap();
    let expected: Vec<i64> = (0..16).map(f).collect();
    assert_eq!(decrypt(client, &result, out), expected);
}

/// Rows 2x0 - x1 + 3 and -x2 + x3 - 1 of four inputs in [-4, 3]: both in
/// [-16, 15]; a bias of 16 shifts them into the window [0, 32).
fn two_rows() -> IntegerRows {
    let mut rows = IntegerRows::new(4);
    rows.push_row([(0, 2), (1, -1)], 3 + 16);
    rows.push_row([(2, -1), (3, 1)], -1 + 16);
    rows.validate().unwrap();
    rows
}

#[test]
fn signed_weighted_sums_then_relu() {
    let (client, server) = keys();
    // x in [-4, 3] at a scale leaving room for the sums below.
    let encoding = Encoding::new(1 << 57);
    let xs = [-4i64, 3, 1, -2];
    let cts = encrypt(client, &xs, encoding);
    let rows = two_rows();
    let sums = rows.apply(&cts, encoding).unwrap();
    assert_eq!(decrypt(client, &sums, encoding), vec![-8 + 16, -4 + 16]);
    let window = InputWindow {
        encoding,
        count: 32,
    };
    let out = Encoding::new(1 << 56);
    let relu = LookupTable::new(PRESET, window, |u| out.encode((u as i64 - 16).max(0))).unwrap();
    let result = server.bootstrap(&sums, &[relu], &[0, 0]).unwrap();
    assert_eq!(decrypt(client, &result, out), vec![0, 0]);
    // Positive this time, through a second table picked per value.
    let xs = [3i64, -4, -3, 2];
    let sums = rows
        .apply(&encrypt(client, &xs, encoding), encoding)
        .unwrap();
    let square = LookupTable::new(PRESET, window, |u| out.encode((u as i64 - 16).pow(2))).unwrap();
    let relu = LookupTable::new(PRESET, window, |u| out.encode((u as i64 - 16).max(0))).unwrap();
    let result = server.bootstrap(&sums, &[relu, square], &[0, 1]).unwrap();
    assert_eq!(decrypt(client, &result, out), vec![13, 16]);
}

/// Inputs under the small key: weighted sums stay under it, the bootstrap
/// skips its keyswitch and answers under the big key, for single and many
/// lookup tables alike; the data owner cannot decrypt small-key values
/// with the big key by mistake.
#[test]
fn small_key_inputs_skip_the_keyswitch() {
    let (client, server) = keys();
    let encoding = Encoding::new(1 << 57);
    let xs = [-4i64, 3, 1, -2];
    let cts = encrypt_under(client, &xs, encoding, KeyChoice::Small);
    assert_eq!(cts.size(), PRESET.small_lwe_dimension() + 1);
    assert_eq!(PRESET.key_of_size(cts.size()), Some(KeyChoice::Small));
    assert!(client.decrypt(&cts).is_err());
    let rows = two_rows();
    let sums = rows.apply(&cts, encoding).unwrap();
    assert_eq!(sums.size(), cts.size());
    let window = InputWindow {
        encoding,
        count: 32,
    };
    let out = Encoding::new(1 << 56);
    let square = LookupTable::new(PRESET, window, |u| out.encode((u as i64 - 16).pow(2))).unwrap();
    let result = server.bootstrap(&sums, &[square], &[0, 0]).unwrap();
    assert_eq!(result.size(), PRESET.lwe_dimension() + 1);
    assert_eq!(decrypt(client, &result, out), vec![64, 16]);

    let half = InputWindow {
        encoding: Encoding::fitting(32, HALF_TORUS / 2),
        count: 32,
    };
    let sums = rows.apply(&cts, half.encoding).unwrap();
    let relu = |u: u64| out.encode((u as i64 - 16).max(0));
    let negated = |u: u64| out.encode(16 - u as i64);
    let table = ManyLookupTable::new(PRESET, half, &[&relu, &negated]).unwrap();
    let results = server.bootstrap_many(&sums, &[table], &[0, 0]).unwrap();
    assert_eq!(decrypt(client, &results[0], out), vec![0, 0]);
    assert_eq!(decrypt(client, &results[1], out), vec![8, 4]);

    let seeded = client.encrypt(&[encoding.encode(2)], KeyChoice::Small);
    let back = SeededLweVector::from_bytes(PRESET, &seeded.to_bytes()).unwrap();
    assert_eq!(back.expand().size(), PRESET.small_lwe_dimension() + 1);
}

#[test]
fn many_lookup_table_gives_two_functions_of_one_input() {
    let (client, server) = keys();
    let window = InputWindow {
        encoding: Encoding::fitting(8, HALF_TORUS / 2),
        count: 8,
    };
    let out = Encoding::new(1 << 56);
    let relu = |u: u64| out.encode((u as i64 - 4).max(0));
    let negated = |u: u64| out.encode(4 - u as i64);
    let table = ManyLookupTable::new(PRESET, window, &[&relu, &negated]).unwrap();
    let inputs: Vec<i64> = (0..8).collect();
    let cts = encrypt(client, &inputs, window.encoding);
    let results = server.bootstrap_many(&cts, &[table], &[0; 8]).unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(
        decrypt(client, &results[0], out),
        vec![0, 0, 0, 0, 0, 1, 2, 3]
    );
    assert_eq!(
        decrypt(client, &results[1], out),
        vec![4, 3, 2, 1, 0, -1, -2, -3]
    );
}

/// Trivial ciphertexts carry no noise through the bootstrap, so the value
/// each table position stands for shows exactly: it must be what
/// `InputWindow::read` predicts, for windows up to N values (exact) and
/// beyond (rounded).
#[test]
fn noise_free_reads_match_the_window_model() {
    let (client, server) = keys();
    let n = PRESET.polynomial_size() as u64;
    for count in [16, n - 1, n, 3 * n + 5] {
        let window = InputWindow::finest(PRESET, count, 1);
        let table = LookupTable::new(PRESET, window, |u| u).unwrap();
        let inputs: Vec<u64> = (0..count)
            .step_by(((count / 300) as usize).max(1))
            .collect();
        let plaintexts: Vec<u64> = inputs
            .iter()
            .map(|&u| window.encoding.encode(u as i64))
            .collect();
        let cts = LweVector::trivial(PRESET, &plaintexts);
        let out = server
            .bootstrap(&cts, &[table], &vec![0; inputs.len()])
            .unwrap();
        let phases = client.decrypt(&out).unwrap();
        for (&u, &read) in inputs.iter().zip(&phases) {
            assert_eq!(
                read,
                window.read(PRESET, 1, u).unwrap(),
                "count {count}, u {u}"
            );
            if count < n {
                assert_eq!(read, u);
            }
        }
    }
}

#[test]
fn windows_that_do_not_fit_are_refused() {
    let too_wide = InputWindow {
        encoding: Encoding::new(1 << 59),
        count: 17,
    };
    assert!(LookupTable::new(PRESET, too_wide, |u| u).is_err());
    let half = InputWindow {
        encoding: Encoding::new(1 << 59),
        count: 16,
    };
    assert!(LookupTable::new(PRESET, half, |u| u).is_ok());
    assert!(ManyLookupTable::new(PRESET, half, &[&|u| u, &|u| u]).is_err());
}

#[test]
fn serialisation_round_trips_and_refuses_other_parameters() {
    let (client, _) = keys();
    let encoding = Encoding::new(1 << 55);
    let seeded = client.encrypt(&[encoding.encode(5), encoding.encode(-3)], KeyChoice::Big);
    let bytes = seeded.to_bytes();
    // A seeded vector costs one word per value plus the seed.
    assert!(bytes.len() < 64);
    let back = SeededLweVector::from_bytes(PRESET, &bytes).unwrap();
    assert_eq!(back, seeded);
    let expanded = back.expand();
    assert_eq!(decrypt(client, &expanded, encoding), vec![5, -3]);
    let again = LweVector::from_bytes(PRESET, &expanded.to_bytes()).unwrap();
    assert_eq!(again, expanded);
    assert!(LweVector::from_bytes(Preset::Message3Carry3, &expanded.to_bytes()).is_err());
    assert!(LweVector::from_bytes(PRESET, &expanded.to_bytes()[..100]).is_err());
    assert!(SeededLweVector::from_bytes(PRESET, &bytes[..bytes.len() - 1]).is_err());

    let secret = client.to_bytes();
    let restored = ClientKey::from_bytes(PRESET, &secret).unwrap();
    assert_eq!(decrypt(&restored, &expanded, encoding), vec![5, -3]);
    assert!(ClientKey::from_bytes(Preset::Message3Carry3, &secret).is_err());
    assert!(ClientKey::from_bytes(PRESET, &secret[..secret.len() / 2]).is_err());

    let server_bytes = client.compressed_server_key().to_bytes();
    assert!(CompressedServerKey::from_bytes(Preset::Message3Carry3, &server_bytes).is_err());
    assert!(CompressedServerKey::from_bytes(PRESET, &server_bytes[..1000]).is_err());
    // The compressed server key holds no secret: it is far larger than the
    // secret key but must not contain it verbatim.
    assert!(server_bytes.len() > 100 * secret.len());
}

#[test]
fn mismatched_shapes_are_errors_not_panics() {
    let (client, server) = keys();
    let cts = encrypt(client, &[1, 2, 3], Encoding::new(1 << 58));
    let mut rows = IntegerRows::new(2);
    rows.push_row([(0, 1)], 0);
    assert!(rows.apply(&cts, Encoding::new(1)).is_err());
    let window = InputWindow {
        encoding: Encoding::new(1 << 58),
        count: 8,
    };
    let table = LookupTable::new(PRESET, window, |u| u).unwrap();
    assert!(server
        .bootstrap(&cts, std::slice::from_ref(&table), &[0, 0])
        .is_err());
    assert!(server.bootstrap(&cts, &[table], &[0, 0, 1]).is_err());
    let mut bad = IntegerRows::new(2);
    bad.push_row([(5, 1)], 0);
    assert!(bad.validate().is_err());
}
