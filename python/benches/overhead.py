#!/usr/bin/env python3
"""The Python layer's overhead over the Rust calls it wraps.

For each call: the median wall time seen from Python, against the time the
same work takes inside the library (`Inference.seconds`, measured in Rust
around the inference) or through the extension module directly with the
arguments already converted (encrypt, decrypt). Run from the repository root
after `pip install ./python`:

    python python/benches/overhead.py [--repeat 30] [--batch 4096]
"""

import argparse
import pathlib
import platform
import resource
import statistics
import time

import numpy as np

import heman

REPO = pathlib.Path(__file__).resolve().parents[2]
DIGITS = REPO / "examples" / "digits"


def median_times(python, rust, repeat):
    """Medians of two calls timed alternately (so that the machine's drift
    falls on both alike)."""
    times = ([], [])
    for _ in range(repeat):
        for call, spent in ((python, times[0]), (rust, times[1])):
            start = time.perf_counter()
            call()
            spent.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def inference(model, client, x, repeat):
    keys = model.parse_keys(client.eval_keys)
    walls, insides = [], []
    for _ in range(repeat):
        ciphertext = client.encrypt(x)  # fresh: the model owner takes only fresh encryptions
        start = time.perf_counter()
        result = model.infer(ciphertext, keys)
        walls.append(time.perf_counter() - start)
        insides.append(result.seconds)
    return statistics.median(walls), statistics.median(insides), ciphertext, result.output


def report(what, python, rust):
    print(f"{what:<34} python {python * 1e3:9.3f} ms   rust {rust * 1e3:9.3f} ms   "
          f"overhead {(python - rust) * 1e6:8.1f} us ({100 * (python - rust) / rust:5.2f}%)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--batch", type=int, default=4096, help="inputs of the throughput run (0: skip it)")
    args = parser.parse_args()
    print(f"heman {heman.__version__}, Python {platform.python_version()}, {platform.machine()}, "
          f"medians of {args.repeat}")

    x = np.load(DIGITS / "input.npy")
    model = heman.compile(DIGITS / "digits_square.onnx", DIGITS / "calibration.npz", progress=False)
    client = heman.Client(model.keyparams).keygen(progress=False)
    wall, inside, ciphertext, answer = inference(model, client, x, args.repeat)
    report("inference (latency packing)", wall, inside)
    raw = heman._raw(x)
    report("encrypt", *median_times(lambda: client.encrypt(x), lambda: client._native.encrypt(raw), args.repeat))
    report("decrypt", *median_times(lambda: client.decrypt(answer), lambda: client._native.decrypt(answer, None),
                                    args.repeat))

    if args.batch:
        batched = heman.compile(DIGITS / "digits_square.onnx", DIGITS / "calibration.npz",
                                packing="throughput", batch=args.batch, progress=False)
        bclient = heman.Client(batched.keyparams).keygen(progress=False)
        images = np.resize(np.concatenate([np.load(f) for f in sorted((DIGITS / "test").glob("*.npy"))]),
                           (args.batch, 1, 8, 8))
        repeat = max(3, args.repeat // 6)
        wall, inside, _, answer = inference(batched, bclient, images, repeat)
        report(f"inference (a batch of {args.batch})", wall, inside)
        print(f"  {args.batch / wall:.0f} images/s seen from Python")
        braw = heman._raw(images)
        report(f"encrypt (a batch of {args.batch})",
               *median_times(lambda: bclient.encrypt(images), lambda: bclient._native.encrypt(braw), repeat))
        report(f"decrypt (a batch of {args.batch})",
               *median_times(lambda: bclient.decrypt(answer), lambda: bclient._native.decrypt(answer, None), repeat))
    print(f"peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
