"""heman: privacy-preserving inference of ONNX networks on encrypted data.

Two parties, each with its half of the API:

* the **model owner** compiles a network (:func:`compile`, or :func:`load` a
  compiled file) and runs it on ciphertexts with the data owner's
  evaluation keys (:meth:`CompiledModel.run`) -- it never sees an input or
  an output in the clear;
* the **data owner** makes keys from the model's keyparams
  (:class:`Client`), encrypts its inputs and decrypts the answers -- it
  never sees the weights.

Arrays are numpy arrays; ciphertexts, keys and compiled models are
``bytes`` identical to the files of the ``heman`` command-line tool, so the
two tools read each other's files. Long calls release the interpreter lock
and report progress to tqdm when it is installed, or to a callback.

A dozen lines from an ONNX model to an encrypted inference::

    import heman, numpy as np
    model = heman.compile("digits_square.onnx", "calibration.npz")   # model owner
    client = heman.Client(model.keyparams).keygen()                  # data owner
    ciphertext = client.encrypt(x)
    answer = model.run(ciphertext, client.eval_keys)                 # model owner
    logits = client.decrypt(answer)                                  # data owner
"""

from __future__ import annotations

import dataclasses
import io
import os
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native import (
    CompileError,
    FileError,
    HemanError,
    ModelError,
    RefusedError,
    ServerError,
)

__version__: str = _native.__version__

__all__ = [
    "Agreement",
    "Client",
    "CompileError",
    "CompiledModel",
    "EvaluationKeys",
    "FileError",
    "HemanError",
    "HemanWarning",
    "Inference",
    "ModelError",
    "RefusedError",
    "Report",
    "ServerError",
    "TensorSpec",
    "backends",
    "compile",
    "load",
    "set_threads",
]

PathLike = Union[str, "os.PathLike[str]"]
ArrayLike = Any
Output = Union[np.ndarray, Tuple[np.ndarray, ...]]
ProgressArg = Union[bool, None, Callable[[str, int, Optional[int]], Any], Any]


class HemanWarning(UserWarning):
    """What a compilation says the model owner should know before serving."""


# --- values -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """A tensor crossing the encryption boundary."""

    name: str
    """The ONNX value's name."""
    shape: Tuple[int, ...]
    """Its shape (one input's, without a throughput batch axis)."""
    calibrated_range: Optional[Tuple[float, float]] = None
    """The ``[min, max]`` calibration saw, where known."""


@dataclasses.dataclass(frozen=True)
class Agreement:
    """The compiled model's class against the float model's, on the
    calibration samples: what the compilation predicts of its accuracy."""

    samples: int
    """Calibration samples compared."""
    same_class: int
    """Those on which the compiled arithmetic (CKKS polynomials, TFHE
    quantisation) picks the float model's class."""
    same_class_with_noise: Optional[int] = None
    """The same with the encryption noise drawn (TFHE), where simulated."""

    @property
    def fraction(self) -> float:
        """``same_class / samples``."""
        return self.same_class / self.samples if self.samples else 0.0


@dataclasses.dataclass(frozen=True)
class Report:
    """What a compilation chose and measured (as ``heman keyparams`` prints)."""

    summary: str
    """One line: the parameters chosen."""
    lines: Tuple[str, ...]
    """Everything chosen and measured, a line each."""
    warnings: Tuple[str, ...]
    """What the model owner should know before serving the model."""
    agreement: Optional[Agreement]
    """Approximation agreement on the calibration samples."""

    def __str__(self) -> str:
        text = [self.summary, *("  " + line for line in self.lines)]
        text += ["warning: " + w for w in self.warnings]
        return "\n".join(text)


@dataclasses.dataclass(frozen=True)
class Inference:
    """One encrypted inference: the output ciphertext and where time went."""

    output: bytes
    """The output ciphertext file (re-randomised and flooded)."""
    stages: Tuple[Tuple[str, float], ...]
    """``(stage name, seconds)`` per stage of the compiled model."""
    seconds: float
    """Wall time of the whole call inside the library."""


# --- conversions ------------------------------------------------------------


