# SPDX-License-Identifier: Apache-2.0
"""shmbus: shared-memory publish/subscribe (libshmbus) from Python.

    with shmbus.connect() as bus, bus.open("prices", reliable=True) as topic:
        with topic.publisher() as pub:
            pub.publish(b"hello")
        with topic.subscriber(start="oldest") as sub:
            for msg in sub:          # blocks; msg.data is bytes
                print(msg.seq, msg.data)

See python/README.md for data validity, threads, asyncio and fork().
"""
from ._shmbus import (
    Bus,
    BadName,
    DaemonLost,
    Error,
    Evicted,
    Full,
    Limit,
    Message,
    Mismatch,
    NoDaemon,
    NoSlot,
    Overrun,
    Publisher,
    Subscriber,
    Timeout,
    TooBig,
    Topic,
    TopicGone,
    connect,
    header_version,
    version,
)

__all__ = [
    "Bus", "BadName", "DaemonLost", "Error", "Evicted", "Full", "Limit", "Message",
    "Mismatch", "NoDaemon", "NoSlot", "Overrun", "Publisher", "Subscriber", "Timeout",
    "TooBig", "Topic", "TopicGone", "connect", "header_version", "version",
]
