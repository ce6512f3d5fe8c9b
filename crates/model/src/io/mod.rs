//! Reading and writing arrays: `.npy` files and sets of them.

pub mod dataset;
pub mod npy;
