# SPDX-License-Identifier: Apache-2.0
"""Fixtures of the shmbus Python tests: a private shmbusd (the build's,
$SHMBUSD) on a bus of its own, in a runtime directory of its own, started
once for the session and always torn down with its segments; `cli` runs
the build's shmbus command ($SHMBUS_CLI) on that bus."""
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

WAIT = 10  # seconds any wait of the fixtures may take


def _wait_for(what, cond, timeout=WAIT):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.02)


@pytest.fixture(scope="session")
def bus_name():
    shmbusd = os.environ.get("SHMBUSD")
    if not shmbusd:
        pytest.skip("SHMBUSD (the built shmbusd) is not set: run through ctest")
    name = f"py{os.getpid()}"
    rundir = tempfile.mkdtemp(prefix="shmbus-py.")
    old = {k: os.environ.get(k) for k in ("XDG_RUNTIME_DIR", "SHMBUS_RUNTIME_DIR", "SHMBUS_BUS")}
    os.environ["XDG_RUNTIME_DIR"] = rundir
    os.environ.pop("SHMBUS_RUNTIME_DIR", None)
    os.environ["SHMBUS_BUS"] = name
    log = open(os.path.join(rundir, "daemon.log"), "w+")
    daemon = subprocess.Popen([shmbusd, "--bus", name, "--foreground", "--log-level", "warn",
                               "--reap-interval", "10"], stderr=log)
    try:
        sock = os.path.join(rundir, "shmbus", f"{name}.sock")
        _wait_for("shmbusd's socket", lambda: os.path.exists(sock) or daemon.poll() is not None)
        assert daemon.poll() is None, "shmbusd exited at start"
        yield name
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(WAIT)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.seek(0)
        text = log.read()
        log.close()
        if text:
            print("shmbusd log:\n" + text)
        # daemon/segfile.h SBD_SEG_PREFIX: the bus's segments.
        for f in glob.glob(f"/dev/shm/shmbus.{name}.*"):
            os.unlink(f)
        shutil.rmtree(rundir, ignore_errors=True)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def bus(bus_name):
    import shmbus

    with shmbus.connect(bus_name) as b:
        yield b


_topic_no = [0]


@pytest.fixture
def topic_name(request):
    """A topic name no other test uses."""
    _topic_no[0] += 1
    return f"{request.node.name[:40].replace('[', '.').replace(']', '')}.{_topic_no[0]}"


@pytest.fixture
def cli(bus_name):
    """Run the shmbus command on the bus: cli(args..., input=..., timeout=...)."""
    exe = os.environ["SHMBUS_CLI"]

    def run(*args, **kw):
        kw.setdefault("timeout", WAIT)
        kw.setdefault("capture_output", True)
        return subprocess.run([exe, "--bus", bus_name, *args], check=True, **kw)

    run.exe = exe
    return run
