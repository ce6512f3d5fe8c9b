"""heman's native backend (libtriton_heman.so) in a real Triton Inference
Server, driven by the official tritonclient over HTTP and gRPC.

The server is the one `nvidia-pytriton` bundles (.ci/run installs it in the
test virtualenv); without it, or without the built backend, the tests are
skipped, saying why."""

import numpy as np
import pytest

import heman
from conftest import CALIBRATION, RELU, SQUARE, digits, onnxruntime_outputs
from servers import Triton, backend_library, tritonserver_binary


@pytest.fixture(scope="module")
def triton(tmp_path_factory):
    binary, library = tritonserver_binary(), backend_library()
    if binary is None:
        pytest.skip("no tritonserver: pip install nvidia-pytriton==0.7.0 (bundles Triton 2.51), or set HEMAN_TRITONSERVER")
    if library is None:
        pytest.skip("no libtriton_heman.so: cargo build --release -p heman-triton, or set HEMAN_TRITON_BACKEND")
    pytest.importorskip("tritonclient.http", reason="pip install tritonclient[http,grpc]")
    models = {
        "digits_ckks": heman.compile(SQUARE, CALIBRATION, progress=False),
        "digits_tfhe": heman.compile(RELU, CALIBRATION, backend="tfhe", progress=False),
    }
    server = Triton(binary, library, tmp_path_factory.mktemp("triton"), models)
    yield server, models
    server.stop()


def bytes_input(module, name, payload):
    tensor = module.InferInput(name, [1], "BYTES")
    tensor.set_data_from_numpy(np.array([payload], dtype=np.object_))
    return tensor


def register(module, client, model, eval_keys):
    result = client.infer(model, [bytes_input(module, "eval_keys", eval_keys)],
                          outputs=[module.InferRequestedOutput("key_id")])
    return result.as_numpy("key_id")[0].decode()


def infer(module, client, model, ciphertext, key_id, key_as_input=False):
    inputs = [bytes_input(module, "ciphertext", ciphertext)]
    parameters = None
    if key_as_input:
        inputs.append(bytes_input(module, "key_id", key_id.encode()))
    else:
        parameters = {"key_id": key_id}
    result = client.infer(model, inputs, outputs=[module.InferRequestedOutput("ciphertext")], parameters=parameters)
    return result.as_numpy("ciphertext")[0]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_triton_answers_both_backends_through_tritonclient(triton, protocol):
    server, models = triton
    import tritonclient.grpc
    import tritonclient.http

    module = tritonclient.http if protocol == "http" else tritonclient.grpc
    url = f"127.0.0.1:{server.http if protocol == 'http' else server.grpc}"
    client = module.InferenceServerClient(url=url)
    for name, onnx_model in (("digits_ckks", SQUARE), ("digits_tfhe", RELU)):
        data_owner = heman.Client(models[name].keyparams).keygen(progress=False)
        key_id = register(module, client, name, data_owner.eval_keys)
        assert len(key_id) == 64, key_id
        for x, label in digits(2):
            answer = infer(module, client, name, data_owner.encrypt(x), key_id, key_as_input=protocol == "grpc")
            y = data_owner.decrypt(answer)
            expected = onnxruntime_outputs(onnx_model, x)
            assert y.argmax() == expected.argmax(), f"{name} over {protocol}, digit labelled {label}"


def test_refusals_come_back_as_triton_errors_and_the_server_stays_up(triton):
    server, models = triton
    import tritonclient.http
    from tritonclient.utils import InferenceServerException

    client = tritonclient.http.InferenceServerClient(url=f"127.0.0.1:{server.http}")
    data_owner = heman.Client(models["digits_ckks"].keyparams).keygen(progress=False)
    key_id = register(tritonclient.http, client, "digits_ckks", data_owner.eval_keys)
    x, _ = digits(1)[0]

    with pytest.raises(InferenceServerException, match="unknown key_id 'f{64}'.*input 'eval_keys' registers them"):
        infer(tritonclient.http, client, "digits_ckks", data_owner.encrypt(x), "f" * 64)
    damaged = bytearray(data_owner.encrypt(x))
    damaged[len(damaged) // 2] ^= 0xFF
    with pytest.raises(InferenceServerException, match="input ciphertext refused"):
        infer(tritonclient.http, client, "digits_ckks", bytes(damaged), key_id)
    tfhe_owner = heman.Client(models["digits_tfhe"].keyparams).keygen(progress=False)
    with pytest.raises(InferenceServerException, match="holds tfhe evaluation keys, expected ckks"):
        register(tritonclient.http, client, "digits_ckks", tfhe_owner.eval_keys)
    with pytest.raises(InferenceServerException, match="neither input"):
        client.infer("digits_ckks", [bytes_input(tritonclient.http, "key_id", b"x")])
    ciphertext = data_owner.encrypt(x)
    infer(tritonclient.http, client, "digits_ckks", ciphertext, key_id)
    with pytest.raises(InferenceServerException, match="masks were answered under this key before"):
        infer(tritonclient.http, client, "digits_ckks", ciphertext, key_id)

    assert server.ready() and server.process.poll() is None, "the server stays up"
    y = data_owner.decrypt(infer(tritonclient.http, client, "digits_ckks", data_owner.encrypt(x), key_id))
    assert y.argmax() == onnxruntime_outputs(SQUARE, x).argmax()
