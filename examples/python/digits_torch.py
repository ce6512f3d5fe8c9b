#!/usr/bin/env python3
"""From a PyTorch model to encrypted inference, both parties in one script.

Trains a small CNN on scikit-learn's 8x8 digits (bundled with scikit-learn,
no download), compiles it for CKKS, and classifies encrypted test digits:
the model owner never sees a digit, the data owner never sees a weight.

    pip install ./python torch scikit-learn tqdm
    python examples/python/digits_torch.py

`--serve` runs the two-party version instead: the model owner serves the
compiled model with `heman serve` (the binary, `cargo build --release`) and
the data owner queries it over HTTP with `heman.Client.query`.
"""

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from sklearn.datasets import load_digits

import heman


class Square(torch.nn.Module):
    """x*x: the activation CKKS computes exactly (ReLU would be approximated
    by a polynomial)."""

    def forward(self, x):
        return x * x


def train(images, labels, epochs=40):
    """A Conv -> x*x -> Linear -> x*x -> Linear network, trained with Adam."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), Square(), torch.nn.Flatten(),
        torch.nn.Linear(256, 32), Square(), torch.nn.Linear(32, 10),
    )
    x, y = torch.as_tensor(images, dtype=torch.float32), torch.as_tensor(labels)
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(epochs):
        for batch in torch.randperm(len(x)).split(64):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(net(x[batch]), y[batch]).backward()
            optimiser.step()
    return net.eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test", type=int, default=20, help="encrypted test digits to classify")
    parser.add_argument("--serve", action="store_true", help="through `heman serve` (two processes)")
    parser.add_argument("--heman", default="target/release/heman", help="the heman binary, for --serve")
    args = parser.parse_args()

    digits = load_digits()
    images = (digits.images / 16.0).reshape(-1, 1, 8, 8)
    train_x, train_y = images[:1500], digits.target[:1500]
    test_x, test_y = images[1500:], digits.target[1500:]
    net = train(train_x, train_y)
    with torch.no_grad():
        plain = net(torch.as_tensor(test_x, dtype=torch.float32)).numpy()
    print(f"float model: {np.mean(plain.argmax(1) == test_y):.1%} on {len(test_y)} test digits")

    # --- the model owner: compile (200 training images calibrate the ranges)
    model = heman.compile(net, train_x[:200], example_input=torch.zeros(1, 1, 8, 8))
    print(model.report.summary)
    predicted = model.predicted_accuracy(test_x[:100], test_y[:100])
    print(f"predicted from simulation on 100 test digits: {predicted['simulated']:.1%} (float {predicted['float']:.1%})")

    if args.serve:
        answers = serve_and_query(model, test_x[: args.test], args.heman)
    else:
        # --- the data owner: keys, encryption
        client = heman.Client(model.keyparams).keygen()
        keys = model.parse_keys(client.eval_keys)  # the model owner, once per data owner
        answers = []
        start = time.perf_counter()
        for x in test_x[: args.test]:
            answer = model.run(client.encrypt(x[None]), keys)  # model owner: ciphertexts only
            answers.append(client.decrypt(answer)[0])           # data owner
        print(f"{args.test} encrypted inferences in {time.perf_counter() - start:.2f} s")
    answers = np.array(answers)
    n = len(answers)
    agree = np.mean(answers.argmax(1) == plain[:n].argmax(1))
    print(f"encrypted: {np.mean(answers.argmax(1) == test_y[:n]):.1%} correct, "
          f"the float model's class on {agree:.1%}, largest deviation {np.max(np.abs(answers - plain[:n])):.3f}")
    return 0 if agree >= 0.95 else 1


def serve_and_query(model, inputs, heman_bin):
    """The model owner serves the compiled model; the data owner (here, the
    same script) queries it over HTTP."""
    with tempfile.TemporaryDirectory() as work:
        work = pathlib.Path(work)
        (work / "models" / "digits").mkdir(parents=True)
        model.save(work / "models" / "digits" / "digits.heman")
        server = subprocess.Popen(
            [heman_bin, "serve", "--model-repository", str(work / "models"), "--http", "127.0.0.1:0",
             "--grpc", "off", "--key-store", str(work / "registered")],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "HEMAN_LOG": "warn"},
        )
        try:
            url = next(line.split()[-1] for line in server.stdout if line.startswith("HTTP listening on "))
            print(f"heman serve on {url}")
            client = heman.Client.from_server(url, "digits").keygen()
            start = time.perf_counter()
            answers = [client.query(url, "digits", x[None])[0] for x in inputs]
            print(f"{len(inputs)} queries in {time.perf_counter() - start:.2f} s")
            return answers
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    sys.exit(main())
