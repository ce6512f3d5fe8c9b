#!/usr/bin/env python3
"""Generate small ONNX test models for heman's loader/evaluator tests.

Every case is one ONNX model with a single static-shape float32 input and a
single float32 output; weights are initializers.  For each case we write

    tests/models/<name>.onnx
    tests/models/<name>.input.npy    fixed random float32 input
    tests/models/<name>.output.npy   onnxruntime's output for that input

plus tests/models/manifest.json describing every case, and a set of
deliberately broken files under tests/models/bad/ (see BAD_CASES below).

Everything is deterministic: each case draws from its own numpy Generator
seeded from a CRC32 of its name (so adding a case never changes the others),
and the ONNX files are serialised without any timestamps.

Usage (from the repository root):
    python3 -m venv .venv
    .venv/bin/pip install -r scripts/requirements.txt
    .venv/bin/python scripts/gen_test_models.py [--out tests/models] [--check]

--check regenerates into a temporary directory and compares byte-for-byte
with the committed files (exit status 1 on any difference).
"""

import argparse
import filecmp
import json
import os
import shutil
import sys
import tempfile
import zlib

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

F32 = TensorProto.FLOAT


def ir_version_for(opset):
    """Smallest IR version that declares `opset` (what the exporters emit).

    opset 9 -> 4, 11 -> 6, 13 -> 7, 15..18 -> 8, 19/20 -> 9, 21/22 -> 10.
    """
    return helper.find_min_ir_version_for([helper.make_opsetid("", opset)])


class Case:
    """Builder for one test model."""

    def __init__(self, name, opset, in_shape, desc, input_range=(-1.0, 1.0)):
        self.name = name
        self.opset = opset
        self.in_shape = list(in_shape)
        self.desc = desc
        self.rng = np.random.default_rng(zlib.crc32(name.encode()))
        self.nodes = []
        self.inits = []
        self.counter = 0
        self.input_range = input_range
        self.notes = None

    # -- helpers -----------------------------------------------------------
    def fresh(self, prefix):
        self.counter += 1
        return f"{prefix}_{self.counter}"

    def rand(self, shape, scale=0.5):
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def init(self, array, prefix="w"):
        name = self.fresh(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, n_out=1, **attrs):
        outs = [self.fresh(op.lower()) for _ in range(n_out)]
        self.nodes.append(
            helper.make_node(op, inputs, outs, name=self.fresh("n_" + op), **attrs)
        )
        return outs[0] if n_out == 1 else outs

    # -- finishing ---------------------------------------------------------
    def build(self, out_name, in_name="input", extra_outputs=()):
        """The model whose output is `out_name`, renamed "output"; each
        (tensor, name) of `extra_outputs` becomes a further output."""
        renames = [(out_name, "output")] + list(extra_outputs)
        for tensor, final in renames:
            for n in self.nodes:
                for i, o in enumerate(n.output):
                    if o == tensor:
                        n.output[i] = final
                for i, x in enumerate(n.input):
                    if x == tensor:
                        n.input[i] = final
        finals = [final for _, final in renames]
        graph = helper.make_graph(
            self.nodes,
            self.name,
            [helper.make_tensor_value_info(in_name, F32, self.in_shape)],
            [helper.make_tensor_value_info(final, F32, None) for final in finals],
            initializer=self.inits,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", self.opset)],
            producer_name="heman-gen_test_models",
            producer_version="1",
        )
        model.ir_version = ir_version_for(self.opset)
        # Infer the static output shapes and write them into the graph outputs.
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        for k, final in enumerate(finals):
            out_vi = None
            for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
                if vi.name == final and vi.type.tensor_type.HasField("shape"):
                    out_vi = vi
            if out_vi is not None:
                model.graph.output[k].CopyFrom(out_vi)
        onnx.checker.check_model(model, full_check=True)
        return model


# Each case function takes a Case already carrying name/opset/input shape and
# returns the name of the output tensor.  Registered via @case(...).
CASES = []


def case(name, opset, in_shape, desc, **kw):
    def deco(fn):
        CASES.append((name, opset, in_shape, desc, kw, fn))
        return fn

    return deco


def I64(*v):
    return np.array(v, dtype=np.int64)


def scalar(v):
    return np.array(v, dtype=np.float32)


# ---------------------------------------------------------------------------
# Element-wise arithmetic and broadcasting
# ---------------------------------------------------------------------------


@case("sub_channel_const", 13, [1, 3, 4, 4], "x - c with c of shape [3,1,1] (per-channel broadcast)")
def _(c):
    return c.node("Sub", ["input", c.init(c.rand([3, 1, 1]))])


@case("sub_const_minus_x", 13, [1, 3, 4, 4], "c - x: constant is the FIRST operand, c shape [1,3,1,1]")
def _(c):
    return c.node("Sub", [c.init(c.rand([1, 3, 1, 1])), "input"])


@case("sub_two_branches", 13, [1, 2, 3, 3], "x*x - x (both operands computed)")
def _(c):
    sq = c.node("Mul", ["input", "input"])
    return c.node("Sub", [sq, "input"])


@case("sub_scalar_const", 13, [1, 2, 3, 3], "x - 0.25 with a 0-d constant")
def _(c):
    return c.node("Sub", ["input", c.init(scalar(0.25))])


@case("div_scalar_const", 13, [1, 2, 4, 4], "x / 4.0 with a 0-d (scalar) constant")
def _(c):
    return c.node("Div", ["input", c.init(scalar(4.0))])


@case("div_channel_const", 13, [1, 3, 2, 2], "x / c with c of shape [3,1,1], c away from 0")
def _(c):
    d = (c.rng.uniform(0.5, 2.0, [3, 1, 1]) * c.rng.choice([-1, 1], [3, 1, 1])).astype(np.float32)
    return c.node("Div", ["input", c.init(d)])


@case("add_channel_const", 13, [1, 3, 4, 4], "x + c with c of shape [3,1,1]")
def _(c):
    return c.node("Add", ["input", c.init(c.rand([3, 1, 1]))])


@case("add_scalar_const", 13, [1, 3, 4, 4], "x + 0.75 with a 0-d constant")
def _(c):
    return c.node("Add", ["input", c.init(scalar(0.75))])


@case("add_scalar_first", 13, [1, 3, 2, 2], "c + x with c of shape [1] as FIRST operand")
def _(c):
    return c.node("Add", [c.init(np.array([-0.5], np.float32)), "input"])


@case("add_lastdim_const", 13, [1, 2, 3, 4], "x + c with c of shape [4] (broadcast along last axis)")
def _(c):
    return c.node("Add", ["input", c.init(c.rand([4]))])


@case("add_full_const", 13, [1, 2, 3, 3], "x + c with c of the same full shape")
def _(c):
    return c.node("Add", ["input", c.init(c.rand([1, 2, 3, 3]))])


@case("mul_channel_const", 13, [1, 3, 4, 4], "x * c with c of shape [3,1,1]")
def _(c):
    return c.node("Mul", ["input", c.init(c.rand([3, 1, 1]))])


@case("mul_scalar_const", 13, [1, 3, 4, 4], "x * -1.5 with a 0-d constant")
def _(c):
    return c.node("Mul", ["input", c.init(scalar(-1.5))])


@case("mul_square", 13, [1, 2, 4, 4], "x * x as Mul(x, x)")
def _(c):
    return c.node("Mul", ["input", "input"])


@case("mul_two_branches", 13, [1, 4], "(x + a) * (x * b) with two computed operands")
def _(c):
    a = c.node("Add", ["input", c.init(c.rand([4]))])
    b = c.node("Mul", ["input", c.init(c.rand([1, 4]))])
    return c.node("Mul", [a, b])


@case("add_broadcast_two_branches", 13, [1, 3, 2, 2], "Add of [1,3,2,2] and computed [1,3,1,1] (GlobalAveragePool branch)")
def _(c):
    g = c.node("GlobalAveragePool", ["input"])
    return c.node("Add", ["input", g])


@case("pow_2_float", 13, [1, 2, 3, 3], "Pow(x, 2.0) with 0-d float exponent")
def _(c):
    return c.node("Pow", ["input", c.init(scalar(2.0))])


@case("pow_3_float", 13, [1, 2, 3, 3], "Pow(x, 3.0) with 0-d float exponent (negative bases)")
def _(c):
    return c.node("Pow", ["input", c.init(scalar(3.0))])


@case("pow_2_int64", 15, [1, 6], "Pow(x, 2) with 0-d int64 exponent (allowed since opset 12)")
def _(c):
    return c.node("Pow", ["input", c.init(np.array(2, np.int64), "e")])


