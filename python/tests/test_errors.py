# SPDX-License-Identifier: Apache-2.0
"""Errors, closed objects, fork(), and a subscriber killed mid-receive."""
import os
import signal
import subprocess
import sys
import time

import pytest

import shmbus


def test_mismatch_names_the_error(bus, topic_name):
    with bus.open(topic_name, reliable=True, capacity=8):
        with pytest.raises(shmbus.Mismatch) as e:
            bus.open(topic_name, reliable=False)
        assert e.value.name == "SHMBUS_ERR_MISMATCH"
        assert e.value.code == -1017 and isinstance(e.value, shmbus.Error)
        with pytest.raises(shmbus.Mismatch):
            bus.open(topic_name, capacity=16)
        with bus.open(topic_name) as same:
            assert same.reliable and same.capacity == 8


def test_other_errors(bus, topic_name):
    with pytest.raises(shmbus.BadName):
        bus.open("no spaces allowed")
    with pytest.raises(shmbus.BadName):  # once opened the topic "nul"
        bus.open(topic_name + "\0trailer")
    with pytest.raises(shmbus.Error) as e:
        bus.open(topic_name, create=False)
    assert e.value.name == "ENOENT"
    with pytest.raises(shmbus.NoDaemon):
        shmbus.connect("nodaemonhere")
    with bus.open(topic_name, max_msg=8) as t, t.publisher() as pub:
        with pytest.raises(shmbus.TooBig):
            pub.publish(b"123456789")
        with pytest.raises(TypeError):
            pub.publish("text is not a buffer")
        with pytest.raises(ValueError):
            t.subscriber(start="yesterday")


def test_closed_objects(bus, topic_name):
    t = bus.open(topic_name)
    pub, sub = t.publisher(), t.subscriber()
    pub.close()
    sub.close()
    pub.close()
    t.close()
    bus.close()
    for call in (lambda: pub.publish(b"x"), lambda: pub.publish_many([b"x"]),
                 lambda: sub.recv(0), lambda: sub.wait(0), lambda: next(iter(sub)),
                 lambda: bus.open(topic_name), lambda: t.subscriber()):
        with pytest.raises(ValueError):
            call()
    assert pub.closed and sub.closed and t.closed and bus.closed


def test_forked_child_is_refused(bus, topic_name):
    with bus.open(topic_name) as t, t.publisher() as pub, t.subscriber() as sub:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                pub.publish(b"from the child")
            except shmbus.Error as e:
                code = 0 if e.name == "SHMBUS_ERR_INVALID" else 2
            # Closing the copies must leave the parent's handles alone.
            for obj in (pub, sub, t, bus):
                obj.close()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        pub.publish(b"parent")
        assert sub.recv(timeout=1).data == b"parent"
        with bus.open(topic_name + ".after"):
            pass


CHILD = """
import sys, shmbus
bus = shmbus.connect(sys.argv[1])
t = bus.open(sys.argv[2], reliable=True, capacity=4)
sub = t.subscriber()
print("ready", flush=True)
sub.recv()
"""


