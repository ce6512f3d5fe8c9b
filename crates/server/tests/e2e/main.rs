//! End-to-end tests of the server: real servers on loopback ports, the
//! digits example compiled into a temporary model repository, keys made by a
//! data owner, inference over HTTP and gRPC, malformed requests, restarts,
//! load and an S3-compatible key store (the official Python client runs
//! against `heman serve` in the CLI's tests). One test
//! binary (one link) with shared fixtures.

mod admission;
mod common;
mod grpc;
mod http;
mod limits;
mod load;
mod s3;
mod tfhe;
