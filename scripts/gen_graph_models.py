#!/usr/bin/env python3
"""Generate the branching-graph models heman's encrypted-inference tests run.

Each case is a small network of the shape people train (residual blocks,
inverted residuals, fire modules, squeeze-and-excitation, a value read by
three nodes), with random weights and BatchNorm statistics, written to
tests/graphs/ as

    <name>.onnx              the model (one float32 input, one float32 output)
    <name>.calibration.npz   200 inputs the model owner calibrates on
    <name>.test/             100 other inputs, <i>.npy, with labels.npy: the
                             class onnxruntime's output picks for each (the
                             layout `heman eval -d` reads)
    <name>.expected.npz      onnxruntime's outputs for the test inputs (for
                             a model with several outputs, <k>_<j> is output
                             j of input k)

plus manifest.json (name, description, shapes, op types). Everything is
deterministic: each case draws from a generator seeded by a CRC32 of its
name. The model builder is gen_test_models.Case.

Usage (from the repository root, in the venv of scripts/requirements.txt):
    .venv/bin/python scripts/gen_graph_models.py [--out tests/graphs] [--check]
"""

import argparse
import filecmp
import json
import os
import sys
import tempfile
import zlib

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_test_models import Case  # noqa: E402

CALIBRATION = 200
TEST = 100
CASES = []


def case(name, in_shape, desc):
    def deco(fn):
        CASES.append((name, in_shape, desc, fn))
        return fn

    return deco


