"""The bench's moving parts: a moto server on a free loopback port, the real `relctl
controller` as a child process (its log, its /metrics, its /proc figures), the `relctl`
CLI, boto3 clients, and the deadline every wait runs under.

Nothing here measures by itself; `scenarios.py` does. Every process started here is
recorded (PID) in the work directory's `pids` file, so `scripts/bench`'s exit trap can
stop exactly these processes even if Python dies first.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import boto3
from botocore.config import Config as BotoConfig

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
CLK_TCK = os.sysconf("SC_CLK_TCK")


class DidNotFinish(Exception):
    """A scenario ran out of its time budget; reported, never a hang."""


@dataclass
class Deadline:
    """A per-scenario time budget that every wait loop checks."""

    seconds: float
    what: str
    start: float = field(default_factory=time.monotonic)

    @property
    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.start)

    def check(self, doing: str) -> None:
        if self.left <= 0:
            raise DidNotFinish(f"{self.what}: did not finish within {self.seconds:.0f}s ({doing})")


def wait_until(predicate: Callable[[], object], deadline: Deadline, doing: str, every: float = 0.05):
    """Calls `predicate` every `every` seconds until it returns something truthy."""
    while True:
        value = predicate()
        if value:
            return value
        deadline.check(doing)
        time.sleep(every)


class Pids:
    """The processes this run started, one PID a line in `work/pids` (for the shell trap)."""

    def __init__(self, work: Path):
        self.path = work / "pids"
        self.path.touch()

    def add(self, pid: int) -> None:
        with self.path.open("a") as f:
            f.write(f"{pid}\n")

    def remove(self, pid: int) -> None:
        kept = [p for p in self.path.read_text().split() if p != str(pid)]
        self.path.write_text("".join(f"{p}\n" for p in kept))


def stop_process(proc: subprocess.Popen, pids: Pids, grace: float = 30.0) -> None:
    """SIGTERM, then SIGKILL after `grace`; only ever the process we started."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    pids.remove(proc.pid)


class Moto:
    """`moto_server -H 127.0.0.1 -p 0`; the port is read from its start-up line."""

    def __init__(self, binary: Path, work: Path, pids: Pids, name: str):
        self.pids = pids
        self.log_path = work / f"moto-{name}.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(binary), "-H", "127.0.0.1", "-p", "0"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
        )
        pids.add(self.proc.pid)
        started = time.monotonic()
        port = None
        while port is None:
            text = self.log_path.read_text(errors="replace")
            m = re.search(r"Running on http://127\.0\.0\.1:(\d+)", text)
            if m:
                port = int(m.group(1))
            elif self.proc.poll() is not None or time.monotonic() - started > 60:
                self.stop()
                raise RuntimeError(f"moto did not start:\n{text}")
            else:
                time.sleep(0.1)
        self.endpoint = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        stop_process(self.proc, self.pids, grace=5)
        self.log.close()


class Aws:
    """boto3 clients pointed at one moto."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        cfg = BotoConfig(retries={"mode": "standard", "max_attempts": 4}, max_pool_connections=16)
        self.session = boto3.session.Session(
            aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION
        )
        self._cfg = cfg
        self._clients: dict[str, object] = {}

    def __getattr__(self, service: str):
        if service.startswith("_"):
            raise AttributeError(service)
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, endpoint_url=self.endpoint, config=self._cfg
            )
        return self._clients[service]

    def env(self, config: Path) -> dict[str, str]:
        """The environment the CLI and the controller run with."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RELCTL_"))}
        env.update(
            AWS_ENDPOINT_URL=self.endpoint, AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION,
            AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", RELCTL_CONFIG=str(config),
            AWS_EC2_METADATA_DISABLED="true",
        )
        return env


