"""Fixtures: a data directory trained once per session by the `eraser`
binary under test, and `eraser serve` processes started on copies of it
(a deletion in one test never reaches another). ERASER_BIN names the
binary (ctest sets it); the default is the tree's build/bin/eraser."""

import gzip
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import types

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
ERASER = os.environ.get("ERASER_BIN", str(ROOT / "build" / "bin" / "eraser"))
FASHION = pathlib.Path(os.environ.get("ERASER_FASHION_MNIST_DIR",
                                      "/usr/share/datasets/fashion-mnist"))


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A small ensemble: 4 linear shards of 2 slices on Fashion-MNIST."""
    d = tmp_path_factory.mktemp("trained") / "data"
    subprocess.run([ERASER, "train", "--data-dir", str(d), "--shards", "4",
                    "--slices", "2", "--model", "linear"],
                   check=True, stdout=subprocess.DEVNULL)
    return d


@pytest.fixture(scope="session")
def test_images():
    """The Fashion-MNIST test images as uint8 [10000, 28, 28]."""
    with gzip.open(FASHION / "t10k-images-idx3-ubyte.gz", "rb") as f:
        raw = f.read()
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 28, 28)


class Server:
    """`eraser serve` on a copy of the trained directory, on a free
    loopback port; stopped (SIGTERM, then waited for) by the fixture."""

    def __init__(self, trained, workdir, args):
        self.dir = workdir / "data"
        shutil.copytree(trained, self.dir)
        self.log = workdir / "stderr.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [ERASER, "serve", "--data-dir", str(self.dir), "--listen",
                 "127.0.0.1:0", "--metrics-listen", ""] + list(args),
                stdout=subprocess.PIPE, stderr=log, text=True)
        # "eraser serve: listening on 127.0.0.1:PORT (...)" once it serves.
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("eraser serve did not start: " + line +
                               self.log.read_text())
        address = line.split("listening on ")[1].split()[0]
        self.port = int(address.rsplit(":", 1)[1])
        # With --grpc-listen: "eraser serve: gRPC on 127.0.0.1:PORT (...)".
        self.grpc_port = None
        if "--grpc-listen" in args:
            line = self.proc.stdout.readline()
            if "gRPC on" not in line:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("no gRPC address: " + line)
            address = line.split("gRPC on ")[1].split()[0]
            self.grpc_port = int(address.rsplit(":", 1)[1])
        # The rest of its stdout, read as it comes (a full pipe would stop
        # the server).
        self.output = []
        self._reader = threading.Thread(
            target=lambda: self.output.extend(self.proc.stdout), daemon=True)
        self._reader.start()

    def url(self, scheme="http"):
        return f"{scheme}://127.0.0.1:{self.port}"

    def grpc_target(self):
        return f"127.0.0.1:{self.grpc_port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join()
        self.proc.stdout.close()
        return self.proc.returncode


@pytest.fixture
def serve(trained, tmp_path):
    """serve(*args) starts a server with extra `eraser serve` flags."""
    servers = []

    def start(*args):
        s = Server(trained, tmp_path / f"server{len(servers)}", args)
        servers.append(s)
        return s

    yield start
    for s in servers:
        assert s.stop() == 0, "eraser serve did not shut down cleanly"


@pytest.fixture(scope="session")
def grpc_stubs(tmp_path_factory):
    """Python stubs of the project's .proto files, generated now by protoc
    and grpc_python_plugin (Debian's protobuf-compiler-grpc): the modules
    inference_pb2(_grpc) and deletions_pb2(_grpc)."""
    out = tmp_path_factory.mktemp("stubs")
    proto = ROOT / "serve" / "proto"
    subprocess.run(["protoc", f"--proto_path={proto}", f"--python_out={out}",
                    f"--grpc_out={out}",
                    "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
                    str(proto / "inference.proto"),
                    str(proto / "deletions.proto")], check=True)
    sys.path.insert(0, str(out))
    import deletions_pb2
    import deletions_pb2_grpc
    import inference_pb2
    import inference_pb2_grpc
    return types.SimpleNamespace(pb=inference_pb2, pbg=inference_pb2_grpc,
                                 dpb=deletions_pb2, dpbg=deletions_pb2_grpc)


def eraser_token(auth_file, scopes):
    """A new token with `scopes`, appended to `auth_file`."""
    out = subprocess.run([ERASER, "token", "--scopes", scopes, "--auth-file",
                          str(auth_file)], check=True, capture_output=True,
                         text=True)
    return out.stdout.strip()


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1: (cert, key) paths."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    return cert, key