def conv(c, x, cin, cout, k, stride=1, group=1, bias=False):
    """Conv with He-scaled random weights, 'same' padding."""
    fan_in = cin // group * k * k
    w = c.rand([cout, cin // group, k, k], scale=np.sqrt(2.0 / fan_in))
    inputs = [x, c.init(w)]
    if bias:
        inputs.append(c.init(c.rand([cout], 0.1)))
    pad = k // 2
    return c.node(
        "Conv", inputs, kernel_shape=[k, k], strides=[stride, stride],
        pads=[pad] * 4, group=group,
    )


def batch_norm(c, x, channels):
    """BatchNormalization with random inference statistics."""
    scale = c.rng.uniform(0.5, 1.5, channels).astype(np.float32)
    shift = c.rand([channels], 0.1)
    mean = c.rand([channels], 0.1)
    var = c.rng.uniform(0.5, 1.5, channels).astype(np.float32)
    names = [c.init(a, "bn") for a in (scale, shift, mean, var)]
    return c.node("BatchNormalization", [x] + names, epsilon=1e-5)


def conv_bn(c, x, cin, cout, k, stride=1, group=1):
    return batch_norm(c, conv(c, x, cin, cout, k, stride, group), cout)


def classifier(c, x, channels, stats, classes=10):
    """GlobalAveragePool, Flatten, Gemm: the usual head, its weights divided
    by the pooled features' spread and its bias centring them (what a
    trained head does), so that random weights still give varied classes."""
    g = c.node("GlobalAveragePool", [x])
    f = c.node("Flatten", [g], axis=1)
    w = c.rand([classes, channels], scale=np.sqrt(2.0 / channels))
    mean, std = stats
    w = (w / std).astype(np.float32)
    b = (c.rand([classes], 0.1) - w @ mean).astype(np.float32)
    return c.node("Gemm", [f, c.init(w), c.init(b)], transB=1)


def silu(c, x):
    return c.node("Mul", [x, c.node("Sigmoid", [x])])


@case("resnet_basic_blocks", [1, 4, 8, 8],
      "two ResNet basic blocks: identity skip, then a stride-2 block with a 1x1 projection skip; GAP, Gemm")
def _(c):
    y = c.node("Relu", [conv_bn(c, "input", 4, 4, 3)])
    y = conv_bn(c, y, 4, 4, 3)
    x = c.node("Relu", [c.node("Add", [y, "input"])])
    y = c.node("Relu", [conv_bn(c, x, 4, 8, 3, stride=2)])
    y = conv_bn(c, y, 8, 8, 3)
    skip = conv_bn(c, x, 4, 8, 1, stride=2)
    x = c.node("Relu", [c.node("Add", [y, skip])])
    return x, 8


@case("mobilenetv2_inverted_residual", [1, 4, 8, 8],
      "MobileNetV2 inverted residual: 1x1 expand, ReLU6, depthwise 3x3, ReLU6, linear 1x1 bottleneck, residual Add")
def _(c):
    relu6 = lambda x: c.node("Clip", [x, c.init(np.float32(0.0)), c.init(np.float32(6.0))])
    y = relu6(conv_bn(c, "input", 4, 12, 1))
    y = relu6(conv_bn(c, y, 12, 12, 3, group=12))
    y = conv_bn(c, y, 12, 4, 1)
    x = c.node("Add", ["input", y])
    return x, 4


@case("squeezenet_fire", [1, 4, 8, 8],
      "SqueezeNet fire module: 1x1 squeeze, ReLU, 1x1 and 3x3 expand branches, ReLU each, Concat")
def _(c):
    s = c.node("Relu", [conv(c, "input", 4, 4, 1, bias=True)])
    e1 = c.node("Relu", [conv(c, s, 4, 6, 1, bias=True)])
    e3 = c.node("Relu", [conv(c, s, 4, 6, 3, bias=True)])
    x = c.node("Concat", [e1, e3], axis=1)
    return x, 12


@case("efficientnet_silu_se", [1, 4, 6, 6],
      "EfficientNet-style block: 1x1 expand with SiLU (x * sigmoid(x)), squeeze-and-excitation gate (GAP, 1x1, SiLU, 1x1, Sigmoid, Mul), 1x1 project, residual Add")
def _(c):
    y = silu(c, conv_bn(c, "input", 4, 8, 1))
    g = c.node("GlobalAveragePool", [y])
    g = silu(c, conv(c, g, 8, 2, 1, bias=True))
    g = c.node("Sigmoid", [conv(c, g, 2, 8, 1, bias=True)])
    y = c.node("Mul", [y, g])
    y = conv_bn(c, y, 8, 4, 1)
    x = c.node("Add", ["input", y])
    return x, 4


@case("three_consumers", [1, 16],
      "a hidden value read by three nodes: a Gemm-ReLU branch, its square and a linear skip, summed into the logits")
def _(c):
    def dense(x, n_in, n_out):
        w = c.rand([n_out, n_in], scale=np.sqrt(2.0 / n_in))
        return c.node("Gemm", [x, c.init(w), c.init(c.rand([n_out], 0.1))], transB=1)

    h = c.node("Tanh", [dense("input", 16, 12)])
    a = dense(c.node("Relu", [dense(h, 12, 12)]), 12, 10)
    b = dense(c.node("Mul", [h, h]), 12, 10)
    s = dense(h, 12, 10)
    return c.node("Add", [c.node("Add", [a, b]), s]), None


@case("two_heads", [1, 4, 8, 8],
      "two outputs of one trunk: class probabilities (Conv-BN-ReLU twice, GAP, Gemm, Softmax) and a 3-value auxiliary head read off the first block (1x1 Conv, GAP, Flatten)")
def _(c):
    y = c.node("Relu", [conv_bn(c, "input", 4, 6, 3)])
    aux = c.node("GlobalAveragePool", [conv(c, y, 6, 3, 1, bias=True)])
    c.extra_outputs = [(c.node("Flatten", [aux], axis=1), "aux")]
    c.softmax = True
    return c.node("Relu", [conv_bn(c, y, 6, 6, 3)]), 6


def inputs(rng, shape, count):
    return (rng.standard_normal([count] + shape) * 0.7).astype(np.float32)


def pooled_statistics(name, in_shape, desc, fn, calibration):
    """Mean and spread of the body's globally pooled features over the
    calibration inputs (the body built alone, from the same seed)."""
    c = Case(name, 13, in_shape, desc)
    features, _ = fn(c)
    body = c.build(c.node("GlobalAveragePool", [features]))
    session = ort.InferenceSession(body.SerializeToString(), providers=["CPUExecutionProvider"])
    pooled = np.stack([session.run(None, {"input": x})[0].ravel() for x in calibration])
    return pooled.mean(axis=0), pooled.std(axis=0) + 1e-3


def write_case(out, name, in_shape, desc, fn):
    rng = np.random.default_rng(zlib.crc32((name + "/inputs").encode()))
    calibration = inputs(rng, in_shape, CALIBRATION)
    test = inputs(rng, in_shape, TEST)
    c = Case(name, 13, in_shape, desc)
    features, channels = fn(c)
    if channels is not None:
        stats = pooled_statistics(name, in_shape, desc, fn, calibration)
        features = classifier(c, features, channels, stats)
    if getattr(c, "softmax", False):
        features = c.node("Softmax", [features], axis=1)
    extra = getattr(c, "extra_outputs", [])
    model = c.build(features, extra_outputs=extra)
    path = os.path.join(out, name + ".onnx")
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    expected = [session.run(None, {"input": x}) for x in test]
    save = lambda suffix, arrays: np.savez(
        os.path.join(out, f"{name}.{suffix}.npz"), **arrays
    )
    save("calibration", {f"{k:03}": a for k, a in enumerate(calibration)})
    if extra:
        save("expected", {f"{k:03}_{j}": a for k, ys in enumerate(expected) for j, a in enumerate(ys)})
    else:
        save("expected", {f"{k:03}": ys[0] for k, ys in enumerate(expected)})
    folder = os.path.join(out, f"{name}.test")
    os.makedirs(folder, exist_ok=True)
    for k, x in enumerate(test):
        np.save(os.path.join(folder, f"{k}.npy"), x)
    labels = np.array([int(np.argmax(ys[0])) for ys in expected], dtype=np.int64)
    np.save(os.path.join(folder, "labels.npy"), labels)
    entry = {
        "name": name,
        "description": desc,
        "input_shape": in_shape,
        "output_shape": list(expected[0][0].shape),
        "op_types": sorted({n.op_type for n in model.graph.node}),
        "calibration": CALIBRATION,
        "test": TEST,
    }
    if extra:
        entry["outputs"] = [
            {"name": o.name, "shape": list(y.shape)} for o, y in zip(model.graph.output, expected[0])
        ]
    return entry


def generate(out):
    os.makedirs(out, exist_ok=True)
    manifest = [write_case(out, *spec) for spec in CASES]
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tests/graphs")
    ap.add_argument("--check", action="store_true", help="compare a fresh run with --out")
    args = ap.parse_args()
    if not args.check:
        generate(args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp)
        names = sorted(
            os.path.relpath(os.path.join(root, f), tmp)
            for root, _, files in os.walk(tmp)
            for f in files
        )
        _, mismatch, errors = filecmp.cmpfiles(args.out, tmp, names, shallow=False)
        if mismatch or errors:
            print("differs:", *(mismatch + errors))
            sys.exit(1)
        print(f"{len(names)} files identical")


if __name__ == "__main__":
    main()
