"""Servers the tests and benchmarks start: `heman serve`, and Triton
Inference Server with heman's backend, each on free ports of loopback."""

import importlib.util
import json
import os
import pathlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[2]


def save_models(repository, models, version=None):
    """Each compiled model in its own folder of `repository` (in a version
    folder, for Triton)."""
    for name, model in models.items():
        folder = repository / name / version if version else repository / name
        folder.mkdir(parents=True)
        model.save(folder / "model.heman")


class HemanServe:
    """`heman serve` on a free port of loopback, serving `models` (name to
    heman.CompiledModel) from `work`."""

    def __init__(self, heman_bin, work, models):
        save_models(work / "models", models)
        self.process = subprocess.Popen(
            [heman_bin, "serve", "--model-repository", str(work / "models"), "--http", "127.0.0.1:0",
             "--grpc", "off", "--key-store", str(work / "keys")],
            stdout=subprocess.PIPE, text=True, env={"HEMAN_LOG": "warn", "PATH": ""},
        )
        for line in self.process.stdout:
            if line.startswith("HTTP listening on "):
                self.url = line.split()[-1]
                self.http_address = self.url.removeprefix("http://")
                return
        raise AssertionError(f"heman serve exited: {self.process.wait()}")

    def register(self, model, eval_keys):
        """Registers evaluation keys (heman's endpoint); answers the key id."""
        request = urllib.request.Request(f"{self.url}/v2/models/{model}/keys", data=eval_keys, method="POST")
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.load(answer)["key_id"]

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


# A heman model's config.pbtxt: its inputs are all optional, since a request
# carries a ciphertext (with the key id as parameter or input) or keys to
# register.
MODEL_CONFIG = """backend: "heman"
max_batch_size: 0
input [
  {{ name: "ciphertext" data_type: TYPE_STRING dims: [ 1 ] optional: true }},
  {{ name: "eval_keys" data_type: TYPE_STRING dims: [ 1 ] optional: true }},
  {{ name: "key_id" data_type: TYPE_STRING dims: [ 1 ] optional: true }}
]
output [
  {{ name: "ciphertext" data_type: TYPE_STRING dims: [ 1 ] }},
  {{ name: "key_id" data_type: TYPE_STRING dims: [ 1 ] }}
]
instance_group [ {{ count: 1 kind: KIND_CPU }} ]
parameters: {{ key: "key_store" value: {{ string_value: "{key_store}" }} }}
"""


def tritonserver_binary():
    """Triton's server: $HEMAN_TRITONSERVER, else the one nvidia-pytriton
    bundles, if installed."""
    explicit = os.environ.get("HEMAN_TRITONSERVER")
    if explicit:
        return explicit
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        return None
    binary = pathlib.Path(spec.submodule_search_locations[0]) / "tritonserver" / "bin" / "tritonserver"
    return str(binary) if binary.exists() else None


def backend_library():
    """libtriton_heman.so: $HEMAN_TRITON_BACKEND (it must exist), else the
    release build's, if built."""
    explicit = os.environ.get("HEMAN_TRITON_BACKEND")
    if explicit:
        assert os.path.exists(explicit), f"HEMAN_TRITON_BACKEND={explicit} does not exist"
        return explicit
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    library = target / "release" / "libtriton_heman.so"
    return str(library) if library.exists() else None


def free_port():
    """A port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Triton:
    """A tritonserver with the heman backend and a model repository."""

    def __init__(self, binary, library, work, models):
        backends = work / "backends" / "heman"
        backends.mkdir(parents=True)
        shutil.copy(library, backends / "libtriton_heman.so")
        save_models(work / "models", models, version="1")
        for name in models:
            config = MODEL_CONFIG.format(key_store=work / "keys")
            (work / "models" / name / "config.pbtxt").write_text(config)
        self.http, self.grpc = free_port(), free_port()
        self.http_address = f"127.0.0.1:{self.http}"
        self.log = open(work / "tritonserver.log", "w")
        self.process = subprocess.Popen(
            [binary, f"--model-repository={work / 'models'}", f"--backend-directory={work / 'backends'}",
             f"--http-port={self.http}", f"--grpc-port={self.grpc}", f"--metrics-port={free_port()}",
             "--exit-on-error=true"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.log_path = work / "tritonserver.log"
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"tritonserver exited:\n{self.log_path.read_text()}")
            if self.ready():
                return
            time.sleep(0.5)
        raise AssertionError(f"tritonserver not ready in 120 s:\n{self.log_path.read_text()}")

    def ready(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/v2/health/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        finally:
            self.log.close()


class FlakyGateway:
    """An HTTP gateway in front of `upstream` (a server's URL) that turns
    away the first `failures` inference requests with 503, as a load
    balancer does while a replica goes away, and forwards everything else."""

    def __init__(self, upstream, failures):
        import http.server
        import threading

        gateway = self
        self.failures, self.turned_away = failures, 0

        class Forward(http.server.BaseHTTPRequestHandler):
            def forward(self, body=None):
                if self.command == "POST" and self.path.endswith("/infer") and gateway.turned_away < gateway.failures:
                    gateway.turned_away += 1
                    return self.answer(503, {"Content-Type": "application/json"}, b'{"error": "replica gone"}')
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                request = urllib.request.Request(upstream + self.path, data=body, headers=headers, method=self.command)
                try:
                    with urllib.request.urlopen(request, timeout=60) as reply:
                        self.answer(reply.status, dict(reply.headers), reply.read())
                except urllib.error.HTTPError as refused:
                    self.answer(refused.code, dict(refused.headers), refused.read())

            def answer(self, status, headers, body):
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self.forward()

            def do_POST(self):
                self.forward(self.rfile.read(int(self.headers.get("Content-Length", 0))))

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
