//! Throughput of tfhe-rs's classic blind rotation against its multi-bit one
//! (Joye, Walter, "Liberating TFHE: programmable bootstrapping with general
//! quotient polynomials", WAHC 2022; tfhe-rs's grouping factors 2 to 4) on
//! this machine, every core busy with bootstraps of their own as heman's
//! lookups keep them: what decides whether multi-bit parameters would make
//! heman's bootstraps cheaper.
//! `cargo run --release -p heman-tfhe --example multi_bit_timing [count]`.

use std::time::Instant;

use rayon::prelude::*;
use tfhe::core_crypto::prelude::*;
use tfhe::shortint::parameters::v1_4::{
    V1_4_PARAM_MULTI_BIT_GROUP_2_MESSAGE_2_CARRY_2_KS_PBS_GAUSSIAN_2M128,
    V1_4_PARAM_MULTI_BIT_GROUP_3_MESSAGE_2_CARRY_2_KS_PBS_GAUSSIAN_2M128,
};
use tfhe::shortint::parameters::{
    MultiBitPBSParameters, PARAM_MESSAGE_2_CARRY_2_KS_PBS_GAUSSIAN_2M128,
};

/// The blind rotations per second over every core, and the time of one.
fn report(what: &str, count: usize, seconds: f64) {
    println!(
        "{what}: {count} blind rotations in {seconds:.2} s on {} threads: {:.1} ms each per thread, {:.0} per second",
        rayon::current_num_threads(),
        1e3 * seconds * rayon::current_num_threads() as f64 / count as f64,
        count as f64 / seconds
    );
}

fn classic(count: usize) {
    let p = PARAM_MESSAGE_2_CARRY_2_KS_PBS_GAUSSIAN_2M128;
    let (small, glwe, mut encryption) = keys(p.lwe_dimension, p.glwe_dimension, p.polynomial_size);
    let bsk = par_allocate_and_generate_new_lwe_bootstrap_key(
        &small,
        &glwe,
        p.pbs_base_log,
        p.pbs_level,
        p.glwe_noise_distribution,
        p.ciphertext_modulus,
        &mut encryption,
    );
    let mut fourier = FourierLweBootstrapKey::new(
        bsk.input_lwe_dimension(),
        bsk.glwe_size(),
        bsk.polynomial_size(),
        bsk.decomposition_base_log(),
        bsk.decomposition_level_count(),
    );
    par_convert_standard_lwe_bootstrap_key_to_fourier(&bsk, &mut fourier);
    let inputs = inputs(&small, count, p.lwe_noise_distribution, &mut encryption);
    let accumulator = accumulator(p.glwe_dimension.to_glwe_size(), p.polynomial_size);
    let start = Instant::now();
    inputs.par_iter().for_each_init(
        || {
            let mut buffers = ComputationBuffers::new();
            let fft = Fft::new(p.polynomial_size);
            buffers.resize(
                programmable_bootstrap_lwe_ciphertext_mem_optimized_requirement::<u64>(
                    fourier.glwe_size(),
                    p.polynomial_size,
                    fft.as_view(),
                )
                .unaligned_bytes_required(),
            );
            (buffers, fft, output(&glwe))
        },
        |(buffers, fft, out), input| {
            programmable_bootstrap_lwe_ciphertext_mem_optimized(
                input,
                out,
                &accumulator,
                &fourier,
                fft.as_view(),
                buffers.stack(),
            );
        },
    );
    report(
        &format!(
            "classic 2_2 (n = {}, level {})",
            p.lwe_dimension.0, p.pbs_level.0
        ),
        count,
        start.elapsed().as_secs_f64(),
    );
}

