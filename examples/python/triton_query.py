#!/usr/bin/env python3
"""The data owner's side of `heman serve`, with the unchanged official
`tritonclient` package (pip install "tritonclient[http,grpc]" numpy) over
HTTP or gRPC.

tritonclient only carries ciphertexts; the `heman` CLI makes the keys,
encrypts and decrypts, so the secret key never leaves this machine:

    python3 triton_query.py --url 127.0.0.1:8000 --protocol http \\
        --model digits --keys keys/ --input x.npy --output y.npy
    python3 triton_query.py --url 127.0.0.1:8001 --protocol grpc \\
        --model digits --keys keys/ --input x.npy --output y.npy

Steps: fetch the model's keyparams (model metadata over HTTP; heman's
KeyService over gRPC), `heman keygen` when --keys holds no keys, register the
evaluation keys (heman's extension: POST /v2/models/NAME/keys, or
heman.KeyService/RegisterKeys), `heman encrypt`, infer with tritonclient
(one BYTES input holding the ciphertext file, the key id as the request
parameter "key_id"), `heman decrypt`.

A server started with `heman serve --tokens FILE` wants this client's bearer
token on every call: pass `--token-file FILE` (or set HEMAN_TOKEN); it goes
in the `authorization` header (HTTP) or metadata (gRPC).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

import numpy as np
from tritonclient.utils import InferenceServerException


# --- heman.KeyService over gRPC, without generated code -------------------
# tritonclient[grpc] brings grpcio but has no stubs for heman's extension
# service; its three messages hold only string and bytes fields, so they are
# encoded here by hand (protobuf wire format: tag, length, bytes).

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value: bytes) -> bytes:
    """A length-delimited field (string or bytes)."""
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _string_field(message: bytes, number: int) -> str:
    """The first length-delimited field `number` of a message, as text."""
    at = 0
    while at < len(message):
        key, shift = 0, 0
        while True:
            b = message[at]
            at += 1
            key |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        wire = key & 7
        if wire != 2:
            raise ValueError(f"unexpected wire type {wire} in a KeyService answer")
        length, shift = 0, 0
        while True:
            b = message[at]
            at += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        value = message[at:at + length]
        at += length
        if key >> 3 == number:
            return value.decode()
    raise ValueError(f"field {number} missing from a KeyService answer")


class GrpcKeys:
    """heman.KeyService: keyparams and key registration over gRPC."""

    def __init__(self, url: str, headers: dict):
        import grpc

        self.metadata = list(headers.items())
        # Keys are tens to hundreds of MiB: no message size cap.
        self.channel = grpc.insecure_channel(
            url, options=[("grpc.max_send_message_length", -1),
                          ("grpc.max_receive_message_length", -1)])

    def _call(self, method: str, request: bytes) -> bytes:
        # No (de)serialisers: grpcio passes bytes through.
        return self.channel.unary_unary(f"/heman.KeyService/{method}")(
            request, metadata=self.metadata)

    def keyparams(self, model: str) -> str:
        return _string_field(self._call("GetKeyParams", _field(1, model.encode())), 1)

    def register(self, model: str, eval_keys: bytes) -> str:
        request = _field(1, model.encode()) + _field(2, eval_keys)
        return _string_field(self._call("RegisterKeys", request), 1)


class HttpKeys:
    """heman's HTTP extension endpoints (keyparams also in model metadata)."""

    def __init__(self, url: str, client, headers: dict):
        self.base = url if "://" in url else f"http://{url}"
        self.client = client
        self.headers = headers

    def keyparams(self, model: str) -> str:
        metadata = self.client.get_model_metadata(model, headers=self.headers)
        return metadata["parameters"]["keyparams"]

    def register(self, model: str, eval_keys: bytes) -> str:
        req = urllib.request.Request(f"{self.base}/v2/models/{model}/keys",
                                     data=eval_keys, method="POST", headers=self.headers)
        try:
            with urllib.request.urlopen(req) as r:
                return json.load(r)["key_id"]
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"key registration refused: {e.read().decode()}") from e