@case("pow_3_float_1d", 9, [1, 6], "Pow(x, [3.0]) at opset 9 with shape-[1] exponent")
def _(c):
    return c.node("Pow", ["input", c.init(np.array([3.0], np.float32))])


# ---------------------------------------------------------------------------
# MatMul / Gemm
# ---------------------------------------------------------------------------


@case("matmul_2d", 13, [2, 8], "MatMul [2,8] x W[8,5]")
def _(c):
    return c.node("MatMul", ["input", c.init(c.rand([8, 5]))])


@case("matmul_3d_bcast", 13, [2, 3, 8], "MatMul batched [2,3,8] x 2-D W[8,5] (broadcast)")
def _(c):
    return c.node("MatMul", ["input", c.init(c.rand([8, 5]))])


@case("matmul_const_first", 13, [8, 3], "MatMul W[4,8] x input[8,3] (constant on the left)")
def _(c):
    return c.node("MatMul", [c.init(c.rand([4, 8])), "input"])


@case("matmul_add", 13, [1, 6], "MatMul + Add bias (the usual Linear export)")
def _(c):
    m = c.node("MatMul", ["input", c.init(c.rand([6, 4]))])
    return c.node("Add", [m, c.init(c.rand([4]))])


@case("gemm_alpha_beta", 13, [2, 6], "Gemm alpha=0.5 beta=2.0, C shape [N]")
def _(c):
    return c.node("Gemm", ["input", c.init(c.rand([6, 4])), c.init(c.rand([4]))], alpha=0.5, beta=2.0)


@case("gemm_transA", 13, [6, 2], "Gemm transA=1 (input is [K,M]=[6,2]), C [N]")
def _(c):
    return c.node("Gemm", ["input", c.init(c.rand([6, 4])), c.init(c.rand([4]))], transA=1)


@case("gemm_transB", 13, [1, 6], "Gemm transB=1 (B is [N,K]=[4,6]), C [N] (the usual Linear export)")
def _(c):
    return c.node("Gemm", ["input", c.init(c.rand([4, 6])), c.init(c.rand([4]))], transB=1)


@case("gemm_transA_transB_alpha", 13, [6, 3], "Gemm transA=1 transB=1 alpha=-1.25 beta=0.5, C [1,N]")
def _(c):
    return c.node(
        "Gemm", ["input", c.init(c.rand([4, 6])), c.init(c.rand([1, 4]))],
        transA=1, transB=1, alpha=-1.25, beta=0.5,
    )


@case("gemm_c_1xN", 13, [3, 6], "Gemm with C of shape [1,N]")
def _(c):
    return c.node("Gemm", ["input", c.init(c.rand([6, 4])), c.init(c.rand([1, 4]))])


@case("gemm_c_MxN", 13, [3, 6], "Gemm with C of full shape [M,N]")
def _(c):
    return c.node("Gemm", ["input", c.init(c.rand([6, 4])), c.init(c.rand([3, 4]))])


@case("gemm_c_scalar", 13, [2, 6], "Gemm with C of shape [1] (unidirectional broadcast)")
def _(c):
    return c.node("Gemm", ["input", c.init(c.rand([6, 4])), c.init(np.array([0.3], np.float32))])


@case("gemm_no_c", 13, [2, 6], "Gemm without C (optional since opset 11)")
def _(c):
    return c.node("Gemm", ["input", c.init(c.rand([6, 4]))])


@case("gemm_no_c_beta", 11, [2, 6], "Gemm without C and beta=3 (beta must be ignored), opset 11")
def _(c):
    return c.node("Gemm", ["input", c.init(c.rand([6, 4]))], beta=3.0, transB=0)


@case("gemm_v9", 9, [1, 6], "Gemm opset 9 (C required), transB=1 alpha=2")
def _(c):
    return c.node("Gemm", ["input", c.init(c.rand([3, 6])), c.init(c.rand([3]))], transB=1, alpha=2.0)


@case("gemm_c_Mx1", 13, [3, 6], "Gemm with C of shape [M,1] (broadcast along columns)")
def _(c):
    return c.node("Gemm", ["input", c.init(c.rand([6, 4])), c.init(c.rand([3, 1]))])


@case("matmul_1d_input", 13, [8], "MatMul with a 1-D input [8] x W[8,5] -> [5] (numpy matmul semantics)")
def _(c):
    return c.node("MatMul", ["input", c.init(c.rand([8, 5]))])


@case("matmul_vec_weight", 13, [2, 8], "MatMul [2,8] x 1-D W[8] -> [2]")
def _(c):
    return c.node("MatMul", ["input", c.init(c.rand([8]))])


# ---------------------------------------------------------------------------
# Conv
# ---------------------------------------------------------------------------


@case("conv1d", 13, [1, 2, 10], "Conv 1-D, kernel 3, pads [1,1], bias")
def _(c):
    return c.node("Conv", ["input", c.init(c.rand([3, 2, 3])), c.init(c.rand([3]))], kernel_shape=[3], pads=[1, 1])


@case("conv1d_stride_dilation", 13, [1, 2, 13], "Conv 1-D stride 2 dilation 2 asymmetric pads [2,0], no kernel_shape attr")
def _(c):
    return c.node("Conv", ["input", c.init(c.rand([2, 2, 3])), c.init(c.rand([2]))], strides=[2], dilations=[2], pads=[2, 0])


@case("conv2d_strides_pads_dilations", 13, [1, 2, 9, 10], "Conv 2-D strides [2,1], asymmetric pads [1,0,2,1], dilations [1,2], 3x3")
def _(c):
    return c.node(
        "Conv", ["input", c.init(c.rand([3, 2, 3, 3])), c.init(c.rand([3]))],
        kernel_shape=[3, 3], strides=[2, 1], pads=[1, 0, 2, 1], dilations=[1, 2],
    )


@case("conv2d_rect_kernel", 13, [1, 2, 7, 6], "Conv 2-D 2x3 kernel, strides [1,2], no pads")
def _(c):
    return c.node("Conv", ["input", c.init(c.rand([2, 2, 2, 3])), c.init(c.rand([2]))], strides=[1, 2])


@case("conv2d_same_upper", 13, [1, 2, 7, 8], "Conv auto_pad=SAME_UPPER, 4x4 kernel, stride 2 (odd total pad)")
def _(c):
    return c.node("Conv", ["input", c.init(c.rand([2, 2, 4, 4])), c.init(c.rand([2]))], auto_pad="SAME_UPPER", strides=[2, 2], kernel_shape=[4, 4])


@case("conv2d_same_lower", 13, [1, 2, 7, 8], "Conv auto_pad=SAME_LOWER, 4x4 kernel, stride 2 (odd total pad)")
def _(c):
    return c.node("Conv", ["input", c.init(c.rand([2, 2, 4, 4])), c.init(c.rand([2]))], auto_pad="SAME_LOWER", strides=[2, 2], kernel_shape=[4, 4])


@case("conv2d_same_upper_s1", 13, [1, 1, 5, 5], "Conv auto_pad=SAME_UPPER, 2x2 kernel, stride 1 (pad only at end)")
def _(c):
    return c.node("Conv", ["input", c.init(c.rand([2, 1, 2, 2])), c.init(c.rand([2]))], auto_pad="SAME_UPPER")


@case("conv2d_valid", 13, [1, 2, 7, 8], "Conv auto_pad=VALID, 3x3 kernel, stride 2")
def _(c):
    return c.node("Conv", ["input", c.init(c.rand([2, 2, 3, 3])), c.init(c.rand([2]))], auto_pad="VALID", strides=[2, 2])


@case("conv2d_group2", 13, [1, 4, 6, 6], "Conv group=2: 4 in, 6 out, W [6,2,3,3], pads 1")
def _(c):
    return c.node("Conv", ["input", c.init(c.rand([6, 2, 3, 3])), c.init(c.rand([6]))], group=2, pads=[1, 1, 1, 1])


@case("conv2d_depthwise", 13, [1, 3, 6, 6], "Depthwise Conv group=C=3, W [3,1,3,3]")
def _(c):
    return c.node("Conv", ["input", c.init(c.rand([3, 1, 3, 3])), c.init(c.rand([3]))], group=3, pads=[1, 1, 1, 1])


@case("conv2d_depthwise_mult2", 13, [1, 3, 5, 5], "Depthwise Conv group=3 with channel multiplier 2, W [6,1,3,3], no bias")
def _(c):
    return c.node("Conv", ["input", c.init(c.rand([6, 1, 3, 3]))], group=3)


@case("conv2d_nobias", 13, [1, 2, 5, 5], "Conv 2-D without bias input")
def _(c):
    return c.node("Conv", ["input", c.init(c.rand([3, 2, 3, 3]))], pads=[1, 1, 1, 1])