class Relctl:
    """The CLI, run as a child process with one configuration against one moto."""

    def __init__(self, binary: Path, aws: Aws, config: Path):
        self.binary, self.aws, self.config = binary, aws, config

    def run(self, *args: str, timeout: float = 120) -> tuple[str, float]:
        """Runs `relctl ARGS`; returns (stdout, wall seconds); raises with stderr on failure."""
        started = time.monotonic()
        done = subprocess.run(
            [str(self.binary), *args], env=self.aws.env(self.config), capture_output=True,
            text=True, timeout=timeout,
        )
        took = time.monotonic() - started
        if done.returncode != 0:
            raise RuntimeError(f"relctl {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
        return done.stdout, took


METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> dict[tuple[str, frozenset], float]:
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_LINE.match(line)
        if not m:
            continue
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        try:
            out[(m.group(1), labels)] = float(m.group(3))
        except ValueError:
            pass
    return out


def is_stream(service: str) -> bool:
    return service.lower().replace(" ", "").replace("_", "") == "dynamodbstreams"


def aws_calls(metrics: dict, streams: bool = False) -> dict[tuple[str, str, str], float]:
    """`relctl_aws_calls_total` as {(service, operation, outcome): count}."""
    out = {}
    for (name, labels), value in metrics.items():
        if name != "relctl_aws_calls_total":
            continue
        d = dict(labels)
        if is_stream(d.get("service", "")) and not streams:
            continue
        out[(d.get("service", "?"), d.get("operation", "?"), d.get("outcome", "?"))] = value
    return out


def diff_calls(before: dict, after: dict) -> dict[tuple[str, str, str], int]:
    keys = set(before) | set(after)
    out = {k: int(after.get(k, 0) - before.get(k, 0)) for k in keys}
    return {k: v for k, v in sorted(out.items()) if v}


def gauge(metrics: dict, name: str) -> float:
    return sum(v for (n, _), v in metrics.items() if n == name)


class Controller:
    """`relctl controller` as a child: its address (from its log), metrics and /proc figures."""

    def __init__(self, binary: Path, aws: Aws, config: Path, work: Path, pids: Pids, name: str,
                 extra_env: dict[str, str] | None = None):
        self.pids = pids
        self.log_path = work / f"controller-{name}.log"
        self.log = self.log_path.open("wb")
        env = aws.env(config)
        env.update(RELCTL_LOG_FORMAT="json")
        env.update(extra_env or {})
        self.started_at = time.time()
        self.proc = subprocess.Popen(
            [str(binary), "controller"], env=env, stdin=subprocess.DEVNULL,
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        pids.add(self.proc.pid)
        self.addr: str | None = None

    # -- the log -------------------------------------------------------------------
    def lines(self) -> list[dict]:
        """Every JSON line logged so far (read incrementally: the log can grow large)."""
        if not hasattr(self, "_lines"):
            self._lines, self._offset, self._partial = [], 0, b""
        with self.log_path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        self._offset += len(chunk)
        data = self._partial + chunk
        *complete, self._partial = data.split(b"\n")
        for raw in complete:
            try:
                self._lines.append(json.loads(raw))
            except ValueError:
                continue
        return self._lines

    def find_log(self, message: str, nth: int = 1) -> dict | None:
        seen = 0
        for line in self.lines():
            if line.get("message") == message:
                seen += 1
                if seen >= nth:
                    return line
        return None

    def count_log(self, message: str) -> int:
        return sum(1 for line in self.lines() if line.get("message") == message)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_started(self, deadline: Deadline) -> None:
        """Waits for the HTTP address in the log, then for /readyz to say leader."""
        def addr():
            if not self.alive():
                raise RuntimeError(f"controller exited {self.proc.returncode}: {self.tail()}")
            line = self.find_log("serving /metrics, /healthz, /readyz and the status page")
            return line and line.get("addr")
        self.addr = wait_until(addr, deadline, "waiting for the controller's address")

        def ready():
            try:
                with urllib.request.urlopen(f"http://{self.addr}/readyz", timeout=5) as r:
                    return json.loads(r.read()).get("role") == "leader"
            except Exception:
                return False
        wait_until(ready, deadline, "waiting for /readyz to say leader", every=0.1)

    def wait_resyncs(self, n: int, deadline: Deadline) -> None:
        wait_until(lambda: gauge(self.metrics(), "relctl_resyncs_total") >= n, deadline,
                   f"waiting for resync pass {n}", every=0.1)

    def tail(self, n: int = 15) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    # -- metrics ---------------------------------------------------------------------
    def metrics(self) -> dict:
        with urllib.request.urlopen(f"http://{self.addr}/metrics", timeout=10) as r:
            return parse_metrics(r.read().decode())

    def settled(self, deadline: Deadline, quiet: float = 0.8) -> dict:
        """Metrics once nothing but stream polling has moved for `quiet` seconds and no
        reconcile is queued or running."""
        last, since = None, time.monotonic()
        while True:
            m = self.metrics()
            calls = aws_calls(m)
            idle = gauge(m, "relctl_queue_depth") == 0 and gauge(m, "relctl_reconciles_in_flight") == 0
            if calls != last or not idle:
                last, since = calls, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return m
            deadline.check("waiting for the controller to settle")
            time.sleep(0.1)

    # -- /proc -------------------------------------------------------------------------
    def status_kb(self, field_name: str) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
        raise KeyError(field_name)

    def rss_mib(self) -> float:
        return self.status_kb("VmRSS") / 1024

    def hwm_mib(self) -> float:
        return self.status_kb("VmHWM") / 1024

    def cpu_seconds(self) -> float:
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime

    def stop(self) -> None:
        stop_process(self.proc, self.pids, grace=40)
        self.log.close()


def log_time(line: dict) -> float:
    """A JSON log line's timestamp as Unix seconds."""
    from datetime import datetime
    return datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).timestamp()


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
