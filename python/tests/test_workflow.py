"""Both parties' workflow from Python, against onnxruntime."""

import os
import stat
import threading
import time

import numpy as np
import pytest

import heman
from conftest import CALIBRATION, DIGITS, RELU, SQUARE, assert_close, onnxruntime_outputs, digits


def test_ckks_inference_matches_onnxruntime(ckks_model, ckks_client):
    keys = ckks_model.parse_keys(ckks_client.eval_keys)
    for x, label in digits(4):
        answer = ckks_model.run(ckks_client.encrypt(x), keys)
        y = ckks_client.decrypt(answer)
        assert_close(y, onnxruntime_outputs(SQUARE, x), f"digit labelled {label}")


def test_report_and_compiled_model_describe_themselves(ckks_model):
    report = ckks_model.report
    assert report.summary.startswith("N = 2^"), report.summary
    # x*x is computed exactly: nothing approximated, no agreement to measure.
    assert report.agreement is None
    assert "CKKS" in str(report)
    assert ckks_model.backend == "ckks"
    assert ckks_model.input.name == "input" and ckks_model.input.shape == (1, 1, 8, 8)
    assert [o.name for o in ckks_model.outputs] == ["output"]
    assert ckks_model.max_batch is None
    assert '"model_fingerprint"' in ckks_model.keyparams
    assert any("stage" in line or "CKKS" in line for line in ckks_model.describe())


def test_simulation_predicts_the_encrypted_result(ckks_model, ckks_client):
    x, _ = digits(1)[0]
    simulated = ckks_model.simulate(x)
    assert_close(simulated, onnxruntime_outputs(SQUARE, x), "simulation")
    assert_close(ckks_model.evaluate(x), onnxruntime_outputs(SQUARE, x), "float model")
    images = digits(20)
    predicted = ckks_model.predicted_accuracy(
        np.stack([x for x, _ in images]), labels=[label for _, label in images]
    )
    assert predicted["agreement"] >= 0.9
    assert predicted["float"] >= 0.8 and predicted["simulated"] >= 0.8


def test_approximated_activations_report_their_agreement():
    compiled = heman.compile(RELU, CALIBRATION, backend="ckks-sim", progress=False)
    agreement = compiled.report.agreement
    assert agreement.samples == 200 and agreement.same_class_with_noise is None
    assert 0.9 <= agreement.fraction <= 1.0, agreement
    assert "calibration samples" in str(compiled.report)


def test_calibration_as_arrays_measures_the_same_ranges():
    with np.load(CALIBRATION) as archive:
        samples = [archive[k] for k in sorted(archive.files, key=int)]
    from_path = heman.compile(SQUARE, CALIBRATION, backend="ckks-sim", progress=False)
    from_list = heman.compile(str(SQUARE), samples, backend="ckks-sim", progress=False)
    from_stack = heman.compile(SQUARE.read_bytes(), np.concatenate(samples), backend="ckks-sim", progress=False)
    for compiled in (from_list, from_stack):
        assert compiled.input.calibrated_range == from_path.input.calibrated_range
        assert compiled.outputs[0].calibrated_range == from_path.outputs[0].calibrated_range


def test_an_onnx_model_proto_compiles():
    onnx = pytest.importorskip("onnx", reason="onnx not installed")
    proto = onnx.load(str(SQUARE))
    compiled = heman.compile(proto, CALIBRATION, backend="ckks-sim", progress=False)
    x, _ = digits(1)[0]
    assert_close(compiled.simulate(x), onnxruntime_outputs(SQUARE, x), "ModelProto")


def test_tfhe_inference_matches_onnxruntime_classes():
    model = heman.compile(RELU, CALIBRATION, backend="tfhe", progress=False)
    client = heman.Client(model.keyparams).keygen(progress=False)
    assert client.backend == "tfhe"
    keys = model.parse_keys(client.eval_keys)
    for x, label in digits(2):
        y = client.decrypt(model.run(client.encrypt(x), keys))
        expected = onnxruntime_outputs(RELU, x)
        assert y.shape == expected.shape
        assert y.argmax() == expected.argmax(), f"digit labelled {label}: class {y.argmax()}, onnxruntime {expected.argmax()}"
        assert y.argmax() == model.simulate(x).argmax(), "the quantised model's class"
    agreement = model.report.agreement
    assert agreement.samples > 0 and agreement.same_class_with_noise is not None


