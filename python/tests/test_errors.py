"""Bad input raises a clear Python exception with the Rust message."""

import numpy as np
import pytest

import heman
from conftest import CALIBRATION, SQUARE, digits


def test_a_wrong_shape_is_refused_naming_it(ckks_client):
    with pytest.raises(heman.RefusedError, match=r"shape \[3, 3\].*'input' is \[1, 1, 8, 8\]"):
        ckks_client.encrypt(np.zeros((3, 3)))


def test_a_non_finite_input_is_refused(ckks_client):
    x = np.zeros((1, 1, 8, 8))
    x[0, 0, 2, 3] = np.nan
    with pytest.raises(heman.RefusedError, match="element 19 is NaN"):
        ckks_client.encrypt(x)


def test_a_truncated_ciphertext_is_refused(ckks_model, ckks_client):
    x, _ = digits(1)[0]
    ciphertext = ckks_client.encrypt(x)
    with pytest.raises(heman.RefusedError):
        ckks_model.run(ciphertext[: len(ciphertext) // 2], ckks_client.eval_keys)
    answer = ckks_model.run(ciphertext, ckks_client.eval_keys)
    with pytest.raises(heman.RefusedError, match="output ciphertext refused.*truncated"):
        ckks_client.decrypt(answer[:-7])
    with pytest.raises(heman.RefusedError, match="not an inference output"):
        ckks_client.decrypt(ciphertext)


def test_foreign_keys_are_refused(ckks_model):
    other = heman.compile(SQUARE, CALIBRATION, packing="throughput", progress=False)
    foreign = heman.Client(other.keyparams).keygen(progress=False)
    with pytest.raises(heman.RefusedError):
        ckks_model.parse_keys(foreign.eval_keys)
    x, _ = digits(1)[0]
    with pytest.raises(heman.RefusedError):
        ckks_model.run(foreign.encrypt(x[None]), ckks_model.parse_keys(heman.Client(ckks_model.keyparams).keygen(progress=False).eval_keys))


def test_damaged_keys_are_refused(ckks_model, ckks_client):
    keys = bytearray(ckks_client.eval_keys)
    keys[:4] = b"XXXX"
    with pytest.raises(heman.RefusedError):
        ckks_model.parse_keys(bytes(keys))
    with pytest.raises(heman.RefusedError):
        ckks_model.parse_keys(ckks_client.eval_keys[:1000])


def test_a_model_that_is_not_onnx_is_a_model_error():
    with pytest.raises(heman.ModelError, match="not an ONNX|decode|ONNX"):
        heman.compile(b"certainly not protobuf \xff\xff", CALIBRATION, progress=False)


def test_an_unknown_option_names_the_known_ones():
    with pytest.raises(heman.CompileError, match="no such option.*packing"):
        heman.compile(SQUARE, CALIBRATION, progress=False, pakcing="throughput")


def test_an_option_of_the_other_backend_is_refused():
    with pytest.raises(heman.CompileError):
        heman.compile(SQUARE, CALIBRATION, backend="tfhe", packing="throughput", progress=False)


def test_calibration_of_another_shape_names_it():
    with pytest.raises(heman.RefusedError, match=r"calibration sample 0.*'input' is \[1, 1, 8, 8\]"):
        heman.compile(SQUARE, np.zeros((5, 3, 3)), progress=False)


def test_a_missing_file_is_a_python_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        heman.load(tmp_path / "absent.heman")
    with pytest.raises(heman.FileError, match="not a keys directory"):
        heman.Client.load(tmp_path)
    (tmp_path / "bad.heman").write_bytes(b"not a compiled model")
    with pytest.raises(heman.HemanError):
        heman.load(tmp_path / "bad.heman")


def test_a_client_without_keys_says_so(ckks_model):
    with pytest.raises(heman.HemanError, match="keygen"):
        heman.Client(ckks_model.keyparams).encrypt(np.zeros((1, 1, 8, 8)))


def test_bytes_are_required_where_files_travel(ckks_model):
    with pytest.raises(TypeError, match="expected bytes"):
        ckks_model.run("a string", b"")
