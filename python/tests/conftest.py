"""Shared fixtures: the repository's digits example, the CLI binary, and
models compiled once per session."""

import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

import heman

REPO = pathlib.Path(__file__).resolve().parents[2]
DIGITS = REPO / "examples" / "digits"
SQUARE = DIGITS / "digits_square.onnx"
RELU = DIGITS / "digits_relu.onnx"
CALIBRATION = DIGITS / "calibration.npz"

# Encrypted outputs against onnxruntime's: the output flooding costs about two
# bits of precision, so 5% of the largest output, as the Rust tests allow
# (heman_testkit::FLOODED).
FLOODED = 0.05


def digits(count):
    """The first `count` test digits (label from the file name), `[1, 1, 8, 8]` each."""
    files = sorted((DIGITS / "test").glob("*.npy"), key=lambda p: int(p.stem.split("-")[1]))[:count]
    return [(np.load(f), int(f.stem.split("-")[0])) for f in files]


def onnxruntime_outputs(model, x):
    """The float model's output by onnxruntime (the reference)."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the reference: pip install onnxruntime")
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.asarray(x, dtype=np.float32)})[0]


def assert_close(actual, expected, what):
    """Within FLOODED of the largest expected output, and the same class."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    deviation = float(np.max(np.abs(actual - expected)))
    allowed = FLOODED * float(np.max(np.abs(expected)))
    assert deviation <= allowed, f"{what}: off by {deviation} (allowed {allowed})"
    assert np.array_equal(actual.argmax(axis=-1), expected.argmax(axis=-1)), f"{what}: another class"


def pytest_configure(config):
    # The simulations compile without keys, and say so: expected in tests
    # that use them for speed (test_a_simulation_warns_it_encrypts_nothing
    # checks the warning itself).
    config.addinivalue_line("filterwarnings", "ignore:ckks-sim is a cleartext simulation")


@pytest.fixture(scope="session")
def ckks_model():
    return heman.compile(SQUARE, CALIBRATION, progress=False)


@pytest.fixture(scope="session")
def ckks_client(ckks_model):
    return heman.Client(ckks_model.keyparams).keygen(progress=False)


@pytest.fixture(scope="session")
def heman_bin():
    """The `heman` binary: $HEMAN_BIN (set by .ci/run: it must exist), else
    the release build in $CARGO_TARGET_DIR or target/."""
    explicit = os.environ.get("HEMAN_BIN")
    if explicit:
        assert os.access(explicit, os.X_OK), f"HEMAN_BIN={explicit} is not an executable"
        return explicit
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for candidate in (target / "release" / "heman", shutil.which("heman")):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.skip("no heman binary: cargo build --release -p heman-cli, or set HEMAN_BIN")


def run_cli(heman_bin, *args):
    """Runs the CLI; its output on failure."""
    done = subprocess.run([heman_bin, *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, f"heman {' '.join(map(str, args))} failed:\n{done.stderr}"
    return done.stdout
