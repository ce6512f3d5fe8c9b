#!/usr/bin/env python3
"""The data owner's side of heman's KServe v2 server, with the unchanged
official `tritonclient` (pip install "tritonclient[http]").

The ciphertexts are made and opened by the `heman` CLI (the secret key never
leaves this machine); tritonclient only carries them:

    heman keygen  -i keyparams.json -o keys/        # keyparams from GET /v2/models/NAME/keyparams
    heman encrypt -k keys/ -i input.npy -o input.enc
    python3 triton_query.py --url 127.0.0.1:8000 --model digits \
        --keys keys/eval.keys --input input.enc --output output.enc
    heman decrypt -k keys/ -i output.enc -o output.npy

Use --fetch-keyparams FILE to only save the model's keyparams.
"""

import argparse
import json
import sys
import urllib.request

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="127.0.0.1:8000")
    ap.add_argument("--model", required=True)
    ap.add_argument("--fetch-keyparams", metavar="FILE")
    ap.add_argument("--keys", help="eval.keys to register (or --key-id)")
    ap.add_argument("--key-id")
    ap.add_argument("--input", help="encrypted input (heman encrypt)")
    ap.add_argument("--output", help="where to write the encrypted output")
    args = ap.parse_args()

    client = httpclient.InferenceServerClient(url=args.url)
    assert client.is_server_live() and client.is_model_ready(args.model)
    meta = client.get_model_metadata(args.model)
    if args.fetch_keyparams:
        with open(args.fetch_keyparams, "w") as f:
            f.write(meta["parameters"]["keyparams"])
        return 0

    key_id = args.key_id
    if key_id is None:
        # Extension endpoint (not part of tritonclient): register the keys once.
        with open(args.keys, "rb") as f:
            req = urllib.request.Request(
                f"http://{args.url}/v2/models/{args.model}/keys", data=f.read(), method="POST")
        with urllib.request.urlopen(req) as r:
            key_id = json.load(r)["key_id"]
        print(f"key_id {key_id}", file=sys.stderr)

    with open(args.input, "rb") as f:
        ciphertext = f.read()
    inp = httpclient.InferInput(meta["inputs"][0]["name"], [1], "BYTES")
    inp.set_data_from_numpy(np.array([ciphertext], dtype=np.object_), binary_data=True)
    out = httpclient.InferRequestedOutput(meta["outputs"][0]["name"], binary_data=True)
    try:
        result = client.infer(args.model, [inp], outputs=[out], parameters={"key_id": key_id})
    except InferenceServerException as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    with open(args.output, "wb") as f:
        f.write(result.as_numpy(meta["outputs"][0]["name"])[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
