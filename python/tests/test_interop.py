"""Files made by Python read by the CLI, and the reverse; a query through
`heman serve`."""

import numpy as np
import pytest

import heman
from conftest import CALIBRATION, SQUARE, assert_close, digits, onnxruntime_outputs, run_cli
from servers import FlakyGateway, HemanServe


def test_the_cli_runs_what_python_made(tmp_path, heman_bin, ckks_model, ckks_client):
    ckks_model.save(tmp_path / "model.heman", keyparams=tmp_path / "keyparams.json")
    ckks_client.save(tmp_path / "keys")
    x, _ = digits(1)[0]
    (tmp_path / "x.ct").write_bytes(ckks_client.encrypt(x))
    run_cli(heman_bin, "inference", "-m", tmp_path / "model.heman", "-k", tmp_path / "keys" / "eval.keys",
            "-i", tmp_path / "x.ct", "-o", tmp_path / "y.ct")
    run_cli(heman_bin, "decrypt", "-k", tmp_path / "keys", "-i", tmp_path / "y.ct", "-o", tmp_path / "y.npy")
    expected = onnxruntime_outputs(SQUARE, x)
    assert_close(np.load(tmp_path / "y.npy"), expected, "CLI on Python's files")
    # And the CLI's output file decrypted by Python.
    assert_close(ckks_client.decrypt((tmp_path / "y.ct").read_bytes()), expected, "Python on the CLI's answer")


def test_python_runs_what_the_cli_made(tmp_path, heman_bin):
    run_cli(heman_bin, "keyparams", "-m", SQUARE, "-c", CALIBRATION, "-o", tmp_path / "keyparams.json",
            "--compiled", tmp_path / "model.heman")
    run_cli(heman_bin, "keygen", "-i", tmp_path / "keyparams.json", "-o", tmp_path / "keys")
    x, _ = digits(1)[0]
    np.save(tmp_path / "x.npy", x)
    run_cli(heman_bin, "encrypt", "-k", tmp_path / "keys", "-i", tmp_path / "x.npy", "-o", tmp_path / "x.ct")

    model = heman.load(tmp_path / "model.heman")
    client = heman.Client.load(tmp_path / "keys")
    answer = model.run((tmp_path / "x.ct").read_bytes(), client.eval_keys)
    assert_close(client.decrypt(answer), onnxruntime_outputs(SQUARE, x), "Python on the CLI's files")


def test_a_query_through_heman_serve(tmp_path, heman_bin, ckks_model):
    server = HemanServe(heman_bin, tmp_path, {"digits": ckks_model})
    try:
        client = heman.Client.from_server(server.url, "digits").keygen(progress=False)
        assert client.keyparams == ckks_model.keyparams
        for x, label in digits(2):
            assert_close(client.query(server.url, "digits", x), onnxruntime_outputs(SQUARE, x),
                         f"served digit labelled {label}")
        assert len(list((tmp_path / "keys").rglob("*"))) >= 1, "the keys were registered"

        stranger = heman.Client(heman.compile(SQUARE, CALIBRATION, packing="throughput", progress=False).keyparams)
        stranger.keygen(progress=False)
        with pytest.raises(heman.RefusedError, match="other keyparams"):
            stranger.query(server.url, "digits", digits(1)[0][0])
        with pytest.raises(heman.ServerError, match="404|not found|no model"):
            client.query(server.url, "absent", digits(1)[0][0])
        assert server.process.poll() is None, "the server stays up"
    finally:
        server.stop()
    with pytest.raises(heman.ServerError):
        heman.Client.from_server(server.url, "digits")


def test_a_query_retries_what_a_gateway_turned_away(tmp_path, heman_bin, ckks_model):
    server = HemanServe(heman_bin, tmp_path, {"digits": ckks_model})
    gateway = FlakyGateway(server.url, failures=2)
    try:
        client = heman.Client.from_server(gateway.url, "digits").keygen(progress=False)
        x, _ = digits(1)[0]
        with pytest.raises(heman.ServerError, match="503.*replica gone"):
            client.query(gateway.url, "digits", x)
        assert client.last_retries == 0
        y = client.query(gateway.url, "digits", x, retries=3)
        assert client.last_retries == 1, "one more 503, then through"
        assert gateway.turned_away == 2
        assert_close(y, onnxruntime_outputs(SQUARE, x), "after a retry")
    finally:
        gateway.stop()
        server.stop()


def test_a_throughput_batch_goes_through_heman_serve_as_one_query(tmp_path, heman_bin):
    model = heman.compile(SQUARE, CALIBRATION, packing="throughput", progress=False)
    server = HemanServe(heman_bin, tmp_path, {"batched": model})
    try:
        client = heman.Client.from_server(server.url, "batched").keygen(progress=False)
        assert client.max_batch == model.max_batch
        images = digits(5)
        batch = np.concatenate([x for x, _ in images])
        y = client.query(server.url, "batched", batch)
        assert y.shape == (5, 10)
        for i, (x, label) in enumerate(images):
            assert_close(y[i], onnxruntime_outputs(SQUARE, x)[0], f"batch item {i}, labelled {label}")
    finally:
        server.stop()
