# SPDX-License-Identifier: Apache-2.0
"""Publish and receive from Python: round trips with the C tools both
ways, batches, iteration, consumer groups, a reliable topic's
back-pressure, the GIL released while waiting, and asyncio."""
import asyncio
import concurrent.futures
import subprocess
import threading
import time

import pytest

import shmbus


def test_python_to_cli_sub(bus, cli, topic_name):
    with bus.open(topic_name, capacity=64) as t, t.publisher() as pub:
        for i in range(3):
            pub.publish(f"py-{i}".encode())
    out = cli("sub", topic_name, "--from", "oldest", "--count", "3").stdout
    assert out.decode().splitlines() == ["py-0", "py-1", "py-2"]


def test_cli_pub_to_python(bus, cli, topic_name):
    with bus.open(topic_name) as t, t.subscriber() as sub:
        cli("pub", topic_name, "one", "two", "three")
        msgs = [sub.recv(timeout=5) for _ in range(3)]
    assert [m.data for m in msgs] == [b"one", b"two", b"three"]
    assert [m.seq for m in msgs] == [0, 1, 2]
    assert all(m.pid != 0 and m.lost == 0 and m.timestamp > 0 for m in msgs)


def test_buffers_batches_and_iteration(bus, topic_name):
    with bus.open(topic_name, max_msg=64) as t, t.subscriber() as sub, t.publisher() as pub:
        pub.publish(bytearray(b"ba"))
        pub.publish(memoryview(b"xmvx")[1:3])
        assert pub.publish_many(b"m%d" % i for i in range(100)) == 100
        got = []
        for msg in sub:
            got.append(msg)
            if len(got) == 102:
                break
        assert sub.recv(timeout=0) is None
    assert [m.data for m in got[:3]] == [b"ba", b"mv", b"m0"]
    assert [m.seq for m in got] == list(range(102))
    assert isinstance(got[0].data, bytes)


def test_group_members_split_messages(bus, topic_name):
    with bus.open(topic_name, reliable=True) as t, t.publisher() as pub, \
            t.subscriber(group="workers") as a, t.subscriber(group="workers") as b:
        pub.publish_many(b"job%d" % i for i in range(10))
        got = [(a if i % 2 == 0 else b).recv(timeout=5) for i in range(10)]
        assert a.recv(timeout=0) is None and b.recv(timeout=0) is None
    assert all(m is not None for m in got)
    assert sorted(m.seq for m in got) == list(range(10))
    assert len({m.data for m in got[0::2]} & {m.data for m in got[1::2]}) == 0


def test_reliable_back_pressure(bus, topic_name):
    with bus.open(topic_name, reliable=True, capacity=4) as t, t.subscriber() as sub, \
            t.publisher() as pub:
        assert pub.publish_many([b"a"] * 6, timeout=0) == 4
        with pytest.raises(shmbus.Full) as e:
            pub.publish(b"x", timeout=0.05)
        assert e.value.name == "SHMBUS_ERR_TIMEOUT" and isinstance(e.value, shmbus.Timeout)
        with pytest.raises(shmbus.Full):
            pub.publish(b"x", timeout=0)
        with pytest.raises(shmbus.Full):
            pub.publish_many([b"y"], timeout=0.01)
        # A publisher waiting for room, with the GIL released: this thread
        # reads meanwhile and so makes the room it waits for.
        done = []
        th = threading.Thread(target=lambda: done.append(pub.publish(b"late", timeout=5)))
        th.start()
        time.sleep(0.1)
        assert not done
        assert [sub.recv(timeout=1).seq for _ in range(4)] == [0, 1, 2, 3]
        th.join(5)
        assert done == [None]
        assert sub.recv(timeout=1).data == b"late"


def test_gil_released_while_recv_waits(bus, topic_name):
    with bus.open(topic_name) as t, t.subscriber() as sub, t.publisher() as pub:
        got = []
        th = threading.Thread(target=lambda: got.append(sub.recv(timeout=3)))
        th.start()
        time.sleep(0.05)
        spins, end = 0, time.monotonic() + 0.2
        while time.monotonic() < end:
            spins += 1
        pub.publish(b"wake")
        th.join(5)
    # Had recv() held the GIL, this thread would have run only after its
    # 3 s timeout, and published after it returned None.
    assert spins > 1000
    assert got and got[0] is not None and got[0].data == b"wake"