@case("conv2d_1x1", 13, [1, 3, 4, 4], "Conv 2-D pointwise 1x1 kernel")
def _(c):
    return c.node("Conv", ["input", c.init(c.rand([2, 3, 1, 1])), c.init(c.rand([2]))])


@case("conv3d", 13, [1, 1, 4, 5, 5], "Conv 3-D 2x3x3 kernel, pads [0,1,1,1,0,1], strides [1,2,1]")
def _(c):
    return c.node("Conv", ["input", c.init(c.rand([2, 1, 2, 3, 3])), c.init(c.rand([2]))], pads=[0, 1, 1, 1, 0, 1], strides=[1, 2, 1])


@case("conv2d_v9", 9, [1, 2, 6, 6], "Conv at opset 9 (Conv-1), stride 2, pads 1")
def _(c):
    return c.node("Conv", ["input", c.init(c.rand([3, 2, 3, 3])), c.init(c.rand([3]))], strides=[2, 2], pads=[1, 1, 1, 1])


# ---------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------


@case("avgpool_cip0", 13, [1, 2, 7, 7], "AveragePool 3x3 stride 2, pads [1,1,1,1], count_include_pad=0")
def _(c):
    return c.node("AveragePool", ["input"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=0)


@case("avgpool_cip1", 13, [1, 2, 7, 7], "AveragePool 3x3 stride 2, pads [1,1,1,1], count_include_pad=1")
def _(c):
    return c.node("AveragePool", ["input"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)


@case("avgpool_asym_pads_cip0", 13, [1, 1, 6, 5], "AveragePool 2x3 strides [2,1], asymmetric pads [0,1,1,2], count_include_pad=0, ceil_mode=0")
def _(c):
    return c.node("AveragePool", ["input"], kernel_shape=[2, 3], strides=[2, 1], pads=[0, 1, 1, 2], count_include_pad=0, ceil_mode=0)


@case("avgpool_asym_pads_cip1", 13, [1, 1, 6, 5], "AveragePool 2x3 strides [2,1], asymmetric pads [0,1,1,2], count_include_pad=1, ceil_mode=0")
def _(c):
    return c.node("AveragePool", ["input"], kernel_shape=[2, 3], strides=[2, 1], pads=[0, 1, 1, 2], count_include_pad=1, ceil_mode=0)


@case("avgpool_1d_cip0", 13, [1, 2, 9], "AveragePool 1-D kernel 4 stride 3 pads [2,1] count_include_pad=0")
def _(c):
    return c.node("AveragePool", ["input"], kernel_shape=[4], strides=[3], pads=[2, 1], count_include_pad=0)


@case("avgpool_same_upper", 13, [1, 1, 5, 5], "AveragePool 2x2 stride 2 auto_pad=SAME_UPPER (count_include_pad=0)")
def _(c):
    return c.node("AveragePool", ["input"], kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_UPPER")


@case("avgpool_ceil", 13, [1, 1, 6, 6], "AveragePool 3x3 stride 2 ceil_mode=1 (optional; last window clipped)")
def _(c):
    c.notes = "ceil_mode=1: the last window starts inside the input but runs past it; onnxruntime averages over the in-bounds elements only"
    return c.node("AveragePool", ["input"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)


@case("avgpool_v9", 9, [1, 2, 6, 6], "AveragePool at opset 9 (AveragePool-7), count_include_pad=1, pads 1")
def _(c):
    return c.node("AveragePool", ["input"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)


@case("avgpool_dilations_v19", 19, [1, 1, 7, 7], "AveragePool-19 with dilations [2,2], kernel 2x2 (optional)")
def _(c):
    c.notes = "dilations on AveragePool exist only since opset 19"
    return c.node("AveragePool", ["input"], kernel_shape=[2, 2], dilations=[2, 2])


@case("global_avgpool", 13, [1, 3, 4, 5], "GlobalAveragePool")
def _(c):
    return c.node("GlobalAveragePool", ["input"])


@case("global_avgpool_1d", 13, [1, 3, 7], "GlobalAveragePool on a 1-D feature map")
def _(c):
    return c.node("GlobalAveragePool", ["input"])


@case("maxpool2d", 13, [1, 2, 7, 7], "MaxPool 3x3 stride 2 pads [1,1,1,1]")
def _(c):
    return c.node("MaxPool", ["input"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])


@case("maxpool2d_asym", 13, [1, 2, 6, 5], "MaxPool 2x3 strides [2,1] asymmetric pads [1,0,0,1]")
def _(c):
    return c.node("MaxPool", ["input"], kernel_shape=[2, 3], strides=[2, 1], pads=[1, 0, 0, 1])


@case("maxpool2d_nopad", 13, [1, 2, 4, 4], "MaxPool 2x2 stride 2 (the usual CNN pool)")
def _(c):
    return c.node("MaxPool", ["input"], kernel_shape=[2, 2], strides=[2, 2])


@case("maxpool1d", 13, [1, 2, 10], "MaxPool 1-D kernel 3 stride 2 pads [1,1]")
def _(c):
    return c.node("MaxPool", ["input"], kernel_shape=[3], strides=[2], pads=[1, 1])


@case("maxpool2d_dilations", 13, [1, 1, 7, 7], "MaxPool 2x2 dilations [2,2] (optional)")
def _(c):
    return c.node("MaxPool", ["input"], kernel_shape=[2, 2], dilations=[2, 2])


@case("maxpool2d_v9", 9, [1, 2, 6, 6], "MaxPool at opset 9 (MaxPool-8), 2x2 stride 2")
def _(c):
    return c.node("MaxPool", ["input"], kernel_shape=[2, 2], strides=[2, 2])


@case("global_maxpool", 13, [1, 3, 4, 4], "GlobalMaxPool")
def _(c):
    return c.node("GlobalMaxPool", ["input"])


# ---------------------------------------------------------------------------
# BatchNormalization
# ---------------------------------------------------------------------------


def bn_params(c, ch):
    scale = c.rng.uniform(0.5, 1.5, ch).astype(np.float32)
    bias = c.rand([ch])
    mean = c.rand([ch], 0.3)
    var = c.rng.uniform(0.2, 2.0, ch).astype(np.float32)
    return [c.init(scale, "bn_scale"), c.init(bias, "bn_bias"), c.init(mean, "bn_mean"), c.init(var, "bn_var")]


@case("batchnorm_v9", 9, [1, 3, 4, 4], "standalone BatchNormalization opset 9, epsilon=1e-3")
def _(c):
    return c.node("BatchNormalization", ["input"] + bn_params(c, 3), epsilon=1e-3)


@case("batchnorm_v15", 15, [1, 3, 4, 4], "standalone BatchNormalization opset 15 (training_mode=0 explicit), eps 1e-5")
def _(c):
    return c.node("BatchNormalization", ["input"] + bn_params(c, 3), epsilon=1e-5, momentum=0.9, training_mode=0)


@case("batchnorm_2d_input", 15, [2, 5], "BatchNormalization on a 2-D [N,C] tensor (BatchNorm1d export)")
def _(c):
    return c.node("BatchNormalization", ["input"] + bn_params(c, 5))


@case("batchnorm_1d_feature", 13, [1, 3, 6], "BatchNormalization on [N,C,L] (BatchNorm1d over sequence), opset 13")
def _(c):
    return c.node("BatchNormalization", ["input"] + bn_params(c, 3), epsilon=1e-4)


@case("conv_bn_v9", 9, [1, 2, 6, 6], "Conv -> BatchNormalization, opset 9")
def _(c):
    y = c.node("Conv", ["input", c.init(c.rand([4, 2, 3, 3])), c.init(c.rand([4]))], pads=[1, 1, 1, 1])
    return c.node("BatchNormalization", [y] + bn_params(c, 4), epsilon=1e-5)


@case("conv_bn_v15", 15, [1, 2, 6, 6], "Conv (no bias) -> BatchNormalization, opset 15")
def _(c):
    y = c.node("Conv", ["input", c.init(c.rand([4, 2, 3, 3]))], pads=[1, 1, 1, 1])
    return c.node("BatchNormalization", [y] + bn_params(c, 4), epsilon=1e-5)


@case("gemm_bn_v9", 9, [1, 6], "Gemm -> BatchNormalization on [1,C], opset 9")
def _(c):
    y = c.node("Gemm", ["input", c.init(c.rand([5, 6])), c.init(c.rand([5]))], transB=1)
    return c.node("BatchNormalization", [y] + bn_params(c, 5), epsilon=1e-5)


@case("gemm_bn_v15", 15, [1, 6], "Gemm -> BatchNormalization on [1,C], opset 15")
def _(c):
    y = c.node("Gemm", ["input", c.init(c.rand([5, 6])), c.init(c.rand([5]))], transB=1)
    return c.node("BatchNormalization", [y] + bn_params(c, 5), epsilon=1e-5)


# ---------------------------------------------------------------------------
# Pad
# ---------------------------------------------------------------------------


@case("pad_v9_constant", 9, [1, 2, 3, 4], "Pad-2 (opset 9) mode=constant value=1.5, pads attribute [0,0,1,2,0,0,2,1]")
def _(c):
    return c.node("Pad", ["input"], mode="constant", pads=[0, 0, 1, 2, 0, 0, 2, 1], value=1.5)


@case("pad_v10_default_mode", 10, [1, 2, 3, 3], "Pad-2 (opset 10) no mode attribute (defaults to constant 0)")
def _(c):
    return c.node("Pad", ["input"], pads=[0, 0, 1, 0, 0, 0, 1, 2])


@case("pad_v9_edge", 9, [1, 2, 3, 4], "Pad-2 (opset 9) mode=edge, pads attribute [0,0,2,1,0,0,1,2]")
def _(c):
    return c.node("Pad", ["input"], mode="edge", pads=[0, 0, 2, 1, 0, 0, 1, 2])


@case("pad_v10_reflect", 10, [1, 2, 4, 4], "Pad-2 (opset 10) mode=reflect, pads attribute [0,0,1,3,0,0,2,1]")
def _(c):
    return c.node("Pad", ["input"], mode="reflect", pads=[0, 0, 1, 3, 0, 0, 2, 1])


@case("pad_v11_constant", 11, [1, 2, 3, 4], "Pad-11 mode=constant, pads input, constant_value input -0.5")
def _(c):
    return c.node("Pad", ["input", c.init(I64(0, 0, 2, 1, 0, 0, 1, 0), "pads"), c.init(scalar(-0.5), "cval")], mode="constant")


@case("pad_v13_constant_novalue", 13, [1, 2, 3, 3], "Pad-13 constant, pads input only (constant_value omitted => 0)")
def _(c):
    return c.node("Pad", ["input", c.init(I64(0, 0, 1, 1, 0, 0, 1, 1), "pads")])


@case("pad_v13_constant_empty_value", 13, [1, 2, 3, 3], "Pad-13 constant with empty-string constant_value input (=> 0)")
def _(c):
    return c.node("Pad", ["input", c.init(I64(0, 0, 0, 2, 0, 0, 1, 0), "pads"), ""], mode="constant")


@case("pad_v11_edge", 11, [1, 2, 3, 4], "Pad-11 mode=edge, pads input")
def _(c):
    return c.node("Pad", ["input", c.init(I64(0, 0, 1, 2, 0, 0, 2, 1), "pads")], mode="edge")


@case("pad_v13_reflect", 13, [1, 2, 4, 5], "Pad-13 mode=reflect, pads input [0,0,3,1,0,0,1,4]")
def _(c):
    return c.node("Pad", ["input", c.init(I64(0, 0, 3, 1, 0, 0, 1, 4), "pads")], mode="reflect")


@case("pad_v13_negative", 13, [1, 2, 5, 5], "Pad-13 constant with negative pads (cropping) [0,0,-1,1,0,0,1,-2]")
def _(c):
    c.notes = "negative pads crop; onnx.reference.ReferenceEvaluator rejects this model but onnxruntime and numpy agree"
    return c.node("Pad", ["input", c.init(I64(0, 0, -1, 1, 0, 0, 1, -2), "pads"), c.init(scalar(2.0), "cval")], mode="constant")


@case("pad_v18_axes", 18, [1, 2, 3, 4], "Pad-18 constant with axes input [2,3], pads [1,0,2,1], value 0.25")
def _(c):
    return c.node("Pad", ["input", c.init(I64(1, 0, 2, 1), "pads"), c.init(scalar(0.25), "cval"), c.init(I64(2, 3), "axes")], mode="constant")


@case("pad_v18_axes_negative", 18, [1, 2, 3, 4], "Pad-18 reflect with negative axes input [-1], pads [2,1]")
def _(c):
    return c.node("Pad", ["input", c.init(I64(2, 1), "pads"), "", c.init(I64(-1), "axes")], mode="reflect")


@case("pad_v19_edge_axes", 19, [1, 2, 3, 4], "Pad-19 edge with axes input [3,2] (unordered), pads [1,2,0,1]")
def _(c):
    return c.node("Pad", ["input", c.init(I64(1, 2, 0, 1), "pads"), "", c.init(I64(3, 2), "axes")], mode="edge")


@case("pad_v19_wrap", 19, [1, 2, 3, 4], "Pad-19 mode=wrap (optional), pads [0,0,1,2,0,0,2,1]")
def _(c):
    c.notes = "mode=wrap exists only since opset 19"
    return c.node("Pad", ["input", c.init(I64(0, 0, 1, 2, 0, 0, 2, 1), "pads")], mode="wrap")


@case("pad_1d_reflect", 13, [1, 2, 6], "Pad-13 reflect on a 3-D tensor (Conv1d-style input)")
def _(c):
    return c.node("Pad", ["input", c.init(I64(0, 0, 2, 0, 0, 3), "pads")], mode="reflect")


# ---------------------------------------------------------------------------
# Shape manipulation
# ---------------------------------------------------------------------------


@case("flatten_axis1", 13, [1, 2, 3, 4], "Flatten axis=1 (default) -> [1,24]")
def _(c):
    return c.node("Flatten", ["input"])


@case("flatten_axis2", 13, [1, 2, 3, 4], "Flatten axis=2 -> [2,12]")
def _(c):
    return c.node("Flatten", ["input"], axis=2)


@case("flatten_axis0", 13, [1, 2, 3, 4], "Flatten axis=0 -> [1,24]")
def _(c):
    return c.node("Flatten", ["input"], axis=0)


@case("flatten_axis_neg1_v11", 11, [1, 2, 3, 4], "Flatten axis=-1 (negative axis allowed since opset 11) -> [24,4]")
def _(c):
    return c.node("Flatten", ["input"], axis=-1)


@case("flatten_v9", 9, [1, 2, 3, 4], "Flatten at opset 9")
def _(c):
    return c.node("Flatten", ["input"])


@case("reshape_neg1", 13, [1, 2, 3, 4], "Reshape to [1,-1]")
def _(c):
    return c.node("Reshape", ["input", c.init(I64(1, -1), "shape")])


@case("reshape_zero_neg1", 13, [1, 2, 3, 4], "Reshape to [0,-1,4] (0 copies the input dim)")
def _(c):
    return c.node("Reshape", ["input", c.init(I64(0, -1, 4), "shape")])


@case("reshape_zero_mid", 13, [1, 2, 3, 4], "Reshape to [0,0,12] (two 0s)")
def _(c):
    return c.node("Reshape", ["input", c.init(I64(0, 0, 12), "shape")])


@case("reshape_v9", 9, [1, 6, 2], "Reshape at opset 9 to [3,-1]")
def _(c):
    return c.node("Reshape", ["input", c.init(I64(3, -1), "shape")])


@case("transpose_perm", 13, [1, 2, 3, 4], "Transpose perm [0,2,3,1] (NCHW->NHWC)")
def _(c):
    return c.node("Transpose", ["input"], perm=[0, 2, 3, 1])


@case("transpose_default", 13, [2, 3, 4], "Transpose without perm (reverses axes)")
def _(c):
    return c.node("Transpose", ["input"])


@case("transpose_2d_matmul", 13, [3, 5], "Transpose [3,5]->[5,3] then MatMul with W[3,2]")
def _(c):
    t = c.node("Transpose", ["input"], perm=[1, 0])
    return c.node("MatMul", [t, c.init(c.rand([3, 2]))])


@case("squeeze_v11", 11, [1, 3, 1, 4], "Squeeze-11 axes attribute [2]")
def _(c):
    return c.node("Squeeze", ["input"], axes=[2])


@case("squeeze_v11_noaxes", 11, [1, 3, 1, 4], "Squeeze-11 without axes (drops every size-1 dim)")
def _(c):
    return c.node("Squeeze", ["input"])


@case("squeeze_v13_noaxes", 13, [1, 3, 1, 4], "Squeeze-13 without axes input (drops every size-1 dim)")
def _(c):
    return c.node("Squeeze", ["input"])


@case("reshape_v14_allowzero0", 14, [1, 2, 3, 4], "Reshape-14 allowzero=0 (explicit) to [0,3,-1]")
def _(c):
    return c.node("Reshape", ["input", c.init(I64(0, 3, -1), "shape")], allowzero=0)


@case("squeeze_v13", 13, [1, 3, 1, 4], "Squeeze-13 axes input [0,-2]")
def _(c):
    return c.node("Squeeze", ["input", c.init(I64(0, -2), "axes")])


@case("unsqueeze_v11", 11, [3, 4], "Unsqueeze-11 axes attribute [0,2]")
def _(c):
    return c.node("Unsqueeze", ["input"], axes=[0, 2])


@case("unsqueeze_v13", 13, [3, 4], "Unsqueeze-13 axes input [0,-1]")
def _(c):
    return c.node("Unsqueeze", ["input", c.init(I64(0, -1), "axes")])


@case("unsqueeze_squeeze_v9", 9, [1, 5], "Squeeze-1 axes=[0] then Unsqueeze-1 axes=[1] at opset 9")
def _(c):
    s = c.node("Squeeze", ["input"], axes=[0])
    return c.node("Unsqueeze", [s], axes=[1])


@case("concat_axis1", 13, [1, 2, 4, 4], "Concat axis=1 of a Conv branch and a Mul branch")
def _(c):
    a = c.node("Conv", ["input", c.init(c.rand([3, 2, 3, 3])), c.init(c.rand([3]))], pads=[1, 1, 1, 1])
    b = c.node("Mul", ["input", c.init(scalar(2.0))])
    return c.node("Concat", [a, b], axis=1)


@case("concat_neg_axis_three", 13, [1, 2, 3], "Concat axis=-1 of input, constant [1,2,2] and x*x")
def _(c):
    sq = c.node("Mul", ["input", "input"])
    return c.node("Concat", ["input", c.init(c.rand([1, 2, 2])), sq], axis=-1)


@case("concat_v9", 9, [1, 3], "Concat at opset 9 (axis required), axis=1 of Gemm and Relu branches")
def _(c):
    a = c.node("Gemm", ["input", c.init(c.rand([3, 2])), c.init(c.rand([2]))])
    b = c.node("Relu", ["input"])
    return c.node("Concat", [a, b], axis=1)


@case("constant_add", 13, [1, 3, 2, 2], "Constant node (value tensor [3,1,1]) feeding an Add")
def _(c):
    t = numpy_helper.from_array(c.rand([3, 1, 1]), "cst")
    k = c.node("Constant", [], value=t)
    return c.node("Add", ["input", k])


@case("constant_value_float", 13, [1, 4], "Constant node with value_float attribute (opset>=12) feeding a Mul")
def _(c):
    k = c.node("Constant", [], value_float=0.5)
    return c.node("Mul", ["input", k])


@case("constant_shape_reshape", 13, [1, 2, 3, 2], "Constant int64 node used as Reshape's shape input")
def _(c):
    k = c.node("Constant", [], value=numpy_helper.from_array(I64(1, 12), "shp"))
    return c.node("Reshape", ["input", k])


@case("constant_v9", 9, [1, 3], "Constant node at opset 9 feeding an Add")
def _(c):
    k = c.node("Constant", [], value=numpy_helper.from_array(c.rand([1, 3]), "cst"))
    return c.node("Add", ["input", k])


@case("identity", 13, [1, 3, 2, 2], "Identity between two Adds")
def _(c):
    a = c.node("Add", ["input", c.init(scalar(1.0))])
    b = c.node("Identity", [a])
    return c.node("Mul", [b, c.init(scalar(3.0))])


@case("identity_only", 13, [1, 4], "graph consisting of a single Identity")
def _(c):
    return c.node("Identity", ["input"])


@case("dropout_v9", 9, [1, 3, 4], "Dropout-7 (opset 9) ratio=0.3 attribute, inference = identity")
def _(c):
    y = c.node("Dropout", ["input"], ratio=0.3)
    return c.node("Add", [y, c.init(scalar(0.5))])


@case("dropout_v10_mask", 10, [1, 6], "Dropout-10 with two outputs (mask unused)")
def _(c):
    y, _m = c.node("Dropout", ["input"], n_out=2, ratio=0.5)
    return c.node("Mul", [y, c.init(scalar(2.0))])


@case("dropout_v13", 13, [1, 3, 4], "Dropout-13 with ratio input 0.4 and training_mode input false")
def _(c):
    y = c.node("Dropout", ["input", c.init(scalar(0.4), "ratio"), c.init(np.array(False), "training")])
    return c.node("Add", [y, c.init(scalar(0.5))])


@case("dropout_v13_plain", 13, [1, 6], "Dropout-13 with only the data input")
def _(c):
    return c.node("Dropout", ["input"])


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------


@case("relu", 13, [1, 2, 3, 3], "Relu")
def _(c):
    return c.node("Relu", ["input"])


@case("relu_v9", 9, [1, 6], "Relu at opset 9 (Relu-6)")
def _(c):
    return c.node("Relu", ["input"])


@case("leaky_relu", 13, [1, 2, 3, 3], "LeakyRelu alpha=0.2")
def _(c):
    return c.node("LeakyRelu", ["input"], alpha=0.2)


@case("leaky_relu_default", 9, [1, 8], "LeakyRelu with default alpha (0.01), opset 9")
def _(c):
    return c.node("LeakyRelu", ["input"])


@case("prelu_channel", 13, [1, 3, 3, 3], "PRelu with per-channel slope [3,1,1]")
def _(c):
    return c.node("PRelu", ["input", c.init(c.rng.uniform(-0.5, 0.5, [3, 1, 1]).astype(np.float32), "slope")])


@case("prelu_scalar_v9", 9, [1, 2, 3, 3], "PRelu with slope of shape [1], opset 9")
def _(c):
    return c.node("PRelu", ["input", c.init(np.array([0.25], np.float32), "slope")])


@case("prelu_2d", 13, [2, 4], "PRelu on [N,C] with slope [4]")
def _(c):
    return c.node("PRelu", ["input", c.init(c.rng.uniform(-0.5, 0.5, [4]).astype(np.float32), "slope")])


@case("sigmoid", 13, [1, 2, 3, 3], "Sigmoid", input_range=(-4.0, 4.0))
def _(c):
    return c.node("Sigmoid", ["input"])


@case("tanh", 13, [1, 2, 3, 3], "Tanh", input_range=(-3.0, 3.0))
def _(c):
    return c.node("Tanh", ["input"])


@case("clip_v9_attrs", 9, [1, 2, 3, 3], "Clip-6 (opset 9) min=-0.5 max=0.6 attributes")
def _(c):
    return c.node("Clip", ["input"], min=-0.5, max=0.6)


@case("clip_v9_relu6", 9, [1, 8], "Clip-6 (opset 9) min=0 max=6 attributes (ReLU6)", input_range=(-8.0, 8.0))
def _(c):
    return c.node("Clip", ["input"], min=0.0, max=6.0)


@case("clip_v11_inputs", 11, [1, 2, 3, 3], "Clip-11 min=-0.3 max=0.4 as inputs")
def _(c):
    return c.node("Clip", ["input", c.init(scalar(-0.3), "min"), c.init(scalar(0.4), "max")])


@case("clip_v13_max_only", 13, [1, 2, 3, 3], "Clip-13 with only max (min input is the empty string)")
def _(c):
    return c.node("Clip", ["input", "", c.init(scalar(0.2), "max")])


@case("clip_v13_min_only", 13, [1, 2, 3, 3], "Clip-13 with only min (max input omitted)")
def _(c):
    return c.node("Clip", ["input", c.init(scalar(-0.1), "min")])


@case("clip_v13_none", 13, [1, 6], "Clip-13 with neither min nor max (identity)")
def _(c):
    return c.node("Clip", ["input"])


@case("softmax_v11_axis1", 11, [1, 10], "Softmax-11 axis=1 on [1,10]", input_range=(-3.0, 3.0))
def _(c):
    return c.node("Softmax", ["input"], axis=1)


@case("softmax_v11_default_axis", 11, [1, 10], "Softmax-11 default axis (1)", input_range=(-3.0, 3.0))
def _(c):
    return c.node("Softmax", ["input"])


@case("softmax_v11_3d_axis1", 11, [2, 3, 4], "Softmax-11 axis=1 on [2,3,4]: coerced to 2-D [2,12], normalises over 12 elements", input_range=(-3.0, 3.0))
def _(c):
    c.notes = "opset<13 semantics: input coerced to 2-D at axis, softmax over the flattened trailing dims"
    return c.node("Softmax", ["input"], axis=1)


@case("softmax_v13_axis_neg1_3d", 13, [2, 3, 4], "Softmax-13 axis=-1 on [2,3,4]", input_range=(-3.0, 3.0))
def _(c):
    return c.node("Softmax", ["input"], axis=-1)


@case("softmax_v13_axis1_3d", 13, [2, 3, 4], "Softmax-13 axis=1 on [2,3,4]: normalises over the 3 elements of axis 1 only", input_range=(-3.0, 3.0))
def _(c):
    c.notes = "opset>=13 semantics: softmax along a single axis (compare softmax_v11_3d_axis1)"
    return c.node("Softmax", ["input"], axis=1)


@case("softmax_v13_default_axis", 13, [1, 10], "Softmax-13 default axis (-1) on [1,10]", input_range=(-3.0, 3.0))
def _(c):
    return c.node("Softmax", ["input"])


@case("softmax_v9", 9, [1, 10], "Softmax-1 at opset 9, default axis", input_range=(-3.0, 3.0))
def _(c):
    return c.node("Softmax", ["input"])


# ---------------------------------------------------------------------------
# Multi-op networks
# ---------------------------------------------------------------------------


def small_cnn(c, with_bn=True, act="Relu", pool="MaxPool", extra=None):
    # input [1,1,8,8]
    y = c.node("Conv", ["input", c.init(c.rand([4, 1, 3, 3])), c.init(c.rand([4], 0.1))], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    if with_bn:
        y = c.node("BatchNormalization", [y] + bn_params(c, 4), epsilon=1e-5)
    y = c.node(act, [y])
    y = c.node(pool, [y], kernel_shape=[2, 2], strides=[2, 2])  # [1,4,4,4]
    return y


@case("cnn_v9", 9, [1, 1, 8, 8], "Conv-BN-Relu-MaxPool-Flatten-Gemm-Relu-Gemm-Softmax at opset 9")
def _(c):
    y = small_cnn(c)
    y = c.node("Flatten", [y], axis=1)  # [1,64]
    y = c.node("Gemm", [y, c.init(c.rand([16, 64], 0.2)), c.init(c.rand([16], 0.1))], transB=1)
    y = c.node("Relu", [y])
    y = c.node("Gemm", [y, c.init(c.rand([10, 16], 0.3)), c.init(c.rand([10], 0.1))], transB=1)
    return c.node("Softmax", [y], axis=1)


@case("cnn_v13", 13, [1, 1, 8, 8], "Conv-BN-Relu-MaxPool-Reshape-MatMul-Add-Sigmoid-Dropout-Gemm-Softmax at opset 13")
def _(c):
    y = small_cnn(c)
    y = c.node("Reshape", [y, c.init(I64(1, -1), "shape")])
    y = c.node("MatMul", [y, c.init(c.rand([64, 16], 0.2))])
    y = c.node("Add", [y, c.init(c.rand([16], 0.1))])
    y = c.node("Sigmoid", [y])
    y = c.node("Dropout", [y])
    y = c.node("Gemm", [y, c.init(c.rand([10, 16], 0.3)), c.init(c.rand([10], 0.1))], transB=1)
    return c.node("Softmax", [y], axis=-1)


@case("cnn_v17", 17, [1, 1, 8, 8], "Pad(reflect)-Conv-BN-Clip(0,6)-AveragePool-Conv(depthwise)-GlobalAveragePool-Flatten-Gemm-Softmax at opset 17")
def _(c):
    y = c.node("Pad", ["input", c.init(I64(0, 0, 1, 1, 0, 0, 1, 1), "pads")], mode="reflect")
    y = c.node("Conv", [y, c.init(c.rand([4, 1, 3, 3])), c.init(c.rand([4], 0.1))])
    y = c.node("BatchNormalization", [y] + bn_params(c, 4), epsilon=1e-5)
    y = c.node("Clip", [y, c.init(scalar(0.0), "min"), c.init(scalar(6.0), "max")])
    y = c.node("AveragePool", [y], kernel_shape=[2, 2], strides=[2, 2])
    y = c.node("Conv", [y, c.init(c.rand([4, 1, 3, 3])), c.init(c.rand([4], 0.1))], group=4, pads=[1, 1, 1, 1])
    y = c.node("GlobalAveragePool", [y])
    y = c.node("Flatten", [y])
    y = c.node("Gemm", [y, c.init(c.rand([10, 4], 0.5)), c.init(c.rand([10], 0.1))], transB=1)
    return c.node("Softmax", [y], axis=1)


@case("cnn_v21", 21, [1, 1, 8, 8], "Conv-BN-LeakyRelu-MaxPool-Conv-Mul(x,x)-Concat-Flatten-Gemm-Tanh-Gemm-Softmax at opset 21")
def _(c):
    y = small_cnn(c, act="Relu")
    a = c.node("Conv", [y, c.init(c.rand([2, 4, 3, 3], 0.3)), c.init(c.rand([2], 0.1))], pads=[1, 1, 1, 1])
    a = c.node("LeakyRelu", [a], alpha=0.1)
    b = c.node("Mul", [y, y])
    y = c.node("Concat", [a, b], axis=1)  # [1,6,4,4]
    y = c.node("Flatten", [y])  # [1,96]
    y = c.node("Gemm", [y, c.init(c.rand([16, 96], 0.15)), c.init(c.rand([16], 0.1))], transB=1)
    y = c.node("Tanh", [y])
    y = c.node("Gemm", [y, c.init(c.rand([10, 16], 0.3)), c.init(c.rand([10], 0.1))], transB=1)
    return c.node("Softmax", [y], axis=-1)


@case("he_friendly_v14", 14, [1, 1, 8, 8], "HE-friendly net: Conv(stride 2)-Mul(x,x)-AveragePool-Flatten-Gemm-Pow(2)-Gemm at opset 14")
def _(c):
    y = c.node("Conv", ["input", c.init(c.rand([3, 1, 3, 3])), c.init(c.rand([3], 0.1))], strides=[2, 2], pads=[1, 1, 1, 1])  # [1,3,4,4]
    y = c.node("Mul", [y, y])
    y = c.node("AveragePool", [y], kernel_shape=[2, 2], strides=[1, 1])  # [1,3,3,3]
    y = c.node("Flatten", [y])  # 27
    y = c.node("Gemm", [y, c.init(c.rand([8, 27], 0.3)), c.init(c.rand([8], 0.1))], transB=1)
    y = c.node("Pow", [y, c.init(scalar(2.0))])
    return c.node("Gemm", [y, c.init(c.rand([10, 8], 0.3)), c.init(c.rand([10], 0.1))], transB=1)


@case("mlp_v11", 11, [1, 1, 4, 4], "Flatten-Gemm(no C)-BN-PRelu-Gemm-Clip(max only)-Gemm at opset 11 (Clip min via empty input)")
def _(c):
    y = c.node("Flatten", ["input"])
    y = c.node("Gemm", [y, c.init(c.rand([16, 12], 0.3))])
    y = c.node("BatchNormalization", [y] + bn_params(c, 12))
    y = c.node("PRelu", [y, c.init(c.rng.uniform(0.0, 0.3, [12]).astype(np.float32), "slope")])
    y = c.node("Gemm", [y, c.init(c.rand([8, 12], 0.3)), c.init(c.rand([8], 0.1))], transB=1)
    y = c.node("Clip", [y, "", c.init(scalar(1.0), "max")])
    return c.node("Gemm", [y, c.init(c.rand([8, 3], 0.3)), c.init(c.rand([1, 3], 0.1))])


@case("resnet_block_v15", 15, [1, 4, 6, 6], "residual block: Conv-BN-Relu-Conv-BN + skip Add, Relu, GlobalAveragePool, opset 15")
def _(c):
    y = c.node("Conv", ["input", c.init(c.rand([4, 4, 3, 3], 0.2))], pads=[1, 1, 1, 1])
    y = c.node("BatchNormalization", [y] + bn_params(c, 4))
    y = c.node("Relu", [y])
    y = c.node("Conv", [y, c.init(c.rand([4, 4, 3, 3], 0.2))], pads=[1, 1, 1, 1])
    y = c.node("BatchNormalization", [y] + bn_params(c, 4))
    y = c.node("Add", [y, "input"])
    y = c.node("Relu", [y])
    return c.node("GlobalAveragePool", [y])


@case("conv1d_net_v13", 13, [1, 2, 16], "1-D net: Conv1d-Relu-MaxPool1d-Conv1d(SAME_UPPER)-AveragePool1d-Flatten-Gemm at opset 13")
def _(c):
    y = c.node("Conv", ["input", c.init(c.rand([4, 2, 3])), c.init(c.rand([4], 0.1))], pads=[1, 1])
    y = c.node("Relu", [y])
    y = c.node("MaxPool", [y], kernel_shape=[2], strides=[2])  # [1,4,8]
    y = c.node("Conv", [y, c.init(c.rand([3, 4, 4], 0.3)), c.init(c.rand([3], 0.1))], auto_pad="SAME_UPPER")
    y = c.node("AveragePool", [y], kernel_shape=[2], strides=[2])  # [1,3,4]
    y = c.node("Flatten", [y])
    return c.node("Gemm", [y, c.init(c.rand([5, 12], 0.3)), c.init(c.rand([5], 0.1))], transB=1)


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------


def run_ort(model_bytes, x):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0].name
    return sess.run(None, {inp: x})[0]


def shape_of(vi):
    return [d.dim_value for d in vi.type.tensor_type.shape.dim]


def save_npy(path, arr):
    # np.save output is deterministic for a given array
    np.save(path, arr, allow_pickle=False)


def gen_cases(out):
    os.makedirs(out, exist_ok=True)
    manifest = []
    refused = []
    for name, opset, in_shape, desc, kw, fn in CASES:
        c = Case(name, opset, in_shape, desc, **kw)
        y = fn(c)
        try:
            model = c.build(y)
            mb = model.SerializeToString()
            lo, hi = c.input_range
            x = c.rng.uniform(lo, hi, in_shape).astype(np.float32)
            out_arr = run_ort(mb, x)
        except Exception as e:  # noqa: BLE001
            refused.append((name, str(e).splitlines()[0][:300]))
            print(f"REFUSED {name}: {refused[-1][1]}", file=sys.stderr)
            continue
        out_arr = np.asarray(out_arr, dtype=np.float32)
        assert np.all(np.isfinite(out_arr)), name
        with open(os.path.join(out, name + ".onnx"), "wb") as f:
            f.write(mb)
        save_npy(os.path.join(out, name + ".input.npy"), x)
        save_npy(os.path.join(out, name + ".output.npy"), out_arr)
        out_shape = shape_of(model.graph.output[0])
        assert out_shape == list(out_arr.shape), (name, out_shape, out_arr.shape)
        ops = sorted({n.op_type for n in model.graph.node})
        entry = {
            "name": name,
            "file": name + ".onnx",
            "input_file": name + ".input.npy",
            "output_file": name + ".output.npy",
            "opset": opset,
            "ir_version": model.ir_version,
            "ops": ops,
            "input": {"name": "input", "shape": list(in_shape), "dtype": "float32"},
            "output": {"name": "output", "shape": list(out_arr.shape), "dtype": "float32"},
            "description": desc,
        }
        if c.notes:
            entry["notes"] = c.notes
        manifest.append(entry)
    return manifest, refused


# ---------------------------------------------------------------------------
# Activations of MobileNet, EfficientNet and transformers
# ---------------------------------------------------------------------------


@case("hardsigmoid_default", 13, [1, 2, 3, 3], "HardSigmoid with default alpha 0.2, beta 0.5", input_range=(-4.0, 4.0))
def _(c):
    return c.node("HardSigmoid", ["input"])


@case("hardsigmoid_attrs", 13, [1, 2, 3, 3], "HardSigmoid alpha 0.3, beta 0.4", input_range=(-4.0, 4.0))
def _(c):
    return c.node("HardSigmoid", ["input"], alpha=0.3, beta=0.4)


@case("hardswish", 14, [1, 2, 3, 3], "HardSwish (opset 14)", input_range=(-5.0, 5.0))
def _(c):
    return c.node("HardSwish", ["input"])


@case("softplus", 13, [1, 2, 3, 3], "Softplus", input_range=(-6.0, 6.0))
def _(c):
    return c.node("Softplus", ["input"])


@case("erf", 13, [1, 2, 3, 3], "Erf", input_range=(-3.0, 3.0))
def _(c):
    return c.node("Erf", ["input"])


@case("gelu_v20", 20, [1, 2, 3, 3], "Gelu (opset 20), exact", input_range=(-4.0, 4.0))
def _(c):
    return c.node("Gelu", ["input"])


@case("gelu_tanh_v20", 20, [1, 2, 3, 3], "Gelu (opset 20), approximate='tanh'", input_range=(-4.0, 4.0))
def _(c):
    return c.node("Gelu", ["input"], approximate="tanh")


@case("gelu_erf_pattern", 13, [1, 6], "GELU as exporters write it before opset 20: 0.5 x (1 + erf(x / sqrt 2))", input_range=(-4.0, 4.0))
def _(c):
    e = c.node("Erf", [c.node("Div", ["input", c.init(scalar(np.sqrt(2.0)))])])
    one = c.node("Add", [e, c.init(scalar(1.0))])
    return c.node("Mul", [c.node("Mul", ["input", one]), c.init(scalar(0.5))])


@case("elu", 13, [1, 2, 3, 3], "Elu alpha 0.7", input_range=(-3.0, 3.0))
def _(c):
    return c.node("Elu", ["input"], alpha=0.7)


# ---------------------------------------------------------------------------
# Selections and reductions with indices known at load time
# ---------------------------------------------------------------------------


@case("slice_v13", 13, [1, 4, 6, 6], "Slice channels 1..3, rows 1..5 step 2, columns from the end backwards")
def _(c):
    return c.node("Slice", ["input", c.init(I64(1, 1, -1), "s"), c.init(I64(3, 5, -7), "e"),
                            c.init(I64(1, 2, 3), "a"), c.init(I64(1, 2, -2), "st")])


@case("slice_v9", 9, [1, 3, 5], "Slice-1 with attributes, ends past the extent")
def _(c):
    return c.node("Slice", ["input"], starts=[1, 0], ends=[100, 3], axes=[1, 2])


@case("gather_axis1", 13, [1, 5, 3], "Gather axis 1 with indices [[4, 0], [-1, 2]]")
def _(c):
    return c.node("Gather", ["input", c.init(I64(4, 0, -1, 2).reshape(2, 2), "idx")], axis=1)


@case("gather_scalar_index", 13, [2, 6], "Gather axis 1 with a 0-d index (drops the axis)")
def _(c):
    return c.node("Gather", ["input", c.init(np.array(3, np.int64), "idx")], axis=1)


@case("split_v13_concat", 13, [1, 6, 2, 2], "Split-13 into [2, 4] channels, joined back in the other order")
def _(c):
    a, b = c.node("Split", ["input", c.init(I64(2, 4), "split")], n_out=2, axis=1)
    return c.node("Concat", [b, a], axis=1)


@case("split_v11_equal", 11, [1, 6], "Split-11 into three equal parts, summed")
def _(c):
    a, b, d = c.node("Split", ["input"], n_out=3, axis=1)
    return c.node("Add", [c.node("Add", [a, b]), d])


@case("expand", 13, [1, 3, 1, 1], "Expand [1,3,1,1] to [1,3,2,4]")
def _(c):
    return c.node("Expand", ["input", c.init(I64(1, 3, 2, 4), "shape")])


@case("resize_nearest_scales", 13, [1, 2, 3, 3], "Resize nearest x2 with scales (half_pixel, round_prefer_floor)")
def _(c):
    return c.node("Resize", ["input", "", c.init(np.array([1, 1, 2, 2], np.float32), "scales")], mode="nearest")


@case("resize_nearest_sizes_asymmetric", 13, [1, 1, 4, 4], "Resize nearest to 6x3 with sizes, asymmetric, floor")
def _(c):
    return c.node("Resize", ["input", "", "", c.init(I64(1, 1, 6, 3), "sizes")], mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor")


@case("upsample_v9", 9, [1, 2, 2, 3], "Upsample-9 nearest x2 x3 (scales input)")
def _(c):
    return c.node("Upsample", ["input", c.init(np.array([1, 1, 2, 3], np.float32), "scales")], mode="nearest")


@case("reducemean_v13", 13, [1, 3, 4, 4], "ReduceMean over H, W (axes attribute), keepdims")
def _(c):
    return c.node("ReduceMean", ["input"], axes=[2, 3])


@case("reducemean_v18", 18, [1, 3, 4, 4], "ReduceMean-18 over channels (axes input), keepdims 0")
def _(c):
    return c.node("ReduceMean", ["input", c.init(I64(1), "axes")], keepdims=0)


@case("reducesum_v13", 13, [1, 3, 4, 2], "ReduceSum-13 over all axes (no axes input)")
def _(c):
    return c.node("ReduceSum", ["input"])



@case("maxpool_inner_softmax", 13, [1, 2, 6, 6], "Conv, MaxPool, an inner Softmax, Gemm: what CKKS refuses (MaxPool, a Softmax before the end)")
def _(c):
    y = c.node("Conv", ["input", c.init(c.rand([3, 2, 3, 3]))], kernel_shape=[3, 3])
    y = c.node("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2])
    y = c.node("Softmax", [c.node("Flatten", [y], axis=1)], axis=1)
    return c.node("Gemm", [y, c.init(c.rand([4, 12]))], transB=1)


def gen_bad(out, manifest):
    bad = os.path.join(out, "bad")
    os.makedirs(bad, exist_ok=True)
    rng = np.random.default_rng(12345)
    entries = []

    # 1. valid ONNX with several ops heman does not support (onnxruntime runs it)
    nodes = [
        helper.make_node("Exp", ["input"], ["exp_out"], name="exp"),
        helper.make_node("Log", ["exp_out"], ["log_out"], name="log"),
        helper.make_node("Floor", ["log_out"], ["floor_out"], name="floor"),
        helper.make_node("Pad", ["floor_out", "pads"], ["padded"], name="pad"),
        helper.make_node("Sqrt", ["padded"], ["sq"], name="sqrt"),
        helper.make_node("Abs", ["sq"], ["output"], name="abs"),
    ]
    inits = [
        numpy_helper.from_array(I64(0, 0, 1, 1, 0, 0, 1, 1), "pads"),
    ]
    g = helper.make_graph(
        nodes, "unsupported_ops",
        [helper.make_tensor_value_info("input", F32, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("output", F32, [1, 1, 6, 6])],
        initializer=inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="heman-gen_test_models")
    m.ir_version = ir_version_for(13)
    onnx.checker.check_model(m, full_check=True)
    mb = m.SerializeToString()
    x = rng.uniform(0, 1, [1, 1, 4, 4]).astype(np.float32)
    run_ort(mb, x)  # must be valid for onnxruntime
    with open(os.path.join(bad, "unsupported_ops.onnx"), "wb") as f:
        f.write(mb)
    save_npy(os.path.join(bad, "unsupported_ops.input.npy"), x)
    entries.append({
        "file": "bad/unsupported_ops.onnx",
        "kind": "unsupported_ops",
        "description": "valid ONNX (onnxruntime runs it) using ops heman should reject",
        "unsupported_ops": ["Abs", "Exp", "Floor", "Log", "Sqrt"],
        "opset": 13,
        "input": {"name": "input", "shape": [1, 1, 4, 4]},
    })

    # 2. truncated: first 100 bytes of a valid model
    src = os.path.join(out, "cnn_v13.onnx")
    with open(src, "rb") as f:
        head = f.read(100)
    with open(os.path.join(bad, "truncated.onnx"), "wb") as f:
        f.write(head)
    entries.append({"file": "bad/truncated.onnx", "kind": "truncated",
                    "description": "first 100 bytes of cnn_v13.onnx"})

    # 3. random bytes
    with open(os.path.join(bad, "random_bytes.onnx"), "wb") as f:
        f.write(rng.integers(0, 256, 1000, dtype=np.uint8).tobytes())
    entries.append({"file": "bad/random_bytes.onnx", "kind": "not_onnx",
                    "description": "1000 random bytes (not a protobuf ModelProto)"})

    # 3b. a text file with .onnx extension
    with open(os.path.join(bad, "text.onnx"), "w") as f:
        f.write("this is not an ONNX model\n")
    entries.append({"file": "bad/text.onnx", "kind": "not_onnx",
                    "description": "plain ASCII text with an .onnx extension"})

    # 3c. empty file
    open(os.path.join(bad, "empty.onnx"), "wb").close()
    entries.append({"file": "bad/empty.onnx", "kind": "empty",
                    "description": "zero-byte file (parses as an empty ModelProto with no graph)"})

    # 4. wrong-shape input for cnn_v13 (expects [1,1,8,8])
    save_npy(os.path.join(bad, "wrong_shape.input.npy"), rng.uniform(0, 1, [1, 1, 7, 8]).astype(np.float32))
    entries.append({"file": "bad/wrong_shape.input.npy", "kind": "wrong_input_shape",
                    "model": "cnn_v13.onnx", "shape": [1, 1, 7, 8], "expected_shape": [1, 1, 8, 8],
                    "description": "float32 input of shape [1,1,7,8] for a model expecting [1,1,8,8]"})

    # 4b. right element count, wrong rank
    save_npy(os.path.join(bad, "wrong_rank.input.npy"), rng.uniform(0, 1, [64]).astype(np.float32))
    entries.append({"file": "bad/wrong_rank.input.npy", "kind": "wrong_input_shape",
                    "model": "cnn_v13.onnx", "shape": [64], "expected_shape": [1, 1, 8, 8],
                    "description": "64 float32 values with shape [64] (same element count, wrong rank)"})

    # 5. NaN input for cnn_v13
    xn = rng.uniform(0, 1, [1, 1, 8, 8]).astype(np.float32)
    xn[0, 0, 3, 4] = np.nan
    save_npy(os.path.join(bad, "nan.input.npy"), xn)
    entries.append({"file": "bad/nan.input.npy", "kind": "nan_input",
                    "model": "cnn_v13.onnx", "shape": [1, 1, 8, 8],
                    "description": "correct shape, element [0,0,3,4] is NaN"})

    # 5b. Inf input
    xi = rng.uniform(0, 1, [1, 1, 8, 8]).astype(np.float32)
    xi[0, 0, 0, 0] = np.inf
    save_npy(os.path.join(bad, "inf.input.npy"), xi)
    entries.append({"file": "bad/inf.input.npy", "kind": "inf_input",
                    "model": "cnn_v13.onnx", "shape": [1, 1, 8, 8],
                    "description": "correct shape, element [0,0,0,0] is +Inf"})

    # 6. float64 input of the right shape
    save_npy(os.path.join(bad, "float64.input.npy"), rng.uniform(0, 1, [1, 1, 8, 8]).astype(np.float64))
    entries.append({"file": "bad/float64.input.npy", "kind": "wrong_input_dtype",
                    "model": "cnn_v13.onnx", "shape": [1, 1, 8, 8], "dtype": "float64",
                    "description": "right shape but float64 (a loader may accept and convert, or reject)"})

    # 7. model whose input has a symbolic (dynamic) batch dimension
    g = helper.make_graph(
        [helper.make_node("Relu", ["input"], ["output"])], "dynamic_batch",
        [helper.make_tensor_value_info("input", F32, ["N", 4])],
        [helper.make_tensor_value_info("output", F32, ["N", 4])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="heman-gen_test_models")
    m.ir_version = ir_version_for(13)
    onnx.checker.check_model(m, full_check=True)
    with open(os.path.join(bad, "dynamic_batch.onnx"), "wb") as f:
        f.write(m.SerializeToString())
    entries.append({"file": "bad/dynamic_batch.onnx", "kind": "dynamic_shape",
                    "description": "Relu on input of shape [N,4] with a symbolic dim; rejected or needs the shape from the input file"})

    # 8. two graph inputs
    g = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["output"])], "two_inputs",
        [helper.make_tensor_value_info("a", F32, [1, 4]), helper.make_tensor_value_info("b", F32, [1, 4])],
        [helper.make_tensor_value_info("output", F32, [1, 4])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="heman-gen_test_models")
    m.ir_version = ir_version_for(13)
    onnx.checker.check_model(m, full_check=True)
    with open(os.path.join(bad, "two_inputs.onnx"), "wb") as f:
        f.write(m.SerializeToString())
    entries.append({"file": "bad/two_inputs.onnx", "kind": "multiple_inputs",
                    "description": "graph with two non-initializer inputs"})

    return entries


def generate(out):
    manifest, refused = gen_cases(out)
    bad = gen_bad(out, manifest)
    doc = {
        "generator": "scripts/gen_test_models.py",
        "onnx_version": onnx.__version__,
        "onnxruntime_version": ort.__version__,
        "numpy_version": np.__version__,
        "comparison_hint": "outputs are onnxruntime CPU float32 results; compare with a tolerance (e.g. rtol 1e-4, atol 1e-5 in plaintext)",
        "cases": manifest,
        "refused_by_onnxruntime": [{"name": n, "error": e} for n, e in refused],
        "bad": bad,
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")
    return manifest, refused


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--out", default=os.path.join(root, "tests", "models"))
    ap.add_argument("--check", action="store_true", help="regenerate into a temp dir and diff against --out")
    args = ap.parse_args()
    if args.check:
        tmp = tempfile.mkdtemp()
        try:
            generate(tmp)
            diffs = []
            for dirpath, _, files in os.walk(tmp):
                for fn in files:
                    p = os.path.join(dirpath, fn)
                    rel = os.path.relpath(p, tmp)
                    q = os.path.join(args.out, rel)
                    if not os.path.exists(q) or not filecmp.cmp(p, q, shallow=False):
                        diffs.append(rel)
            if diffs:
                print("differs:", *diffs, sep="\n  ")
                return 1
            print("all generated files identical")
            return 0
        finally:
            shutil.rmtree(tmp)
    manifest, refused = generate(args.out)
    print(f"wrote {len(manifest)} cases to {args.out}; refused by onnxruntime: {len(refused)}")
    for n, e in refused:
        print(f"  {n}: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