def _raw(x: ArrayLike) -> Tuple[bytes, List[int]]:
    """An array as little-endian float64 bytes in C order and its shape."""
    array = np.ascontiguousarray(np.asarray(_as_numpy(x), dtype="<f8"))
    return array.tobytes(), list(array.shape)


def _array(data: bytes, shape: Sequence[int]) -> np.ndarray:
    return np.frombuffer(data, dtype="<f8").reshape(tuple(shape)).copy()


def _outputs(named: Sequence[Tuple[str, bytes, Sequence[int]]]) -> Output:
    arrays = tuple(_array(data, shape) for _, data, shape in named)
    return arrays[0] if len(arrays) == 1 else arrays


def _spec(value: Tuple[str, Sequence[int], Optional[Tuple[float, float]]]) -> TensorSpec:
    name, shape, calibrated = value
    return TensorSpec(name, tuple(shape), tuple(calibrated) if calibrated else None)


def _bytes(value: Any, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what}: expected bytes, got {type(value).__name__}")


def _read(path: PathLike) -> bytes:
    with open(path, "rb") as f:
        return f.read()


# --- progress ---------------------------------------------------------------


class _Callback:
    """Progress to ``callback(step, done, total)``."""

    def __init__(self, callback: Callable[[str, int, Optional[int]], Any]):
        self._callback = callback
        self._step = ""
        self._done = 0
        self._total: Optional[int] = None

    def start(self, step: str, total: Optional[int]) -> None:
        self._step, self._done, self._total = step, 0, total
        self._callback(step, 0, total)

    def advance(self, units: int) -> None:
        self._done += units
        self._callback(self._step, self._done, self._total)

    def finish(self) -> None:
        pass


class _Tqdm:
    """Progress as tqdm bars, one per step."""

    def __init__(self, tqdm: Any):
        self._tqdm = tqdm
        self._bar: Any = None

    def start(self, step: str, total: Optional[int]) -> None:
        self.finish()
        self._bar = self._tqdm(total=total, desc=step, leave=False)

    def advance(self, units: int) -> None:
        if self._bar is not None:
            self._bar.update(units)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _progress(progress: ProgressArg) -> Any:
    """``True``: tqdm when installed; a callable: called with ``(step,
    done, total)``; an object with ``start``/``advance``/``finish``: used
    as is; ``False``/``None``: nothing."""
    if progress is True:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return None
        return _Tqdm(tqdm)
    if not progress:
        return None
    if all(hasattr(progress, m) for m in ("start", "advance", "finish")):
        return progress
    if callable(progress):
        return _Callback(progress)
    raise TypeError("progress: True, False, a callable (step, done, total) or a progress object")


# --- the model owner ---------------------------------------------------------


def _onnx_bytes(model: Any, example_input: Optional[ArrayLike], opset: int) -> Tuple[bytes, str]:
    """The ONNX bytes of a path, bytes, an ``onnx.ModelProto`` or a
    ``torch.nn.Module`` (exported with ``example_input``), and its name."""
    if isinstance(model, (str, os.PathLike)):
        return _read(model), os.fspath(model)
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), "<ONNX bytes>"
    if hasattr(model, "SerializeToString"):
        return model.SerializeToString(), getattr(getattr(model, "graph", None), "name", "") or "<onnx.ModelProto>"
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and isinstance(model, torch.nn.Module):
        if example_input is None:
            raise TypeError("a torch.nn.Module needs example_input= (one input, with its batch axis of 1)")
        return _export_torch(torch, model, example_input, opset), type(model).__name__
    raise TypeError(
        f"model: expected an ONNX path, ONNX bytes, an onnx.ModelProto or a torch.nn.Module, got {type(model).__name__}"
    )


