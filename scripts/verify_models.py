#!/usr/bin/env python3
"""Re-check tests/models/ and examples/digits/ with onnxruntime.

For every case in tests/models/manifest.json: load the model with
onnxruntime, run it on <name>.input.npy and compare with <name>.output.npy;
also run onnx's own reference evaluator as a second opinion (it is known to
differ from onnxruntime -- and from the ONNX spec -- on BatchNormalization-9
and Softmax-11 over >2-D inputs, and to reject negative Pad pads; those
mismatches are reported but not counted as failures).  Checks that every
file in tests/models/bad/ behaves as described, and re-measures the accuracy
of examples/digits/*.onnx on examples/digits/test/.

Usage: .venv/bin/python scripts/verify_models.py
"""

import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx.reference import ReferenceEvaluator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "tests", "models")
DIGITS = os.path.join(ROOT, "examples", "digits")


def sess(path_or_bytes):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(path_or_bytes, so, providers=["CPUExecutionProvider"])


def main():
    fails = 0
    man = json.load(open(os.path.join(MODELS, "manifest.json")))
    ref_diff = []
    for c in man["cases"]:
        path = os.path.join(MODELS, c["file"])
        x = np.load(os.path.join(MODELS, c["input_file"]))
        y = np.load(os.path.join(MODELS, c["output_file"]))
        s = sess(path)
        assert [i.name for i in s.get_inputs()] == [c["input"]["name"]]
        assert list(s.get_inputs()[0].shape) == c["input"]["shape"] == list(x.shape), c["name"]
        got = s.run(None, {c["input"]["name"]: x})[0]
        if got.shape != y.shape or not np.allclose(got, y, rtol=1e-5, atol=1e-6):
            print(f"FAIL {c['name']}: onnxruntime output differs from stored output")
            fails += 1
        m = onnx.load(path)
        if sorted({n.op_type for n in m.graph.node}) != c["ops"] or m.opset_import[0].version != c["opset"]:
            print(f"FAIL {c['name']}: manifest ops/opset mismatch")
            fails += 1
        try:
            r = ReferenceEvaluator(m).run(None, {c["input"]["name"]: x})[0]
            if r.shape != y.shape or not np.allclose(r, y, rtol=1e-4, atol=1e-5):
                ref_diff.append(c["name"])
        except Exception as e:  # noqa: BLE001
            ref_diff.append(f"{c['name']} ({type(e).__name__})")
    print(f"{len(man['cases'])} cases checked with onnxruntime {ort.__version__}")
    if ref_diff:
        print("onnx.reference disagrees (informational):", ", ".join(ref_diff))

    for b in man["bad"]:
        p = os.path.join(MODELS, b["file"])
        assert os.path.exists(p), p
        if b["kind"] in ("truncated", "not_onnx", "empty"):
            try:
                sess(p)
                print(f"FAIL {b['file']}: onnxruntime accepted it")
                fails += 1
            except Exception:  # noqa: BLE001
                pass
        elif b["kind"] in ("wrong_input_shape", "nan_input", "inf_input", "wrong_input_dtype"):
            x = np.load(p)
            assert list(x.shape) == b["shape"], p
    print(f"{len(man['bad'])} bad files present")

    for name in ("digits_square", "digits_relu"):
        s = sess(os.path.join(DIGITS, name + ".onnx"))
        files = sorted(os.listdir(os.path.join(DIGITS, "test")))
        ok = sum(int(s.run(None, {"input": np.load(os.path.join(DIGITS, "test", f))})[0].argmax()) == int(f.split("-")[0]) for f in files)
        print(f"{name}: {ok}/{len(files)} correct on examples/digits/test")
        if ok < 0.9 * len(files):
            fails += 1
    cal = np.load(os.path.join(DIGITS, "calibration.npz"))
    assert len(cal.files) == 200 and all(cal[k].shape == (1, 1, 8, 8) and cal[k].dtype == np.float32 for k in cal.files)
    print("OK" if fails == 0 else f"{fails} FAILURES")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
