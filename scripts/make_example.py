#!/usr/bin/env python3
"""Train heman's bundled example network on scikit-learn's 8x8 digits.

Pure numpy (forward and backward written out by hand), fixed seeds, runs in
well under a minute on one CPU core.  Writes into examples/digits/:

    digits_square.onnx   Conv(1->4,3x3,pad 1) -> x*x -> Flatten -> Gemm(256->32) -> x*x -> Gemm(32->10)
    digits_relu.onnx     the same architecture with Relu instead of x*x
    calibration.npz      200 training images, keys "0".."199", each 1x1x8x8 float32
    test/<label>-<k>.npy first 100 images of the test split (k = index in the test split)
    input.npy            test image 0 (1x1x8x8 float32)
    README.md            architecture, provenance and onnxruntime accuracies

Data: sklearn.datasets.load_digits() (bundled with scikit-learn, no download),
1797 images; the first 1500 are the training split and the last 297 the test
split.  Pixels are divided by 16 so inputs lie in [0, 1].

Usage (from the repository root):
    .venv/bin/python scripts/make_example.py [--out examples/digits]
"""

import argparse
import os
import shutil
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits

OPSET = 13
N_TRAIN = 1500
N_CALIB = 200
N_TEST_FILES = 100
CONV_CH = 4
HIDDEN = 32


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


def load_data():
    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]


def im2col(x):
    """[N,1,8,8] -> [N,64,9] patches of the zero-padded (pad 1) image."""
    n = x.shape[0]
    xp = np.pad(x[:, 0], ((0, 0), (1, 1), (1, 1)))
    cols = np.empty((n, 8, 8, 9), dtype=np.float32)
    for ki in range(3):
        for kj in range(3):
            cols[:, :, :, ki * 3 + kj] = xp[:, ki:ki + 8, kj:kj + 8]
    return cols.reshape(n, 64, 9)


# ---------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------


def init_params(rng, act):
    # Small init for the square activation keeps x^2 -> x^4 growth in check.
    g = 0.5 if act == "square" else 1.0
    return {
        "wc": (rng.standard_normal((CONV_CH, 9)) * g * np.sqrt(2.0 / 9)).astype(np.float32),
        "bc": np.zeros(CONV_CH, np.float32),
        "w1": (rng.standard_normal((HIDDEN, 256)) * g * np.sqrt(1.0 / 256)).astype(np.float32),
        "b1": np.zeros(HIDDEN, np.float32),
        "w2": (rng.standard_normal((10, HIDDEN)) * np.sqrt(1.0 / HIDDEN)).astype(np.float32),
        "b2": np.zeros(10, np.float32),
    }


def act_fwd(z, act):
    return z * z if act == "square" else np.maximum(z, 0)


def act_bwd(z, act):
    return 2 * z if act == "square" else (z > 0).astype(np.float32)


def forward(p, cols, act):
    # conv as patches @ W^T : [N,64,4] -> channel-major [N,4,64] (ONNX NCHW order)
    zc = np.einsum("npk,ck->ncp", cols, p["wc"]) + p["bc"][None, :, None]
    ac = act_fwd(zc, act)
    f = ac.reshape(len(cols), CONV_CH * 64)
    z1 = f @ p["w1"].T + p["b1"]
    a1 = act_fwd(z1, act)
    z2 = a1 @ p["w2"].T + p["b2"]
    return z2, (zc, f, z1, a1)