def _export_torch(torch: Any, module: Any, example_input: ArrayLike, opset: int) -> bytes:
    """``module`` exported by ``torch.onnx``, in evaluation mode (batch
    normalisation and dropout as at inference)."""
    example = example_input
    if not isinstance(example, torch.Tensor):
        example = torch.as_tensor(np.asarray(example, dtype=np.float32))
    was_training = module.training
    module.eval()
    buffer = io.BytesIO()
    arguments = dict(input_names=["input"], output_names=["output"], opset_version=opset)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # torch 2.9+ calls the TorchScript exporter legacy; it is chosen
            # here on purpose (the newer one needs onnxscript).
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                # The TorchScript exporter: no onnxscript needed.
                torch.onnx.export(module, (example,), buffer, dynamo=False, **arguments)
            except TypeError:
                # A torch without the `dynamo` switch exports this way already.
                torch.onnx.export(module, (example,), buffer, **arguments)
    finally:
        module.train(was_training)
    return buffer.getvalue()


def _calibration(calibration: Any) -> Any:
    if isinstance(calibration, (str, os.PathLike)):
        return os.fspath(calibration)
    if isinstance(calibration, (list, tuple)):
        calibration = np.stack([np.asarray(_as_numpy(c), dtype=np.float64) for c in calibration])
    return _raw(calibration)