def heman(binary: str, *args: str) -> None:
    subprocess.run([binary, *args], check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="127.0.0.1:8000", help="host:port of the chosen protocol")
    ap.add_argument("--protocol", choices=["http", "grpc"], default="http")
    ap.add_argument("--model", required=True)
    ap.add_argument("--keys", required=True, help="keys directory (made if empty)")
    ap.add_argument("--input", required=True, help="input .npy")
    ap.add_argument("--output", required=True, help="decrypted output .npy")
    ap.add_argument("--heman", default=os.environ.get("HEMAN", "heman"),
                    help="the heman binary (default: $HEMAN or heman on the PATH)")
    ap.add_argument("--token-file",
                    help="this client's bearer token (default: $HEMAN_TOKEN, if set)")
    args = ap.parse_args()

    token = os.environ.get("HEMAN_TOKEN")
    if args.token_file:
        with open(args.token_file) as f:
            token = f.read()
    # gRPC metadata keys are lower case; HTTP headers ignore case.
    headers = {"authorization": f"Bearer {token.strip()}"} if token else {}

    if args.protocol == "http":
        import tritonclient.http as triton
        client = triton.InferenceServerClient(url=args.url)
        keys = HttpKeys(args.url, client, headers)
    else:
        import tritonclient.grpc as triton
        client = triton.InferenceServerClient(url=args.url)
        keys = GrpcKeys(args.url, headers)
    if not (client.is_server_live() and client.is_server_ready()
            and client.is_model_ready(args.model, headers=headers)):
        print(f"error: model {args.model} is not ready", file=sys.stderr)
        return 1
    metadata = client.get_model_metadata(args.model, headers=headers)
    if args.protocol == "grpc":
        metadata = {"inputs": [{"name": t.name} for t in metadata.inputs],
                    "outputs": [{"name": t.name} for t in metadata.outputs]}
    input_name = metadata["inputs"][0]["name"]
    output_name = metadata["outputs"][0]["name"]

    os.makedirs(args.keys, exist_ok=True)
    if not os.path.exists(os.path.join(args.keys, "secret.key")):
        keyparams = os.path.join(args.keys, "keyparams.json")
        with open(keyparams, "w") as f:
            f.write(keys.keyparams(args.model))
        heman(args.heman, "keygen", "-i", keyparams, "-o", args.keys)
    with open(os.path.join(args.keys, "eval.keys"), "rb") as f:
        key_id = keys.register(args.model, f.read())
    print(f"key_id {key_id}", file=sys.stderr)

    with tempfile.TemporaryDirectory() as work:
        encrypted = os.path.join(work, "input.enc")
        answer = os.path.join(work, "output.enc")
        heman(args.heman, "encrypt", "-k", args.keys, "-i", args.input, "-o", encrypted)
        with open(encrypted, "rb") as f:
            ciphertext = f.read()

        tensor = triton.InferInput(input_name, [1], "BYTES")
        if args.protocol == "http":
            # Binary mode: a ciphertext is not UTF-8, so JSON mode cannot carry it.
            tensor.set_data_from_numpy(np.array([ciphertext], dtype=np.object_),
                                       binary_data=True)
            outputs = [triton.InferRequestedOutput(output_name, binary_data=True)]
        else:
            tensor.set_data_from_numpy(np.array([ciphertext], dtype=np.object_))
            outputs = [triton.InferRequestedOutput(output_name)]
        try:
            result = client.infer(args.model, [tensor], outputs=outputs,
                                  parameters={"key_id": key_id}, headers=headers)
        except InferenceServerException as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        with open(answer, "wb") as f:
            f.write(result.as_numpy(output_name)[0])
        heman(args.heman, "decrypt", "-k", args.keys, "-i", answer, "-o", args.output)
    y = np.load(args.output)
    print(f"{args.output}: shape {list(y.shape)}, argmax {int(y.argmax())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