def test_subscriber_killed_mid_receive(bus, bus_name, topic_name):
    child = subprocess.Popen([sys.executable, "-c", CHILD, bus_name, topic_name],
                             stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"ready\n"
        time.sleep(0.05)  # in recv(), asleep on the topic
        child.send_signal(signal.SIGKILL)
        child.wait(5)
        with bus.open(topic_name) as t, t.publisher() as pub:
            # The dead slot, still at seq 0, gates this reliable topic of
            # 4 cells: the 5th publish goes once the daemon reaps it.
            for i in range(8):
                pub.publish(b"after %d" % i, timeout=5)
            with t.subscriber() as sub:
                pub.publish(b"next")
                assert sub.recv(timeout=5).data == b"next"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()


def test_ctrl_c_ends_a_waiting_recv(bus_name, topic_name):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.replace("reliable=True", "reliable=None"), bus_name,
         topic_name], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"ready\n"
        time.sleep(0.05)
        start = time.monotonic()
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=5)
        # Within a wait slice (0.2 s), with the interpreter's own handling.
        assert time.monotonic() - start < 2
        assert b"KeyboardInterrupt" in err
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def run_child(code, bus_name, topic_name):
    """Run code in a Python of its own (bus and topic names in sys.argv),
    which must exit 0 within 5 s: a hang fails the test, never the run."""
    child = subprocess.Popen([sys.executable, "-c", code, bus_name, topic_name],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = child.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        out, _ = child.communicate()
        pytest.fail("hung:\n" + out.decode())
    assert child.returncode == 0, out.decode()


SIGNAL_CLOSES = """
import os, signal, sys, threading, shmbus
t = shmbus.connect(sys.argv[1]).open(sys.argv[2], reliable=True, capacity=2)
victim = sub = t.subscriber()
signal.signal(signal.SIGUSR1, lambda *a: victim.close())
threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR1)).start()
assert sub.recv() is None and sub.closed
sub, victim = t.subscriber(), t.publisher()
pub = victim
pub.publish_many([b"1", b"2"])
threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR1)).start()
try:
    pub.publish(b"3")
    sys.exit("published into a full ring")
except shmbus.Error as e:
    assert e.name == "ECANCELED", e.name
assert pub.closed and sub.recv(0).data == b"1"
"""


def test_signal_handler_closes_what_it_interrupted(bus_name, topic_name):
    # A SIGTERM handler that closes the subscriber its loop waits on is the
    # usual way to stop; it runs inside recv(), which holds the lock.
    run_child(SIGNAL_CLOSES, bus_name, topic_name)


REENTRANT = """
import sys, threading, time, shmbus
t = shmbus.connect(sys.argv[1]).open(sys.argv[2], reliable=True, capacity=2)
sub, pub = t.subscriber(), t.publisher()
try:
    pub.publish_many(pub.publish(b"inner") or b"outer" for _ in range(2))
    sys.exit("publish inside publish_many went through")
except RuntimeError:
    pass
pub.publish_many([b"1", b"2"])
th = threading.Thread(target=lambda: time.sleep(0.1) or pub.close())
th.start()
try:
    pub.publish(b"3")
    sys.exit("published into a full ring")
except shmbus.Error as e:
    assert e.name == "ECANCELED", e.name
th.join()
"""


def test_reentrant_call_and_close_from_another_thread(bus_name, topic_name):
    run_child(REENTRANT, bus_name, topic_name)


def test_open_options_are_range_checked(bus, topic_name):
    # 2**32 + 8 once wrapped silently to a topic of 8 cells, and -1 to
    # 2**32 - 1; a float to an int.
    for bad in (2**32 + 8, 2**32, -1):
        with pytest.raises(OverflowError):
            bus.open(topic_name, capacity=bad)
    with pytest.raises(OverflowError):
        bus.open(topic_name, perm=2**32 + 0o600)
    with pytest.raises(TypeError):
        bus.open(topic_name, max_msg=64.0)
    with pytest.raises(shmbus.Error) as e:
        bus.open(topic_name, capacity=3)
    assert e.value.name == "SHMBUS_ERR_INVALID"
    with bus.open(topic_name, capacity=8, max_subscribers=2**3) as t:
        assert t.capacity == 8 and t.max_subscribers == 8


SECOND_THREAD = """
import os, signal, sys, threading, time, shmbus
t = shmbus.connect(sys.argv[1]).open(sys.argv[2])
sub = t.subscriber()
threading.Thread(target=sub.recv, daemon=True).start()
time.sleep(0.1)  # that thread now holds sub for ever
threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
try:
    sub.recv()
    sys.exit("recv returned")
except KeyboardInterrupt:
    pass
sub.close()
"""


def test_ctrl_c_ends_a_call_waiting_for_another_thread(bus_name, topic_name):
    run_child(SECOND_THREAD, bus_name, topic_name)