def test_a_throughput_model_takes_a_batch():
    model = heman.compile(SQUARE, CALIBRATION, packing="throughput", progress=False)
    assert model.max_batch and model.max_batch >= 1024
    client = heman.Client(model.keyparams).keygen(progress=False)
    batch = np.concatenate([x for x, _ in digits(6)])  # [6, 1, 8, 8]
    y = client.decrypt(model.run(client.encrypt(batch), client.eval_keys))
    assert y.shape == (6, 10)
    for i, x in enumerate(batch):
        assert_close(y[i], onnxruntime_outputs(SQUARE, x[None])[0], f"batch item {i}")
    assert model.simulate(batch).shape == (6, 10)


def test_keys_and_models_are_saved_owner_only(tmp_path, ckks_model, ckks_client):
    ckks_client.save(tmp_path / "keys")
    assert stat.S_IMODE(os.stat(tmp_path / "keys" / "secret.key").st_mode) == 0o600
    assert sorted(os.listdir(tmp_path / "keys")) == ["eval.keys", "keyparams.json", "public.key", "secret.key"]
    reopened = heman.Client.load(tmp_path / "keys")
    assert reopened.eval_keys == ckks_client.eval_keys
    x, _ = digits(1)[0]
    assert_close(reopened.decrypt(ckks_model.run(ckks_client.encrypt(x), reopened.eval_keys)),
                 onnxruntime_outputs(SQUARE, x), "reopened keys")

    ckks_model.save(tmp_path / "digits.heman", keyparams=tmp_path / "keyparams.json")
    assert stat.S_IMODE(os.stat(tmp_path / "digits.heman").st_mode) == 0o600
    loaded = heman.load(tmp_path / "digits.heman")
    assert loaded.report is None and loaded.keyparams == ckks_model.keyparams
    assert (tmp_path / "keyparams.json").read_text() == ckks_model.keyparams
    assert heman.Client(tmp_path / "keyparams.json").keyparams == ckks_model.keyparams
    with pytest.raises(heman.HemanError, match="no float model"):
        loaded.evaluate(x)


def test_a_simulation_warns_it_encrypts_nothing():
    with pytest.warns(heman.HemanWarning, match="nothing is encrypted"):
        heman.compile(SQUARE, CALIBRATION, backend="ckks-sim", progress=False)


def test_progress_reaches_a_callback():
    seen = []
    heman.compile(SQUARE, CALIBRATION, backend="ckks-sim", progress=lambda step, done, total: seen.append((step, done, total)))
    steps = {step for step, _, _ in seen}
    assert "calibrating" in steps, steps
    assert ("calibrating", 200, 200) in seen


def test_a_failing_progress_callback_raises_after_the_call():
    def broken(step, done, total):
        raise RuntimeError("progress callback broke")

    with pytest.raises(RuntimeError, match="progress callback broke"):
        heman.compile(SQUARE, CALIBRATION, backend="ckks-sim", progress=broken)


def test_inference_releases_the_interpreter(ckks_model, ckks_client):
    """Python threads keep running while an inference runs in Rust."""
    x, _ = digits(1)[0]
    ciphertext = ckks_client.encrypt(x)
    keys = ckks_model.parse_keys(ckks_client.eval_keys)
    ticks, done = [], threading.Event()

    def count():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    try:
        start = time.perf_counter()
        result = ckks_model.infer(ciphertext, keys)
        end = time.perf_counter()
    finally:
        done.set()
        counter.join()
    during = [t for t in ticks if start < t < end]
    # With the lock held for the whole inference, the counter could not tick
    # inside it at all.
    assert len(during) >= 5, f"{len(during)} ticks during a {end - start:.3f} s inference"
    assert result.seconds > 0 and len(result.stages) == ckks_model._native.stage_count