def loss_grad(p, cols, y, act, wd):
    n = len(y)
    logits, (zc, f, z1, a1) = forward(p, cols, act)
    m = logits.max(1, keepdims=True)
    e = np.exp(logits - m)
    prob = e / e.sum(1, keepdims=True)
    loss = -np.mean(np.log(prob[np.arange(n), y] + 1e-12))
    d2 = prob
    d2[np.arange(n), y] -= 1
    d2 /= n
    g = {}
    g["w2"] = d2.T @ a1 + wd * p["w2"]
    g["b2"] = d2.sum(0)
    da1 = d2 @ p["w2"]
    dz1 = da1 * act_bwd(z1, act)
    g["w1"] = dz1.T @ f + wd * p["w1"]
    g["b1"] = dz1.sum(0)
    df = dz1 @ p["w1"]
    dzc = df.reshape(zc.shape) * act_bwd(zc, act)
    g["wc"] = np.einsum("ncp,npk->ck", dzc, cols) + wd * p["wc"]
    g["bc"] = dzc.sum((0, 2))
    return loss, g


def shift_batch(x, rng):
    """Random translation by -1, 0 or +1 pixel in each direction (zero fill)."""
    out = np.zeros_like(x)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    di = rng.integers(0, 3, len(x))
    dj = rng.integers(0, 3, len(x))
    for n in range(len(x)):
        out[n] = xp[n, :, di[n]:di[n] + 8, dj[n]:dj[n] + 8]
    return out


def train(x, y, act, seed, epochs=60, lr=3e-3, batch=50, wd=1e-4, augment=True):
    rng = np.random.default_rng(seed)
    p = init_params(rng, act)
    cols = im2col(x)
    mom = {k: np.zeros_like(v) for k, v in p.items()}
    vel = {k: np.zeros_like(v) for k, v in p.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    t = 0
    n = len(y)
    for ep in range(epochs):
        order = rng.permutation(n)
        lr_ep = lr * (0.5 * (1 + np.cos(np.pi * ep / epochs)))  # cosine decay
        tot = 0.0
        for s in range(0, n, batch):
            idx = order[s:s + batch]
            bc = im2col(shift_batch(x[idx], rng)) if augment else cols[idx]
            loss, g = loss_grad(p, bc, y[idx], act, wd)
            tot += loss * len(idx)
            t += 1
            for k in p:
                gk = np.clip(g[k], -5.0, 5.0)
                mom[k] = b1 * mom[k] + (1 - b1) * gk
                vel[k] = b2 * vel[k] + (1 - b2) * gk * gk
                mh = mom[k] / (1 - b1 ** t)
                vh = vel[k] / (1 - b2 ** t)
                p[k] = (p[k] - lr_ep * mh / (np.sqrt(vh) + eps)).astype(np.float32)
        if not np.isfinite(tot):
            raise RuntimeError(f"{act}: training diverged at epoch {ep}")
        if ep % 10 == 9 or ep == epochs - 1:
            acc = np.mean(forward(p, cols, act)[0].argmax(1) == y)
            print(f"  [{act}] epoch {ep + 1:3d} loss {tot / n:.4f} train acc {acc:.4f}")
    return p


# ---------------------------------------------------------------------------
# ONNX export
# ---------------------------------------------------------------------------


def to_onnx(p, act, name):
    inits = [
        numpy_helper.from_array(p["wc"].reshape(CONV_CH, 1, 3, 3).astype(np.float32), "conv.weight"),
        numpy_helper.from_array(p["bc"].astype(np.float32), "conv.bias"),
        numpy_helper.from_array(p["w1"].astype(np.float32), "fc1.weight"),
        numpy_helper.from_array(p["b1"].astype(np.float32), "fc1.bias"),
        numpy_helper.from_array(p["w2"].astype(np.float32), "fc2.weight"),
        numpy_helper.from_array(p["b2"].astype(np.float32), "fc2.bias"),
    ]

    def act_node(i, o):
        if act == "square":
            return helper.make_node("Mul", [i, i], [o], name=o)
        return helper.make_node("Relu", [i], [o], name=o)

    nodes = [
        helper.make_node("Conv", ["input", "conv.weight", "conv.bias"], ["conv"], name="conv",
                         kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]),
        act_node("conv", "act1"),
        helper.make_node("Flatten", ["act1"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc1.weight", "fc1.bias"], ["fc1"], name="fc1", transB=1),
        act_node("fc1", "act2"),
        helper.make_node("Gemm", ["act2", "fc2.weight", "fc2.bias"], ["output"], name="fc2", transB=1),
    ]
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 10])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="heman-make_example", producer_version="1")
    model.ir_version = helper.find_min_ir_version_for([helper.make_opsetid("", OPSET)])  # 7
    onnx.checker.check_model(model, full_check=True)
    return model


