#!/usr/bin/env python3
"""One load run through Triton Inference Server with heman's backend, next
to the same run through `heman serve`: the same compiled model, the same
official client (tritonclient over HTTP), the same fresh encryptions.

    python python/benches/triton_vs_serve.py [--requests 50] [--concurrency 4] [--runs 3]

Needs `pip install ./python nvidia-pytriton==0.7.0 "tritonclient[http]"`,
the `heman` binary and libtriton_heman.so (`cargo build --release -p
heman-cli -p heman-triton`). Every answer is decrypted and must give the
plaintext model's class.
"""

import argparse
import os
import pathlib
import platform
import queue
import statistics
import sys
import tempfile
import threading
import time

import numpy as np
import tritonclient.http as http

import heman

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from servers import HemanServe, Triton, backend_library, tritonserver_binary  # noqa: E402

DIGITS = HERE.parents[1] / "examples" / "digits"


def ciphertext_input(ciphertext):
    tensor = http.InferInput("ciphertext", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([ciphertext], dtype=np.object_))
    return tensor


def load_run(address, model, key_id, ciphertexts, concurrency):
    """Sends every ciphertext with `concurrency` requests in flight: the
    answers in order, each latency, the wall time."""
    work = queue.Queue()
    for item in enumerate(ciphertexts):
        work.put(item)
    answers, latencies = [None] * len(ciphertexts), [None] * len(ciphertexts)

    def worker():
        client = http.InferenceServerClient(url=address, network_timeout=600, connection_timeout=600)
        while True:
            try:
                i, ciphertext = work.get_nowait()
            except queue.Empty:
                return
            sent = time.perf_counter()
            result = client.infer(model, [ciphertext_input(ciphertext)], parameters={"key_id": key_id},
                                  outputs=[http.InferRequestedOutput("ciphertext")])
            latencies[i] = time.perf_counter() - sent
            answers[i] = result.as_numpy("ciphertext")[0]

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers, latencies, time.perf_counter() - start


def triton_register(address, model, eval_keys):
    client = http.InferenceServerClient(url=address, network_timeout=600, connection_timeout=600)
    tensor = http.InferInput("eval_keys", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([eval_keys], dtype=np.object_))
    result = client.infer(model, [tensor], outputs=[http.InferRequestedOutput("key_id")])
    return result.as_numpy("key_id")[0].decode()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3, help="runs per server, alternating")
    parser.add_argument("--heman", default=os.environ.get("HEMAN_BIN", "target/release/heman"))
    args = parser.parse_args()

    model = heman.compile(DIGITS / "digits_square.onnx", DIGITS / "calibration.npz", progress=False)
    x = np.load(DIGITS / "input.npy")
    expected = int(model.evaluate(x).argmax())
    with tempfile.TemporaryDirectory() as work:
        work = pathlib.Path(work)
        (work / "serve").mkdir()
        (work / "triton").mkdir()
        serve = HemanServe(args.heman, work / "serve", {"digits": model})
        triton = Triton(tritonserver_binary(), backend_library(), work / "triton", {"digits": model})
        try:
            client = heman.Client(model.keyparams).keygen(progress=False)
            servers = {
                "heman serve": (serve.http_address, serve.register("digits", client.eval_keys)),
                "Triton + heman backend": (triton.http_address,
                                           triton_register(triton.http_address, "digits", client.eval_keys)),
            }
            results = {name: [] for name in servers}
            for run in range(args.runs):
                for name, (address, key_id) in servers.items():
                    ciphertexts = [client.encrypt(x) for _ in range(args.requests)]
                    answers, latencies, wall = load_run(address, "digits", key_id, ciphertexts, args.concurrency)
                    classes = {int(client.decrypt(a).argmax()) for a in answers}
                    assert classes == {expected}, f"{name}: classes {classes}, expected {expected}"
                    ms = sorted(1e3 * s for s in latencies)
                    results[name].append((args.requests / wall, ms[len(ms) // 2], ms[int(0.99 * (len(ms) - 1))]))
        finally:
            serve.stop()
            triton.stop()
    print(f"digits_square (CKKS N = 2^13), {args.requests} requests, {args.concurrency} in flight, "
          f"{args.runs} runs each, alternating; {platform.machine()}, {os.cpu_count()} cores")
    for name, runs in results.items():
        rate, p50, p99 = (statistics.median(r[k] for r in runs) for k in range(3))
        print(f"{name:<24} {rate:6.1f} inferences/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   (medians of runs; "
              f"rates {', '.join(f'{r[0]:.1f}' for r in runs)})")


if __name__ == "__main__":
    main()
