#!/usr/bin/env bash
# Coverage-guided fuzzing of one heman-fuzz target with libFuzzer, on the
# stable toolchain: sanitizer coverage comes from -C flags, libFuzzer from
# the libfuzzer-sys crate (built with the machine's C++ compiler).
#
#   scripts/fuzz.sh TARGET [SECONDS]      e.g. scripts/fuzz.sh keyparams 600
#   scripts/fuzz.sh list
#
# The run starts from crates/fuzz/corpus/TARGET (read only) and keeps what it
# finds under $HEMAN_FUZZ_WORK (default target/fuzz/TARGET); crashes are
# written there as crash-*, replayed with
#   HEMAN_FUZZ_TARGET=TARGET HEMAN_FUZZ_INPUT=FILE \
#     cargo test --release --workspace --test short_run -- --ignored replay
set -euo pipefail
cd "$(dirname "$0")/.."

targets="ckks_object container tfhe_object keyparams npy onnx http_request grpc_request"
if [ "${1:-}" = "list" ] || [ $# -lt 1 ]; then
  echo "targets: $targets"
  [ $# -ge 1 ]
  exit
fi
target="$1"
seconds="${2:-600}"
case " $targets " in *" $target "*) ;; *) echo "unknown target $target; one of: $targets" >&2; exit 2 ;; esac

triple="$(rustc -vV | sed -n 's/^host: //p')"
export CARGO_TARGET_DIR="${HEMAN_FUZZ_TARGET_DIR:-$PWD/target/fuzz-build}"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# --target keeps RUSTFLAGS off build scripts and proc macros.
cargo build --release --manifest-path fuzz/Cargo.toml --target "$triple" >&2
binary="$CARGO_TARGET_DIR/$triple/release/heman-fuzz-libfuzzer"

work="${HEMAN_FUZZ_WORK:-$PWD/target/fuzz/$target}"
mkdir -p "$work/corpus"
cd "$work"
HEMAN_FUZZ_TARGET="$target" "$binary" corpus "$OLDPWD/crates/fuzz/corpus/$target" \
  -max_total_time="$seconds" -max_len=1048576 -rss_limit_mb=4096 -timeout=30 \
  -print_final_stats=1 -artifact_prefix="$work/"
