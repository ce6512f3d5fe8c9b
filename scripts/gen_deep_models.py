#!/usr/bin/env python3
"""Generate the deep-network benchmark models (issue 17) and their data.

Four classifiers of Fashion-MNIST, each written to tests/deep/<name>/ as

    model.onnx         the model: one float32 input of batch 1, one float32
                       output "output" of shape [1, 10] (the class scores)
    calibration.npy    64 training images, float32, N x (input shape less
                       the batch dimension): what the model owner calibrates on
    test/inputs.npy    100 test images, float32, same layout
    test/labels.npy    their true Fashion-MNIST classes, int64 [100]
                       (test/ is an evaluation set for `heman eval -d` and
                       `heman bench -d`; calibration.npy is read by `-c`)
    expected.npy       onnxruntime's output for each test input, float32
                       [100, 10]: row i is the output for test/inputs[i]
                       given as the model's input (shape [1, ...])

plus manifest.json (description, shapes, op types, parameter counts, the
preprocessing constants, the head's L2 penalty and the plaintext accuracy on 500
test images and on the 100 saved ones).

  resnet20       He et al. 2016 CIFAR ResNet-20 (3 stages x 3 basic blocks,
                 16/32/64 channels, 1x1 strided projection shortcuts, separate
                 BatchNormalization nodes), input 1x3x32x32
  six_relu_cnn   six Conv3x3-ReLU layers (8, 8, 16, 16, 16, 16 channels),
                 AveragePool 2x2 after the 2nd and 4th, GAP, Gemm; 1x1x28x28
  orion_lenet    Orion's LeNet: Conv5x5/2 (32), x*x, Conv5x5/2 (64), x*x,
                 Gemm 3136->512, x*x, Gemm 512->10; input 1x1x28x28
  orion_mlp      Gemm 784->128, x*x, Gemm 128->128, x*x, Gemm 128->10; 1x784

No network here is trained end to end (there is no deep-learning framework in
the pinned environment). The weights are random features made well scaled,
plus a fitted linear head:
  * every convolution / hidden Gemm is drawn He-initialised from a generator
    seeded by a CRC32 of the model's name;
  * each BatchNormalization (resnet20) takes its mean and variance from the
    activations that 256 training images give at its input (gamma 1, beta 0),
    so each BN output has mean 0 and variance 1 per channel; the other models
    fold the same normalisation into the layer itself (weights divided by the
    per-channel standard deviation, bias minus mean / std), so every hidden
    pre-activation has mean 0, std 1 on those images;
  * the last Gemm is fitted by softmax regression (multinomial logistic
    regression, 500 steps of Nesterov's accelerated gradient on the
    standardised features, folded back into the Gemm) over the features of
    5000 training images; its L2 penalty is the largest of 1e-4, 1e-3, 1e-2
    whose accuracy on the last 1000 of them, fitted on the other 4000, is
    within one standard error of the best.
All of that is computed in float64 numpy from the float32-rounded parameters
(so the weights do not depend on onnxruntime or, except in the last bit in
rare cases, on the CPU); the models' outputs are then onnxruntime's.

Data: Fashion-MNIST from the Debian package dataset-fashion-mnist
(/usr/share/datasets/fashion-mnist/*.gz; `apt-get install dataset-fashion-mnist`),
checked against the SHA-256 sums below. Images are scaled to [0, 1] and
standardised with the training set's mean and standard deviation (exact
integer sums). resnet20's input is the 28x28 image zero-padded to 32x32
(before standardising, with the padded set's statistics) and repeated on 3
channels; orion_mlp's is the standardised image flattened to 784 values.
Training images are drawn from a fixed permutation of the 60000 (seeded by a
CRC32 of "fashion-mnist/train"): positions 0..4999 fit the head (0..255 also
give the BatchNorm statistics), 5000..5063 are the calibration set. Test
images are the first 500 of t10k; the first 100 are saved.

Usage (from the repository root, in the venv of scripts/requirements.txt):
    .venv/bin/python scripts/gen_deep_models.py [--out tests/deep] [--data DIR] [--check]

--check regenerates into a temporary directory and compares byte-for-byte
with --out (exit status 1 on any difference). numpy and onnxruntime run on
one thread (set here), which keeps the results independent of the core count.
"""

