pub mod bench;
pub mod bench_tfhe;
pub mod calibrate;
pub mod demo;
pub mod eval;
pub mod inspect;
pub mod workflow;