fn multi_bit(p: MultiBitPBSParameters, count: usize, threads_each: usize) {
    let (small, glwe, mut encryption) = keys(p.lwe_dimension, p.glwe_dimension, p.polynomial_size);
    let mut bsk = LweMultiBitBootstrapKey::new(
        0u64,
        p.glwe_dimension.to_glwe_size(),
        p.polynomial_size,
        p.pbs_base_log,
        p.pbs_level,
        p.lwe_dimension,
        p.grouping_factor,
        p.ciphertext_modulus,
    );
    par_generate_lwe_multi_bit_bootstrap_key(
        &small,
        &glwe,
        &mut bsk,
        p.glwe_noise_distribution,
        &mut encryption,
    );
    let mut fourier = FourierLweMultiBitBootstrapKey::new(
        bsk.input_lwe_dimension(),
        bsk.glwe_size(),
        bsk.polynomial_size(),
        bsk.decomposition_base_log(),
        bsk.decomposition_level_count(),
        bsk.grouping_factor(),
    );
    par_convert_standard_lwe_multi_bit_bootstrap_key_to_fourier(&bsk, &mut fourier);
    let inputs = inputs(&small, count, p.lwe_noise_distribution, &mut encryption);
    let accumulator = accumulator(p.glwe_dimension.to_glwe_size(), p.polynomial_size);
    let start = Instant::now();
    inputs.par_iter().for_each_init(
        || output(&glwe),
        |out, input| {
            multi_bit_programmable_bootstrap_lwe_ciphertext(
                input,
                out,
                &accumulator,
                &fourier,
                ThreadCount(threads_each),
                false,
            );
        },
    );
    report(
        &format!(
            "multi-bit 2_2, grouping factor {} (n = {}, level {}), {threads_each} thread(s) per rotation",
            p.grouping_factor.0, p.lwe_dimension.0, p.pbs_level.0
        ),
        count,
        start.elapsed().as_secs_f64(),
    );
}

/// A bootstrap's input and output keys, and the generator encrypting
/// under them.
fn keys(
    lwe: LweDimension,
    glwe: GlweDimension,
    polynomial: PolynomialSize,
) -> (
    LweSecretKeyOwned<u64>,
    GlweSecretKeyOwned<u64>,
    EncryptionRandomGenerator<DefaultRandomGenerator>,
) {
    let mut seeder = new_seeder();
    let mut secret = SecretRandomGenerator::<DefaultRandomGenerator>::new(seeder.seed());
    let encryption =
        EncryptionRandomGenerator::<DefaultRandomGenerator>::new(seeder.seed(), seeder.as_mut());
    let small = allocate_and_generate_new_binary_lwe_secret_key(lwe, &mut secret);
    let glwe = allocate_and_generate_new_binary_glwe_secret_key(glwe, polynomial, &mut secret);
    (small, glwe, encryption)
}

fn inputs(
    key: &LweSecretKeyOwned<u64>,
    count: usize,
    noise: DynamicDistribution<u64>,
    generator: &mut EncryptionRandomGenerator<DefaultRandomGenerator>,
) -> Vec<LweCiphertextOwned<u64>> {
    (0..count as u64)
        .map(|i| {
            allocate_and_encrypt_new_lwe_ciphertext(
                key,
                Plaintext((i % 8) << 60),
                noise,
                CiphertextModulus::new_native(),
                generator,
            )
        })
        .collect()
}

fn accumulator(size: GlweSize, polynomial: PolynomialSize) -> GlweCiphertextOwned<u64> {
    let mut acc = GlweCiphertext::new(0u64, size, polynomial, CiphertextModulus::new_native());
    for (k, c) in acc.get_mut_body().as_mut().iter_mut().enumerate() {
        *c = (k as u64) << 48;
    }
    acc
}

fn output(glwe: &GlweSecretKeyOwned<u64>) -> LweCiphertextOwned<u64> {
    LweCiphertext::new(
        0u64,
        glwe.as_lwe_secret_key().lwe_dimension().to_lwe_size(),
        CiphertextModulus::new_native(),
    )
}

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    classic(count);
    for p in [
        V1_4_PARAM_MULTI_BIT_GROUP_2_MESSAGE_2_CARRY_2_KS_PBS_GAUSSIAN_2M128,
        V1_4_PARAM_MULTI_BIT_GROUP_3_MESSAGE_2_CARRY_2_KS_PBS_GAUSSIAN_2M128,
    ] {
        multi_bit(p, count, 1);
    }
}
