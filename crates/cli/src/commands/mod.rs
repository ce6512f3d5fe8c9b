pub mod calibrate;
pub mod eval;
pub mod inspect;
