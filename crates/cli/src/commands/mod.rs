pub mod bench;
pub mod calibrate;
pub mod demo;
pub mod eval;
pub mod inspect;
pub mod query;
pub mod serve;
pub mod workflow;
