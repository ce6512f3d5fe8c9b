//! The compiled plans' serialised form, pinned: a compiled model file is
//! bincode of the plan, so any change to the plan's types (a field, a
//! variant, an order) changes the file format. The traced schema of each
//! plan type is compared with the one recorded in `tests/plan_format/`
//! together with the format version it was recorded under: a change of the
//! types without a new `FORMAT_VERSION` fails here, so that files of
//! another heman are refused by version rather than misread.
//!
//! After changing a plan type: raise its `FORMAT_VERSION`, then run this
//! test with `HEMAN_RECORD_PLAN_FORMAT=1` to record the new schema.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_reflection::{Registry, Tracer, TracerConfig};

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Recorded {
    /// The plan type's `FORMAT_VERSION` when the schema was recorded.
    version: u16,
    /// Every type the plan holds, as serde sees it.
    schema: Registry,
}

/// Traces `T` with every variant of the enums it holds (serde-reflection
/// traces one variant of a nested enum unless that enum is traced itself).
macro_rules! schema {
    ($root:ty, $($enum:ty),*) => {{
        let mut tracer = Tracer::new(TracerConfig::default());
        $(tracer.trace_simple_type::<$enum>().expect("the plan's types trace");)*
        tracer
            .trace_simple_type::<$root>()
            .expect("the plan's types trace");
        tracer.registry().expect("every type traced completely")
    }};
}

fn check(name: &str, version: u16, schema: Registry) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/plan_format")
        .join(format!("{name}.json"));
    let current = Recorded { version, schema };
    let recorded: Option<Recorded> = std::fs::read(&path)
        .ok()
        .map(|bytes| serde_json::from_slice(&bytes).expect("a recorded schema"));
    if std::env::var_os("HEMAN_RECORD_PLAN_FORMAT").is_some() {
        if let Some(old) = &recorded {
            assert!(
                old.schema == current.schema || old.version != version,
                "{name}: the schema changed but FORMAT_VERSION is still {version}: raise it first"
            );
        }
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_vec_pretty(&current).unwrap()).unwrap();
        return;
    }
    let recorded = recorded.unwrap_or_else(|| {
        panic!(
            "{} missing: record it with HEMAN_RECORD_PLAN_FORMAT=1",
            path.display()
        )
    });
    assert!(
        recorded.schema == current.schema,
        "{name}: the plan's types changed: raise its FORMAT_VERSION (now {version}) and record the schema again (HEMAN_RECORD_PLAN_FORMAT=1)"
    );
    assert_eq!(
        recorded.version, version,
        "{name}: FORMAT_VERSION changed without a change of schema, or the record is stale: record it again"
    );
}

#[test]
fn the_ckks_plan_format_is_pinned_to_its_version() {
    check(
        "ckks",
        heman_compiler::ckks::Plan::FORMAT_VERSION,
        // The compiled model carries the output flooding beside the plan.
        schema!(
            (
                heman_compiler::ckks::Plan,
                heman_compiler::ckks::flooding::OutputFlooding
            ),
            heman_compiler::ckks::StageOp,
            heman_compiler::ckks::Packing,
            heman_compiler::ckks::flooding::FloodingTarget,
            heman_model::ops::Op,
            heman_model::ops::elementwise::BinaryKind,
            heman_model::ops::Activation,
            heman_model::ops::pad::PadMode,
            heman_model::ops::PoolKind
        ),
    );
}

#[cfg(feature = "tfhe")]
#[test]
fn the_tfhe_plan_format_is_pinned_to_its_version() {
    check(
        "tfhe",
        heman_compiler::tfhe::Plan::FORMAT_VERSION,
        schema!(
            heman_compiler::tfhe::Plan,
            heman_compiler::tfhe::PlanStage,
            heman_model::ops::Op,
            heman_model::ops::elementwise::BinaryKind,
            heman_model::ops::Activation,
            heman_model::ops::pad::PadMode,
            heman_model::ops::PoolKind,
            heman_compiler::tfhe::Term,
            heman_compiler::tfhe::Function,
            heman_tfhe::KeyChoice,
            heman_tfhe::Preset
        ),
    );
}