def ort_session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_predict(sess, xs):
    return np.array([int(sess.run(None, {"input": x[None]})[0].argmax()) for x in xs])


# ---------------------------------------------------------------------------


README = """# digits — heman's bundled example network

Small CNNs for the 8x8 handwritten digits of scikit-learn
(`sklearn.datasets.load_digits`, bundled with scikit-learn; no download), used
by `heman demo` so that the first command of the top-level README works without
external data.

## Files

| file | content |
|---|---|
| `digits_square.onnx` | Conv(1→4, 3x3, stride 1, pad 1, bias) → x·x (`Mul(x, x)`) → Flatten → Gemm(256→32) → x·x → Gemm(32→10) |
| `digits_relu.onnx` | the same architecture with `Relu` instead of x·x |
| `input.npy` | test image 0 (label {first_label}), float32 `[1,1,8,8]` |
| `test/<label>-<k>.npy` | the first {n_test_files} images of the test split, float32 `[1,1,8,8]`; the file name starts with the true label, `k` is the index in the test split |
| `calibration.npz` | {n_calib} training images (training indices 0..{n_calib_m1}), keys `"0"`…`"{n_calib_m1}"`, each float32 `[1,1,8,8]` |

Both models: opset {opset}, IR version {ir}, input `input` float32 `[1,1,8,8]`
(pixel values / 16, i.e. in [0, 1]), output `output` float32 `[1,10]` (logits;
the predicted class is the argmax). Ops: Conv, Mul (digits_square) or Relu
(digits_relu), Flatten, Gemm (transB=1). Weights are initializers;
{n_params} parameters.

## Accuracy (onnxruntime {ort_version}, CPU, float32)

| model | `test/` files ({n_test_files}) | full test split ({n_test}) |
|---|---|---|
| digits_square.onnx | {sq_files} | {sq_full} |
| digits_relu.onnx | {re_files} | {re_full} |

## How it was generated

```sh
python3 -m venv .venv
.venv/bin/pip install -r scripts/requirements.txt
.venv/bin/python scripts/make_example.py     # writes examples/digits/
```

Data: 1797 images; the first {n_train} are the training split and the last
{n_test} the test split (no shuffling). Training is pure numpy (hand-written
forward/backward, im2col convolution; nothing but numpy): softmax cross-entropy, Adam
(lr {lr}, cosine decay, batch {batch}, {epochs} epochs, L2 weight decay {wd},
gradient clipping at ±5), random ±1-pixel translations of each training
batch as augmentation, numpy seed {seed_sq} (square) / {seed_re} (relu);
the square variant uses a 0.5× smaller initialisation to keep x⁴ growth in
check. Re-running the script reproduces the files (up to floating-point
differences across numpy builds/CPUs).

Magnitudes relevant for encrypted evaluation, over the full test split:
max |conv output| {sq_max_conv:.3g} / max |fc1 output| {sq_max_fc1:.3g} /
max |logit| {sq_max_out:.3g} for digits_square; {re_max_conv:.3g} / {re_max_fc1:.3g} /
{re_max_out:.3g} for digits_relu.
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--out", default=os.path.join(root, "examples", "digits"))
    args = ap.parse_args()
    out = args.out
    t0 = time.time()

    xtr, ytr, xte, yte = load_data()
    os.makedirs(out, exist_ok=True)

    hp = dict(epochs=60, lr=3e-3, batch=50, wd=1e-3)
    seeds = {"square": 1, "relu": 1}
    results = {}
    for act, fname in (("square", "digits_square"), ("relu", "digits_relu")):
        p = train(xtr, ytr, act, seeds[act], **hp)
        model = to_onnx(p, act, fname)
        path = os.path.join(out, fname + ".onnx")
        with open(path, "wb") as f:
            f.write(model.SerializeToString())
        sess = ort_session(path)
        pred = ort_predict(sess, xte)
        np_pred = forward(p, im2col(xte), act)[0].argmax(1)
        assert np.array_equal(pred, np_pred), f"{fname}: onnxruntime disagrees with numpy"
        logits, (zc, _f, z1, _a1) = forward(p, im2col(xte), act)
        results[act] = {
            "full": float(np.mean(pred == yte)),
            "files": float(np.mean(pred[:N_TEST_FILES] == yte[:N_TEST_FILES])),
            "max_conv": float(np.abs(zc).max()),
            "max_fc1": float(np.abs(z1).max()),
            "max_out": float(np.abs(logits).max()),
            "n_params": int(sum(v.size for v in p.values())),
            "ir": model.ir_version,
        }
        print(f"{fname}: onnxruntime accuracy {results[act]['files']:.2%} on {N_TEST_FILES} test files, "
              f"{results[act]['full']:.2%} on the {len(yte)}-image test split")
        if results[act]["full"] < 0.90:
            print(f"ERROR: {fname} below 90% test accuracy", file=sys.stderr)
            return 1

    # data files
    np.savez(os.path.join(out, "calibration.npz"),
             **{str(i): xtr[i][None].astype(np.float32) for i in range(N_CALIB)})
    tdir = os.path.join(out, "test")
    if os.path.isdir(tdir):
        shutil.rmtree(tdir)
    os.makedirs(tdir)
    for k in range(N_TEST_FILES):
        np.save(os.path.join(tdir, f"{yte[k]}-{k}.npy"), xte[k][None].astype(np.float32))
    np.save(os.path.join(out, "input.npy"), xte[0][None].astype(np.float32))

    # re-check the written test files with onnxruntime
    for act, fname in (("square", "digits_square"), ("relu", "digits_relu")):
        sess = ort_session(os.path.join(out, fname + ".onnx"))
        ok = 0
        files = sorted(os.listdir(tdir))
        for fn in files:
            x = np.load(os.path.join(tdir, fn))
            assert x.shape == (1, 1, 8, 8) and x.dtype == np.float32
            ok += int(sess.run(None, {"input": x})[0].argmax()) == int(fn.split("-")[0])
        assert len(files) == N_TEST_FILES and abs(ok / N_TEST_FILES - results[act]["files"]) < 1e-9

    sq, re_ = results["square"], results["relu"]
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(README.format(
            first_label=int(yte[0]), n_test_files=N_TEST_FILES, n_calib=N_CALIB, n_calib_m1=N_CALIB - 1,
            opset=OPSET, ir=sq["ir"], n_params=sq["n_params"], ort_version=ort.__version__,
            n_test=len(yte), n_train=len(ytr),
            sq_files=f"{sq['files']:.0%}", sq_full=f"{sq['full']:.2%} ({round(sq['full'] * len(yte))}/{len(yte)})",
            re_files=f"{re_['files']:.0%}", re_full=f"{re_['full']:.2%} ({round(re_['full'] * len(yte))}/{len(yte)})",
            lr=hp["lr"], batch=hp["batch"], epochs=hp["epochs"], wd=hp["wd"],
            seed_sq=seeds["square"], seed_re=seeds["relu"],
            sq_max_conv=sq["max_conv"], sq_max_fc1=sq["max_fc1"], sq_max_out=sq["max_out"],
            re_max_conv=re_["max_conv"], re_max_fc1=re_["max_fc1"], re_max_out=re_["max_out"],
        ))
    print(f"done in {time.time() - t0:.1f}s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