def _as_numpy(x: Any) -> Any:
    """A torch tensor as a numpy array; anything else as it is."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        return x.detach().cpu().numpy()
    return x


def _option(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def compile(
    model: Any,
    calibration: Any,
    backend: str = "ckks",
    *,
    example_input: Optional[ArrayLike] = None,
    progress: ProgressArg = True,
    opset: int = 17,
    **options: Any,
) -> "CompiledModel":
    """Compiles a network for encrypted inference (the model owner's step;
    ``heman keyparams`` on the command line).

    Args:
        model: an ONNX file's path, ONNX bytes, an ``onnx.ModelProto``, or a
            ``torch.nn.Module`` with ``example_input`` (exported through
            ``torch.onnx`` at ``opset``; torch is not a dependency).
        calibration: inputs the network is expected to see, to measure every
            value's range: a path (``.npz``, ``.zip``, a directory of
            ``.npy``, or one ``.npy`` of samples stacked on its first axis),
            an array ``[N, ...]`` of samples, or a list of arrays.
        backend: ``"ckks"`` (approximate arithmetic, polynomial activations),
            ``"tfhe"`` (exact lookup-table activations), or a simulation
            (``"ckks-sim"``, ``"tfhe-sim"``); :func:`backends` lists them.
        progress: ``True`` (tqdm bars when tqdm is installed), ``False``, a
            callable ``(step, done, total)``, or an object with ``start``,
            ``advance`` and ``finish`` methods.
        **options: the command line's compile options by their names:
            ``packing="throughput"``, ``batch=4096``, ``security=128``,
            ``flooding_security=40``, ``flooding_tail_bound=True``,
            ``activation_margin=0.1``, ``bootstrapping="auto"`` (CKKS);
            ``preset="2_2"``, ``exact=True``, ``accumulator_margin=0.25``
            (TFHE); ``noise=True`` (simulations).

    Returns:
        The compiled model, with its keyparams (for the data owner) and
        :attr:`CompiledModel.report`.

    Raises:
        ModelError: the model or the calibration cannot be read or run.
        CompileError: an option does not apply, or a layer cannot be
            compiled for the backend (the message names it).
    """
    onnx_bytes, origin = _onnx_bytes(model, example_input, opset)
    native = _native.compile(
        onnx_bytes,
        origin,
        _calibration(calibration),
        backend,
        [(name, _option(value)) for name, value in options.items()],
        _progress(progress),
    )
    compiled = CompiledModel(native)
    if compiled.report is not None:
        for warning in compiled.report.warnings:
            warnings.warn(warning, HemanWarning, stacklevel=2)
    return compiled


def load(path: PathLike) -> "CompiledModel":
    """Loads a compiled model file (:meth:`CompiledModel.save`'s, or
    ``heman keyparams --compiled``'s)."""
    return CompiledModel(_native.load(_read(path), os.fspath(path)))


class EvaluationKeys:
    """A data owner's evaluation keys, parsed and checked once by a model
    owner for many inferences (:meth:`CompiledModel.parse_keys`)."""

    def __init__(self, native: Any):
        self._native = native


class CompiledModel:
    """A network compiled for encrypted inference: the model owner's side.

    Holds the weights: never send it (or :attr:`file`) to a data owner;
    send :attr:`keyparams`.
    """

    def __init__(self, native: Any):
        self._native = native
        report = native.report
        self._report = None
        if report is not None:
            summary, lines, warns, agreement = report
            self._report = Report(
                summary,
                tuple(lines),
                tuple(warns),
                Agreement(*agreement) if agreement else None,
            )

    @property
    def backend(self) -> str:
        """The backend the model is compiled for."""
        return self._native.backend

    @property
    def keyparams(self) -> str:
        """keyparams.json's text: everything a data owner needs to make keys,
        nothing of the weights."""
        return self._native.keyparams

    @property
    def report(self) -> Optional[Report]:
        """What the compilation chose and measured (``None`` for a model
        loaded from a file)."""
        return self._report

    @property
    def file(self) -> bytes:
        """The compiled model file's bytes."""
        return self._native.file

    @property
    def fingerprint(self) -> str:
        """The parameter fingerprint keys and ciphertexts carry (hex)."""
        return self._native.fingerprint

    @property
    def input(self) -> TensorSpec:
        """The input the model takes."""
        return _spec(self._native.input)

    @property
    def outputs(self) -> Tuple[TensorSpec, ...]:
        """The outputs it returns, in order."""
        return tuple(_spec(o) for o in self._native.outputs)

    @property
    def max_batch(self) -> Optional[int]:
        """Inputs per ciphertext for a throughput-packed model (arrays then
        carry a batch axis first); ``None`` for one input per ciphertext."""
        return self._native.max_batch

    def describe(self) -> List[str]:
        """What the compiled model holds, a line each (``heman inspect``)."""
        return list(self._native.describe())

    def save(self, path: PathLike, keyparams: Optional[PathLike] = None) -> None:
        """Writes the compiled model file (readable by its owner only) and,
        if asked, keyparams.json beside it."""
        self._native.save(os.fspath(path))
        if keyparams is not None:
            with open(keyparams, "w", encoding="utf-8") as f:
                f.write(self.keyparams)

    def parse_keys(self, eval_keys: bytes) -> EvaluationKeys:
        """Parses a data owner's evaluation keys and checks they serve this
        model: do it once, then pass the result to :meth:`run` for every
        inference.

        Raises:
            RefusedError: keys of other parameters, damaged, or lacking a
                rotation the model needs.
        """
        return EvaluationKeys(self._native.parse_keys(_bytes(eval_keys, "eval_keys")))

    def _keys(self, eval_keys: Union[bytes, EvaluationKeys]) -> Any:
        if isinstance(eval_keys, EvaluationKeys):
            return eval_keys._native
        return self.parse_keys(eval_keys)._native

    def infer(
        self,
        ciphertext: bytes,
        eval_keys: Union[bytes, EvaluationKeys],
        on_stage: Optional[Callable[[str, float], Any]] = None,
    ) -> Inference:
        """As :meth:`run`, with each stage's time; ``on_stage(name,
        seconds)`` hears of each stage as it ends."""
        output, stages, seconds = self._native.infer(
            _bytes(ciphertext, "ciphertext"), self._keys(eval_keys), on_stage
        )
        return Inference(output, tuple(stages), seconds)

    def run(self, ciphertext: bytes, eval_keys: Union[bytes, EvaluationKeys]) -> bytes:
        """Runs the model on an encrypted input (the model owner's step;
        ``heman inference``). Only fresh encryptions are taken; the output
        is re-randomised and flooded before it is returned.

        Args:
            ciphertext: the data owner's :meth:`Client.encrypt` bytes.
            eval_keys: the data owner's :attr:`Client.eval_keys`, or what
                :meth:`parse_keys` made of them (faster for many calls).

        Returns:
            The output ciphertext, for the data owner's :meth:`Client.decrypt`.

        Raises:
            RefusedError: a damaged, foreign or re-used ciphertext, or keys
                that do not fit.
        """
        return self.infer(ciphertext, eval_keys).output

    def simulate(self, x: ArrayLike, noise_seed: Optional[int] = None) -> Output:
        """The compiled model's arithmetic in cleartext (CKKS polynomials and
        slot layouts, TFHE quantisation): what an encrypted inference
        computes, without keys. ``noise_seed`` draws the encryption noise too.
        One array per output (a tuple for several)."""
        return _outputs(self._native.simulate(_raw(x), noise_seed))

    def evaluate(self, x: ArrayLike) -> Output:
        """The float model (a model compiled in this process): the reference
        for :meth:`simulate` and encrypted results."""
        return _outputs(self._native.evaluate(_raw(x)))

    def predicted_accuracy(
        self, inputs: ArrayLike, labels: Optional[ArrayLike] = None, noise_seed: Optional[int] = None
    ) -> Dict[str, float]:
        """Predicts encrypted accuracy from simulation, before any key is made.

        Args:
            inputs: samples stacked along a first axis.
            labels: their true classes; without them, only agreement with the
                float model is measured.

        Returns:
            ``agreement``: the share of inputs on which the compiled model
            picks the float model's class; with labels, ``float`` and
            ``simulated``: the accuracies of both.
        """
        inputs = np.asarray(_as_numpy(inputs), dtype=np.float64)
        simulated = np.array([_first(self.simulate(x, noise_seed)).argmax() for x in inputs])
        exact = np.array([_first(self.evaluate(x)).argmax() for x in inputs])
        result = {"agreement": float(np.mean(simulated == exact))}
        if labels is not None:
            labels = np.asarray(labels).reshape(-1)
            result["float"] = float(np.mean(exact == labels))
            result["simulated"] = float(np.mean(simulated == labels))
        return result

    def __repr__(self) -> str:
        return f"<heman.CompiledModel {self.backend} input {self.input.name}{list(self.input.shape)}>"


def _first(output: Output) -> np.ndarray:
    return output[0] if isinstance(output, tuple) else output


# --- the data owner ----------------------------------------------------------


def _keyparams_text(keyparams: Union[str, bytes, PathLike]) -> bytes:
    if isinstance(keyparams, bytes):
        return keyparams
    if isinstance(keyparams, str) and keyparams.lstrip().startswith("{"):
        return keyparams.encode("utf-8")
    return _read(keyparams)


class Client:
    """The data owner: keys for one model's keyparams, encryption and
    decryption, and queries to a ``heman serve`` server.

    The secret key stays inside this object (zeroised when it is freed) and
    leaves it only through :meth:`save`, into an owner-only file.
    """

    def __init__(self, keyparams: Union[str, bytes, PathLike]):
        """Args:
        keyparams: keyparams.json's text or bytes (a
            :attr:`CompiledModel.keyparams`, or a server's), or its path.
        """
        self._keyparams = _keyparams_text(keyparams)
        self._keys: Any = None
        self.last_release_note: Optional[str] = None
        """What decrypt-side noise the last decryption added, when asked for."""
        self.last_retries = 0
        """How many times the last :meth:`query` sent its request again."""

    @classmethod
    def load(cls, path: PathLike) -> "Client":
        """Opens a keys directory (:meth:`save`'s, or ``heman keygen``'s)."""
        keys = _native.open_keys(os.fspath(path))
        client = cls(keys.keyparams.encode("utf-8"))
        client._keys = keys
        return client

    @classmethod
    def from_server(cls, url: str, model: str, token: Optional[str] = None) -> "Client":
        """A client of a served model, its keyparams fetched from the
        server (keys not made yet: call :meth:`keygen`)."""
        return cls(_native.server_keyparams(url, model, token).encode("utf-8"))

    def keygen(self, progress: ProgressArg = True) -> "Client":
        """Makes the keys (secret, evaluation, public where the backend has
        one) for the keyparams; answers this client."""
        self._keys = _native.keygen(self._keyparams, _progress(progress))
        return self

    @property
    def _native(self) -> Any:
        if self._keys is None:
            raise HemanError("no keys yet: call keygen() or open a keys directory with Client.load")
        return self._keys

    @property
    def keyparams(self) -> str:
        """The keyparams text the keys are for."""
        return self._keyparams.decode("utf-8")

    @property
    def backend(self) -> str:
        """The backend the keys are for."""
        return self._native.backend

    @property
    def eval_keys(self) -> bytes:
        """The evaluation keys: what the model owner receives (no secret)."""
        return self._native.eval_keys

    @property
    def public_key(self) -> Optional[bytes]:
        """The public key, where the backend has one apart from the
        evaluation keys."""
        return self._native.public_key

    @property
    def input(self) -> TensorSpec:
        """The model's input."""
        return _spec(self._native.input)

    @property
    def output_names(self) -> Tuple[str, ...]:
        """The model's outputs, in order."""
        return tuple(self._native.output_names)

    @property
    def max_batch(self) -> Optional[int]:
        """Inputs per ciphertext for a throughput-packed model, else ``None``."""
        return self._native.max_batch

    def save(self, path: PathLike) -> None:
        """Writes the keys directory ``heman keygen`` writes: keyparams.json,
        eval.keys, secret.key (readable by its owner only) and, where there
        is one, public.key."""
        self._native.save(os.fspath(path))

    def encrypt(self, x: ArrayLike) -> bytes:
        """Encrypts an input (``heman encrypt``): an array of the model's
        input shape, or for a throughput model a batch ``[B, ...]``.

        Raises:
            RefusedError: a shape that is not the model's input, a batch
                larger than :attr:`max_batch`, or a non-finite value.
        """
        return self._native.encrypt(_raw(x))

    def decrypt(self, ciphertext: bytes, decryption_noise: Optional[float] = None) -> Output:
        """Decrypts an inference's answer (``heman decrypt``): the model's
        output (a tuple of arrays for several outputs, a batch axis first for
        a throughput model).

        Args:
            decryption_noise: before releasing the result to anyone (the
                model owner included), add decrypt-side noise of
                ``2**decryption_noise`` times the estimated error (CKKS;
                Li-Micciancio 2021). ``0`` matches the error.

        Raises:
            RefusedError: damaged bytes, a fresh input instead of an answer,
                or a ciphertext of other keys.
        """
        return _outputs(self._decrypt(ciphertext, decryption_noise))

    def decrypt_all(self, ciphertext: bytes, decryption_noise: Optional[float] = None) -> Dict[str, np.ndarray]:
        """As :meth:`decrypt`, every output by name."""
        return {name: _array(data, shape) for name, data, shape in self._decrypt(ciphertext, decryption_noise)}

    def _decrypt(self, ciphertext: bytes, noise: Optional[float]) -> Any:
        named, note = self._native.decrypt(_bytes(ciphertext, "ciphertext"), noise)
        self.last_release_note = note
        return named

    def query(
        self, url: str, model: str, x: ArrayLike, token: Optional[str] = None, retries: int = 0
    ) -> Output:
        """One encrypted inference on a ``heman serve`` server (what
        ``heman query`` does): registers :attr:`eval_keys` unless the server
        knows them, encrypts ``x``, sends it, decrypts the answer.

        Args:
            url: the server's HTTP address (``http://host:port``).
            model: the model's name on the server.
            token: a bearer token, for a server started with ``--tokens``.
            retries: send the request again, freshly encrypted, this many
                times when it fails on the way (connection refused or reset,
                502/503/504: a replica going away behind a load balancer).
                :attr:`last_retries` says how many were made.

        Raises:
            RefusedError: the served model's keyparams are not these keys'.
            ServerError: the server is unreachable or refused the request
                (its message included).
        """
        output, _, self.last_retries = _native.query(url, model, self._native, _raw(x), token, retries)
        return self.decrypt(output)

    def __repr__(self) -> str:
        state = f"{self.backend} keys" if self._keys is not None else "no keys yet"
        return f"<heman.Client {state}>"


def backends() -> List[Tuple[str, str]]:
    """The backends this build holds: ``(name, what it is)``."""
    return [(name, about) for name, about, _ in _native.backends()]


def set_threads(threads: int) -> None:
    """Sizes the worker pool (default: all cores); only before the first
    other call, as the command line's ``--threads``."""
    _native.set_threads(threads)
