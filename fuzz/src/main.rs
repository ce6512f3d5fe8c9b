//! libFuzzer on one of heman-fuzz's targets, named by `HEMAN_FUZZ_TARGET`.
//! Panics and aborts (an allocation above heman_fuzz::ALLOCATION_BOUND) are
//! crashes; libFuzzer saves their inputs.

#![no_main]

use std::sync::OnceLock;

#[global_allocator]
static ALLOCATOR: heman_fuzz::TrackingAllocator = heman_fuzz::TrackingAllocator;

fn target() -> heman_fuzz::Target {
    static TARGET: OnceLock<heman_fuzz::Target> = OnceLock::new();
    *TARGET.get_or_init(|| {
        let name = std::env::var("HEMAN_FUZZ_TARGET").unwrap_or_default();
        heman_fuzz::target(&name).unwrap_or_else(|| {
            let names: Vec<_> = heman_fuzz::TARGETS.iter().map(|t| t.name).collect();
            panic!("HEMAN_FUZZ_TARGET={name:?}: one of {names:?}")
        })
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    (target().run)(data);
});
