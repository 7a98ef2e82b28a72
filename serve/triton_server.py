"""Start NVIDIA's Triton server (2.5x, from the nvidia-pytriton wheel: python backend only) on a
model repository, on 127.0.0.1, in its own process group; stop it by killing that group.

What the wheel needs to run outside pytriton, found by trying it: the python backend stub
built for this interpreter's version copied into the backends directory; this
interpreter's lib directory on LD_LIBRARY_PATH (else the stub loads the system libpython
against another standard library) next to the wheel's own libraries; this venv's bin first
on PATH (the stub's Python then finds the venv's packages).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from pathlib import Path

READY_TIMEOUT_S = 120
ROOT = Path(__file__).resolve().parents[1]  # the checkout whose runtime the python models run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TritonServer:
    """`with TritonServer(repository, workdir, models) as server:` ... `server.url` (HTTP)."""

    def __init__(self, repository: Path, workdir: Path, models: list[str], http_port: int | None = None) -> None:
        self.repository, self.workdir, self.models = repository, workdir, models
        self.http_port, self.grpc_port = http_port or free_port(), free_port()
        self.url = f"127.0.0.1:{self.http_port}"
        self.grpc_url = f"127.0.0.1:{self.grpc_port}"
        self.log = workdir / "tritonserver.log"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "TritonServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        import pytriton

        dist = Path(pytriton.__file__).parent / "tritonserver"
        server = self.workdir / "tritonserver"
        if not server.exists():
            shutil.copytree(dist, server, ignore=shutil.ignore_patterns("python_backend_stubs"))
            version = f"{sys.version_info.major}.{sys.version_info.minor}"
            stub = dist / "python_backend_stubs" / version / "triton_python_backend_stub"
            shutil.copy(stub, server / "backends" / "python" / "triton_python_backend_stub")
        libraries = [sysconfig.get_config_var("LIBDIR"), str(Path(pytriton.__file__).parent.parent / "nvidia_pytriton.libs")]
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = ":".join(p for p in libraries + [env.get("LD_LIBRARY_PATH", "")] if p)
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        # The python models import this checkout's runtime and serve/, not whichever one the
        # serving venv's editable install points at (another worktree's, say).
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        command = [
            str(server / "bin" / "tritonserver"),
            f"--model-repository={self.repository}",
            f"--backend-directory={server / 'backends'}",
            f"--cache-directory={server / 'caches'}",
            "--http-address=127.0.0.1", f"--http-port={self.http_port}",
            "--grpc-address=127.0.0.1", f"--grpc-port={self.grpc_port}",
            "--allow-metrics=false", "--allow-sagemaker=false", "--allow-vertex-ai=false",
            "--model-control-mode=explicit", *[f"--load-model={m}" for m in self.models],
            "--exit-on-error=true", "--log-verbose=0", "--exit-timeout-secs=10",
        ]
        with open(self.log, "w") as log:
            # Its own session and process group: stopped by killing the group, never by name.
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tritonserver exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://{self.url}/v2/health/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"tritonserver not ready after {READY_TIMEOUT_S} s:\n{self.log_tail()}")

    def log_tail(self, characters: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-characters:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        group = os.getpgid(self.process.pid)
        os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.process.wait(timeout=10)


def python_models(repository: Path) -> list[str]:
    """The models of a repository this server can load (the wheel has the python backend only)."""
    return sorted(c.parent.name for c in repository.glob("*/config.pbtxt") if 'backend: "python"' in c.read_text())


def main(argv: list[str] | None = None) -> int:
    """python -m serve.triton_server REPOSITORY [--http-port 8000]: serve until interrupted."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("repository", type=Path)
    parser.add_argument("--http-port", type=int, default=8000)
    args = parser.parse_args(argv)
    models = python_models(args.repository)
    with tempfile.TemporaryDirectory() as work, TritonServer(args.repository.resolve(), Path(work), models, args.http_port) as server:
        print(f"serving {models} on http://{server.url} (gRPC {server.grpc_url}); Ctrl-C stops", flush=True)
        try:
            while server.process.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