def test_close_ends_a_waiting_iteration(bus, topic_name):
    with bus.open(topic_name) as t:
        sub = t.subscriber()
        got = []
        th = threading.Thread(target=lambda: got.extend(sub))
        th.start()
        time.sleep(0.05)
        sub.close()
        th.join(5)
        assert not th.is_alive() and got == []
        with pytest.raises(ValueError):
            sub.recv()


def test_asyncio_aiter(bus, topic_name):
    async def main(sub, pub):
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, pub.publish_many, [b"a1", b"a2", b"a3"])
        got = []
        async for msg in sub.aiter():
            got.append(msg.data)
            if len(got) == 3:
                break
        return got

    with bus.open(topic_name) as t, t.subscriber() as sub, t.publisher() as pub:
        assert asyncio.run(main(sub, pub)) == [b"a1", b"a2", b"a3"]


def test_topic_outlives_its_children(bus, topic_name):
    t = bus.open(topic_name)
    pub, sub = t.publisher(), t.subscriber()
    t.close()
    bus.close()
    pub.publish(b"still")
    assert sub.recv(timeout=1).data == b"still"
    with pytest.raises(ValueError):
        t.publisher()
    pub.close()
    sub.close()


def test_cli_sees_python_subscriber(bus, cli, topic_name):
    with bus.open(topic_name) as t, t.subscriber():
        out = cli("stat", "--json").stdout.decode()
    assert topic_name in out


def test_timeouts_last_as_long_as_asked(bus, topic_name):
    with bus.open(topic_name, reliable=True, capacity=2) as t, t.subscriber() as sub, \
            t.publisher() as pub:
        for wait in (sub.recv, sub.wait):
            start = time.monotonic()
            assert wait(timeout=0.3) in (None, False)
            assert 0.3 <= time.monotonic() - start < 2
        pub.publish_many([b"1", b"2"])
        start = time.monotonic()
        with pytest.raises(shmbus.Full):
            pub.publish(b"3", timeout=0.3)
        assert 0.3 <= time.monotonic() - start < 2


def test_publish_many_publishes_what_came_before_an_error(bus, topic_name):
    def gen():
        yield from (b"g%d" % i for i in range(70))  # one full batch of 64, then 6
        raise KeyError("midway")

    with bus.open(topic_name, capacity=128) as t, t.subscriber() as sub, t.publisher() as pub:
        with pytest.raises(KeyError):
            pub.publish_many(gen())
        with pytest.raises(TypeError):
            pub.publish_many([b"b0", b"b1", "not a buffer", b"b3"])
        got = [m.data for m in iter(lambda: sub.recv(timeout=0), None)]
    assert got == [b"g%d" % i for i in range(70)] + [b"b0", b"b1"]


def test_asyncio_aiter_ends_when_closed_before_the_wait(bus, topic_name):
    class Slow(concurrent.futures.ThreadPoolExecutor):
        """Comes to each job late: the subscriber is closed by then."""
        def submit(self, fn, *args):
            return super().submit(lambda: time.sleep(0.2) or fn(*args))

    async def main(sub):
        loop = asyncio.get_running_loop()
        loop.set_default_executor(Slow(1))
        loop.call_later(0.05, sub.close)
        return [msg async for msg in sub.aiter()]

    with bus.open(topic_name) as t, t.subscriber() as sub:
        assert asyncio.run(main(sub)) == []


def test_closed_topic_goes_with_its_last_child_closed(bus, topic_name):
    t = bus.open(topic_name)
    pub, sub = t.publisher(), t.subscriber()
    t.close()
    pub.close()
    assert t.stats()["published"] == 0  # sub is open: the topic stays
    sub.close()
    # pub and sub are still referenced here, closed: they hold it no more.
    with pytest.raises(ValueError):
        t.stats()
    assert pub.closed and sub.closed


def test_publish_many_error_says_how_many_went(bus, topic_name):
    with bus.open(topic_name, max_msg=8, capacity=256) as t, t.subscriber() as sub, \
            t.publisher() as pub:
        with pytest.raises(shmbus.TooBig) as e:
            pub.publish_many([b"a"] * 64 + [b"b", b"too long a message"])
        assert e.value.published == 64
        got = [m.data for m in iter(lambda: sub.recv(timeout=0), None)]
        assert got == [b"a"] * 64