import os

# One BLAS / onnxruntime thread: reproducible sums and a light CPU load.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import filecmp  # noqa: E402
import gzip  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_test_models import Case  # noqa: E402

OPSET = 13
CALIBRATION = 64
TEST = 100
ACCURACY_TEST = 500
FIT = 5000
VALIDATION = 1000  # the last VALIDATION of the FIT images pick the head's L2 penalty
STATS_IMAGES = 256  # images whose activations set the BatchNorm / scale statistics
HEAD_L2 = (1e-4, 1e-3, 1e-2)  # L2 penalties tried for the head (on standardised features)
HEAD_STEPS = 500  # gradient steps of the head's softmax regression
BN_EPSILON = 1e-5
CHUNK = 100  # images per numpy forward pass

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"
DATA_FILES = {
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# -- data -----------------------------------------------------------------
def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_mnist(folder):
    arrays = {}
    for name, digest in DATA_FILES.items():
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            sys.exit(f"{path} not found: install Debian's dataset-fashion-mnist "
                     "(apt-get install dataset-fashion-mnist) or pass --data DIR "
                     "holding the four Fashion-MNIST idx .gz files")
        with open(path, "rb") as f:
            got = hashlib.sha256(f.read()).hexdigest()
        if got != digest:
            sys.exit(f"{path}: SHA-256 {got}, expected {digest}")
        arrays[name.split("-")[0] + ("_x" if "images" in name else "_y")] = read_idx(path)
    return arrays


class Data:
    """The image selections every model shares, and the preprocessing."""

    def __init__(self, folder):
        a = load_fashion_mnist(folder)
        self.train_x, self.train_y = a["train_x"], a["train_y"].astype(np.int64)
        self.test_x, self.test_y = a["t10k_x"], a["t10k_y"].astype(np.int64)
        perm = np.random.default_rng(zlib.crc32(b"fashion-mnist/train")).permutation(len(self.train_x))
        self.fit_idx = perm[:FIT]
        self.calib_idx = perm[FIT:FIT + CALIBRATION]
        # Training-set mean and std of the pixel values scaled to [0, 1], from
        # exact integer sums; `pad` counts the zero border of resnet20's input.
        x = self.train_x.astype(np.int64)
        self.sum, self.sumsq, self.pixels = int(x.sum()), int((x * x).sum()), x.size

    def stats(self, pad=0):
        n = len(self.train_x) * (28 + 2 * pad) ** 2 if pad else self.pixels
        mean = self.sum / n / 255.0
        var = self.sumsq / n / 255.0 ** 2 - mean * mean
        return mean, float(np.sqrt(var))

    def images(self, kind, x):
        """uint8 [n, 28, 28] -> float32 model inputs [n, ...]."""
        x = x.astype(np.float64) / 255.0
        if kind == "gray28":
            mean, std = self.stats()
            return ((x - mean) / std).astype(np.float32)[:, None]
        if kind == "flat784":
            mean, std = self.stats()
            return ((x - mean) / std).astype(np.float32).reshape(len(x), 784)
        if kind == "rgb32":
            mean, std = self.stats(pad=2)
            x = np.pad(x, ((0, 0), (2, 2), (2, 2)))
            x = ((x - mean) / std).astype(np.float32)
            return np.repeat(x[:, None], 3, axis=1)
        raise ValueError(kind)


# -- numpy reference ops (float64) ----------------------------------------
def np_conv(x, w, b, stride, pad):
    k = w.shape[2]
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    w = w.astype(np.float64)
    out = np.concatenate([  # 32 images at a time: bounded im2col copies
        np.tensordot(win[i:i + 32], w, axes=([1, 4, 5], [1, 2, 3])) for i in range(0, len(x), 32)
    ]).transpose(0, 3, 1, 2)
    if b is not None:
        out = out + b.astype(np.float64)[None, :, None, None]
    return np.ascontiguousarray(out)


def channel_stats(y):
    """Per-channel (axis 1) mean and variance over every other axis."""
    axes = tuple(i for i in range(y.ndim) if i != 1)
    return y.mean(axis=axes), y.var(axis=axes)


class Net:
    """Runs a model function three ways, creating or reusing its parameters
    in call order:
      "calibrate"  numpy float64 on the statistics images: draws each layer's
                   weights and sets its normalisation from its input;
      "forward"    numpy float64 with the parameters fixed;
      "onnx"       emits the nodes into a gen_test_models.Case.
    Tensors are numpy arrays in the first two modes, names in the third."""

    def __init__(self, mode, rng=None, params=None, case=None):
        self.mode, self.rng, self.case = mode, rng, case
        self.params = [] if params is None else params
        self.pos = 0

    def _param(self, make):
        if self.mode == "calibrate":
            self.params.append(make())
        p = self.params[self.pos]
        self.pos += 1
        return p

    def _he(self, shape, fan_in):
        return (self.rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    @staticmethod
    def _fold(w, mean, var):
        """Weights and bias whose output is (output - mean) / std."""
        std = np.sqrt(var + BN_EPSILON)
        shape = (-1,) + (1,) * (w.ndim - 1)
        return (w / std.reshape(shape)).astype(np.float32), (-mean / std).astype(np.float32)

    def conv(self, x, cin, cout, k, stride=1, pad=None, normalise=False):
        """Conv (no bias), or with `normalise` Conv whose bias and scaled
        weights give each output channel mean 0, std 1 on the statistics
        images (a BatchNorm folded in)."""
        pad = k // 2 if pad is None else pad

        def make():
            w = self._he([cout, cin, k, k], cin * k * k)
            if not normalise:
                return w, None
            return self._fold(w, *channel_stats(np_conv(x, w, None, stride, pad)))

        w, b = self._param(make)
        if self.mode != "onnx":
            return np_conv(x, w, b, stride, pad)
        c = self.case
        inputs = [x, c.init(w)] + ([c.init(b, "b")] if b is not None else [])
        return c.node("Conv", inputs, kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4)

    def bn(self, x):
        """BatchNormalization, gamma 1 and beta 0, with the mean and variance
        of its input on the statistics images."""

        def make():
            mean, var = channel_stats(x)
            n = len(mean)
            return (np.ones(n, np.float32), np.zeros(n, np.float32),
                    mean.astype(np.float32), var.astype(np.float32))

        scale, shift, mean, var = self._param(make)
        if self.mode != "onnx":
            s = (scale / np.sqrt(var.astype(np.float64) + BN_EPSILON))[None, :, None, None]
            return (x - mean[None, :, None, None]) * s + shift[None, :, None, None]
        c = self.case
        names = [c.init(a, "bn") for a in (scale, shift, mean, var)]
        return c.node("BatchNormalization", [x] + names, epsilon=BN_EPSILON)

    def dense(self, x, nin, nout, normalise=False):
        """Gemm (transB) with He weights, normalised like `conv`."""

        def make():
            w = self._he([nout, nin], nin)
            if not normalise:
                return w, np.zeros(nout, np.float32)
            return self._fold(w, *channel_stats(x @ w.T.astype(np.float64)))

        w, b = self._param(make)
        return self.gemm(x, w, b)

    def gemm(self, x, w, b):
        if self.mode != "onnx":
            return x @ w.T.astype(np.float64) + b
        c = self.case
        return c.node("Gemm", [x, c.init(w), c.init(b, "b")], transB=1)

    def relu(self, x):
        return np.maximum(x, 0.0) if self.mode != "onnx" else self.case.node("Relu", [x])

    def square(self, x):
        return x * x if self.mode != "onnx" else self.case.node("Mul", [x, x])

    def add(self, a, b):
        return a + b if self.mode != "onnx" else self.case.node("Add", [a, b])

    def avgpool2(self, x):
        if self.mode != "onnx":
            n, ch, h, w = x.shape
            return x.reshape(n, ch, h // 2, 2, w // 2, 2).mean(axis=(3, 5))
        return self.case.node("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])

    def gap(self, x):
        """GlobalAveragePool then Flatten: [n, C]."""
        if self.mode != "onnx":
            return x.mean(axis=(2, 3))
        return self.case.node("Flatten", [self.case.node("GlobalAveragePool", [x])], axis=1)

    def flatten(self, x):
        return x.reshape(len(x), -1) if self.mode != "onnx" else self.case.node("Flatten", [x], axis=1)


# -- the models -----------------------------------------------------------
MODELS = []


def model(name, input_kind, in_shape, desc):
    def deco(fn):
        MODELS.append((name, input_kind, in_shape, desc, fn))
        return fn

    return deco


@model("resnet20", "rgb32", [1, 3, 32, 32],
       "He et al. 2016 CIFAR ResNet-20: Conv3x3(3->16)-BN-ReLU; 3 stages x 3 basic blocks "
       "(16, 32, 64 channels; Conv3x3-BN-ReLU-Conv3x3-BN, Add shortcut, ReLU; the first block "
       "of stages 2 and 3 strided 2 with a 1x1 strided Conv-BN projection shortcut); "
       "GlobalAveragePool; Gemm 64->10. 19 ReLU layers, 21 BatchNormalization nodes")
def resnet20(net, x):
    y = net.relu(net.bn(net.conv(x, 3, 16, 3)))
    cin = 16
    for stage, cout in enumerate([16, 32, 64]):
        for block in range(3):
            stride = 2 if stage > 0 and block == 0 else 1
            h = net.relu(net.bn(net.conv(y, cin, cout, 3, stride)))
            h = net.bn(net.conv(h, cout, cout, 3))
            if stride != 1 or cin != cout:
                y = net.bn(net.conv(y, cin, cout, 1, stride, pad=0))
            y = net.relu(net.add(h, y))
            cin = cout
    return net.gap(y), 64


@model("six_relu_cnn", "gray28", [1, 1, 28, 28],
       "plain six-layer CNN: six Conv3x3 (padding 1, bias: BatchNorm folded in) + ReLU with "
       "8, 8, 16, 16, 16, 16 channels, AveragePool 2x2 after the 2nd and the 4th; "
       "GlobalAveragePool; Gemm 16->10")
def six_relu_cnn(net, x):
    y, cin = x, 1
    for i, cout in enumerate([8, 8, 16, 16, 16, 16]):
        y = net.relu(net.conv(y, cin, cout, 3, normalise=True))
        if i in (1, 3):
            y = net.avgpool2(y)
        cin = cout
    return net.gap(y), 16


@model("orion_lenet", "gray28", [1, 1, 28, 28],
       "Orion's LeNet: Conv5x5 stride 2 padding 2 (1->32), x*x, Conv5x5 stride 2 padding 2 "
       "(32->64), x*x, Flatten, Gemm 3136->512, x*x, Gemm 512->10 (x*x as Mul(x, x); "
       "each layer's BatchNorm folded into its weights and bias)")
def orion_lenet(net, x):
    y = net.square(net.conv(x, 1, 32, 5, stride=2, pad=2, normalise=True))
    y = net.square(net.conv(y, 32, 64, 5, stride=2, pad=2, normalise=True))
    y = net.square(net.dense(net.flatten(y), 3136, 512, normalise=True))
    return y, 512


@model("orion_mlp", "flat784", [1, 784],
       "Orion's MLP: Gemm 784->128, x*x, Gemm 128->128, x*x, Gemm 128->10 (x*x as Mul(x, x); "
       "each layer's BatchNorm folded into its weights and bias)")
def orion_mlp(net, x):
    y = net.square(net.dense(x, 784, 128, normalise=True))
    y = net.square(net.dense(y, 128, 128, normalise=True))
    return y, 128


# -- fitting the head ------------------------------------------------------
def softmax_regression(features, labels, l2):
    """Multinomial logistic regression on the standardised features: Nesterov's
    accelerated gradient descent from zero, HEAD_STEPS steps of 1 / L, where L
    bounds the curvature of the penalised mean cross-entropy (half the largest
    eigenvalue of Z'Z / n, Z with a column of ones, plus l2). Returns
    W [10, d], b [10] in float64."""
    n, d = features.shape
    mu = features.mean(axis=0)
    sd = features.std(axis=0) + 1e-12
    z = np.hstack([(features - mu) / sd, np.ones((n, 1))])
    step = 1.0 / (0.5 * np.linalg.eigvalsh(z.T @ z / n)[-1] + l2)
    t = np.eye(10)[labels]
    a = prev = np.zeros((d + 1, 10))
    for k in range(HEAD_STEPS):
        v = a + (k / (k + 3)) * (a - prev)
        logits = z @ v
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        grad = z.T @ (p - t) / n
        grad[:d] += l2 * v[:d]
        prev, a = a, v - step * grad
    w = (a[:d] / sd[:, None]).T
    b = a[d] - (mu / sd) @ a[:d]
    return w, b


def fit_head(features, labels):
    """Fits on all but the last VALIDATION images with each penalty of HEAD_L2,
    keeps the largest whose validation accuracy is within one standard error
    of the best (smaller weights, smaller logits, for nearly the same
    accuracy), and refits with it on all the images."""
    split = len(features) - VALIDATION
    scores = []
    for l2 in HEAD_L2:
        w, b = softmax_regression(features[:split], labels[:split], l2)
        scores.append(float(np.mean(np.argmax(features[split:] @ w.T + b, axis=1) == labels[split:])))
    best = max(scores)
    se = np.sqrt(best * (1 - best) / VALIDATION)
    l2, val_acc = [(l2, a) for l2, a in zip(HEAD_L2, scores) if a >= best - se][-1]
    w, b = softmax_regression(features, labels, l2)
    return w.astype(np.float32), b.astype(np.float32), l2, val_acc


def forward(fn, params, x):
    out = []
    for i in range(0, len(x), CHUNK):
        out.append(fn(Net("forward", params=params), x[i:i + CHUNK].astype(np.float64))[0])
    return np.concatenate(out)


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


# -- one model ----------------------------------------------------------------
def write_model(out, data, name, kind, in_shape, desc, fn):
    t0 = time.time()
    fit_x = data.images(kind, data.train_x[data.fit_idx])
    fit_y = data.train_y[data.fit_idx]
    calibration = data.images(kind, data.train_x[data.calib_idx])
    test_x = data.images(kind, data.test_x[:ACCURACY_TEST])
    test_y = data.test_y[:ACCURACY_TEST]

    # Weights and normalisation statistics from the first STATS_IMAGES.
    net = Net("calibrate", rng=np.random.default_rng(zlib.crc32(name.encode())))
    fn(net, fit_x[:STATS_IMAGES].astype(np.float64))
    params = net.params
    # Head: softmax regression on the features of the FIT images.
    features = forward(fn, params, fit_x)
    w, b, l2, val_acc = fit_head(features, fit_y)
    train_acc = float(np.mean(np.argmax(features @ w.T.astype(np.float64) + b, axis=1) == fit_y))
    ref_logits = forward(fn, params, test_x) @ w.T.astype(np.float64) + b
    log(f"{name}: parameters and head in {time.time() - t0:.1f} s")

    c = Case(name, OPSET, in_shape, desc)
    net = Net("onnx", params=params, case=c)
    feats, _ = fn(net, "input")
    logits = net.gemm(feats, w, b)
    m = c.build(logits)
    m.producer_name = "heman-gen_deep_models"
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "model.onnx")
    with open(path, "wb") as f:
        f.write(m.SerializeToString())

    s = session(path)
    outputs = np.concatenate([s.run(None, {"input": x.reshape(in_shape)})[0] for x in test_x])
    pred = np.argmax(outputs, axis=1)
    acc500 = float(np.mean(pred == test_y))
    acc100 = float(np.mean(pred[:TEST] == test_y[:TEST]))
    agree = float(np.mean(pred == np.argmax(ref_logits, axis=1)))
    max_diff = float(np.max(np.abs(outputs - ref_logits)))

    np.save(os.path.join(folder, "calibration.npy"), calibration)
    os.makedirs(os.path.join(folder, "test"), exist_ok=True)
    np.save(os.path.join(folder, "test", "inputs.npy"), test_x[:TEST])
    np.save(os.path.join(folder, "test", "labels.npy"), test_y[:TEST])
    np.save(os.path.join(folder, "expected.npy"), outputs[:TEST].astype(np.float32))
    n_params = sum(int(np.prod(t.dims)) for t in m.graph.initializer)
    log(f"{name}: {os.path.getsize(path)} bytes, {n_params} parameters; accuracy "
        f"{acc500:.3f} on {ACCURACY_TEST} test images, {acc100:.2f} on the saved {TEST}, "
        f"{train_acc:.3f} on the {FIT} fit images (L2 {l2:g}); onnxruntime vs numpy "
        f"float64: argmax agree {agree:.3f}, max |diff| {max_diff:.2e}; {time.time() - t0:.1f} s")
    if agree < 0.99:
        sys.exit(f"{name}: onnxruntime and the numpy reference disagree on {1 - agree:.1%} of inputs")
    return {
        "name": name,
        "description": desc,
        "input_shape": in_shape,
        "output_shape": list(outputs[:1].shape),
        "op_types": sorted({n.op_type for n in m.graph.node}),
        "nodes": len(m.graph.node),
        "parameters": n_params,
        "preprocessing": kind,
        "calibration": CALIBRATION,
        "test": TEST,
        "head_l2": l2,
        "output_range_saved_test": [float(outputs[:TEST].min()), float(outputs[:TEST].max())],
        "accuracy": {
            f"test_first_{ACCURACY_TEST}": acc500,
            f"test_saved_{TEST}": acc100,
            f"train_fit_{FIT}": round(train_acc, 4),
            f"train_validation_{VALIDATION}_head_fit_on_{FIT - VALIDATION}": round(val_acc, 4),
        },
    }


def generate(out, data_dir):
    data = Data(data_dir)
    os.makedirs(out, exist_ok=True)
    entries = [write_model(out, data, *spec) for spec in MODELS]
    norm = {}
    for label, pad in (("28x28", 0), ("32x32 padded", 2)):
        mean, std = data.stats(pad)
        norm[label] = {"mean": mean, "std": std}
    doc = {
        "generator": "scripts/gen_deep_models.py",
        "data": "Fashion-MNIST, Debian package dataset-fashion-mnist (0.0~git20200523.55506a9-1)",
        "classes": CLASSES,
        "normalisation": norm,
        "opset": OPSET,
        "comparison_hint": "expected.npy holds onnxruntime CPU float32 outputs; compare with a tolerance",
        "models": entries,
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--out", default=os.path.join(root, "tests", "deep"))
    ap.add_argument("--data", default=DEFAULT_DATA, help="folder of the Fashion-MNIST idx .gz files")
    ap.add_argument("--check", action="store_true", help="regenerate into a temp dir and compare with --out")
    args = ap.parse_args()
    if not args.check:
        generate(args.out, args.data)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, args.data)
        names = sorted(
            os.path.relpath(os.path.join(d, f), tmp) for d, _, files in os.walk(tmp) for f in files
        )
        _, mismatch, errors = filecmp.cmpfiles(args.out, tmp, names, shallow=False)
        if mismatch or errors:
            print("differs:", *(mismatch + errors), sep="\n  ")
            return 1
        print(f"{len(names)} files identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
