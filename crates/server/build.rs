//! Generates the gRPC code from `proto/` with `protox` (a protobuf compiler
//! in Rust), so building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/grpc_service.proto", "proto/heman_keys.proto"];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        // Ciphertexts and keys are large: `Bytes` fields decode without a copy.
        .bytes(".")
        .compile_fds(descriptors)?;
    Ok(())
}
