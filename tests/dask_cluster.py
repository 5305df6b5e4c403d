"""A real dask cluster for the tests: a scheduler and workers started as subprocesses with dask's
own command line, on 127.0.0.1 only, stopped with everything they started."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil


def _dask_command() -> list[str]:
    found = shutil.which("dask", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "dask"]


#: Set in the cluster's processes, and so in every process they start: how they are found again.
MARKER = "PARPROC_TEST_DASK_CLUSTER"


def _stop(process: subprocess.Popen[bytes]) -> None:
    try:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
    except (OSError, subprocess.TimeoutExpired):
        process.kill()
        process.wait(5)


def _kill_marked(folder: Path) -> None:
    """Every process started for this cluster, however deep (a nanny restarting a worker while
    the cluster stops leaves orphans, which may be reparented to this process)."""
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 1.0:  # until none has been seen for a second
        marked = []
        for candidate in psutil.process_iter():
            try:
                if candidate.environ().get(MARKER) == str(folder):
                    candidate.kill()
                    marked.append(candidate)
            except psutil.Error:
                continue
        if marked:
            psutil.wait_procs(marked, timeout=10)
            quiet_since = time.monotonic()
        time.sleep(0.1)


def can_hide_folders() -> bool:
    """Whether workers can be started in a mount namespace of their own (``unshare -m``: root
    on Linux), where a folder of this machine is covered by an empty one."""
    if not shutil.which("unshare") or not shutil.which("mount"):
        return False
    probe = ["unshare", "-m", "--propagation", "private", "mount", "-t", "tmpfs", "tmpfs", "/mnt"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def tls_settings(folder: Path) -> dict[str, str]:
    """A self-signed certificate for 127.0.0.1 (``openssl``), as dask's configuration in
    environment variables: every process of the cluster, and its clients, use it, and nothing
    unencrypted is accepted."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    prefix = "DASK_DISTRIBUTED__COMM__"
    settings = {f"{prefix}TLS__CA_FILE": str(cert), f"{prefix}REQUIRE_ENCRYPTION": "True"}
    for role in ("CLIENT", "SCHEDULER", "WORKER"):
        settings[f"{prefix}TLS__{role}__CERT"] = str(cert)
        settings[f"{prefix}TLS__{role}__KEY"] = str(key)
    return settings


def _hidden(folder: Path, command: list[str]) -> list[str]:
    """``command`` run where ``folder`` is an empty tmpfs: as on another machine, for it."""
    script = 'mount -t tmpfs tmpfs "$0" && exec "$@"'
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, str(folder), *command]


@contextmanager
def dask_cluster(
    workers: int = 2,
    extra_worker_args: tuple[str, ...] = (),
    hide: Path | None = None,
    worker_tmp: Path | None = None,
    tls: dict[str, str] | None = None,
) -> Iterator[str]:
    """Start ``dask scheduler`` and ``dask worker`` (``workers`` single-threaded processes, each
    with a nanny) as subprocesses; yield the scheduler's address once every worker is there.

    ``hide``: a folder the workers cannot see (see ``can_hide_folders``); ``worker_tmp``: their
    TMPDIR; ``tls``: dask's TLS settings as environment variables (``tls_settings``), for a
    cluster that speaks nothing else."""
    import distributed

    folder = Path(tempfile.mkdtemp(prefix="parproc-dask-"))
    scheduler_file = folder / "scheduler.json"
    environment = dict(os.environ)
    # The workers import the tests' task modules by name, as this process does.
    environment["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    environment[MARKER] = str(folder)
    environment.update(tls or {})
    log = open(folder / "cluster.log", "wb")  # noqa: SIM115 - closed below
    dask = _dask_command()
    quiet = ["--no-dashboard", *(["--protocol", "tls"] if tls else [])]
    processes = [
        subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", *quiet,
             "--scheduler-file", str(scheduler_file)],
            stdout=log, stderr=subprocess.STDOUT, env=environment, cwd=folder,
        )
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            if time.monotonic() > deadline or processes[0].poll() is not None:
                raise RuntimeError(f"the dask scheduler did not start: {_tail(folder)}")
            time.sleep(0.1)
        worker = [*dask, "worker", "--scheduler-file", str(scheduler_file), "--host",
                  "127.0.0.1", "--nworkers", str(workers), "--nthreads", "1", *quiet,
                  *extra_worker_args]  # fmt: skip
        if hide is not None:
            worker = _hidden(hide, worker)
        worker_environment = dict(environment)
        if worker_tmp is not None:
            worker_environment["TMPDIR"] = str(worker_tmp)
        if workers:
            processes.append(
                subprocess.Popen(
                    worker, stdout=log, stderr=subprocess.STDOUT, env=worker_environment,
                    cwd=folder,
                )
            )  # fmt: skip
        security = None
        if tls:
            security = distributed.Security(
                tls_ca_file=tls["DASK_DISTRIBUTED__COMM__TLS__CA_FILE"],
                tls_client_cert=tls["DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT"],
                tls_client_key=tls["DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY"],
                require_encryption=True,
            )
        client_options = {"scheduler_file": str(scheduler_file), "security": security}
        with distributed.Client(**client_options, timeout=60) as client:
            if workers:
                client.wait_for_workers(workers, timeout=90)
            address = str(client.scheduler.address)
        yield address
    finally:
        for process in reversed(processes):
            _stop(process)
        _kill_marked(folder)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _tail(folder: Path) -> str:
    try:
        return (folder / "cluster.log").read_text(errors="replace")[-2000:]
    except OSError:
        return "(no log)"
