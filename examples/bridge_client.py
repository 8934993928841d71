#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Publish and subscribe through shmbusd's TCP bridge with redis-py
(Debian's python3-redis): the bridge speaks the Redis pub/sub protocol.

    bridge_client.py [HOST [PORT [TOPIC]]]   (127.0.0.1 7379 prices)

$SHMBUS_BRIDGE_TOKEN, if set, is sent as the password (AUTH)."""
import os
import sys
import time

import redis

host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
port = int(sys.argv[2]) if len(sys.argv) > 2 else 7379
topic = sys.argv[3] if len(sys.argv) > 3 else "prices"
r = redis.Redis(host, port, password=os.environ.get("SHMBUS_BRIDGE_TOKEN"))

sub = r.pubsub(ignore_subscribe_messages=True)
sub.subscribe(topic)  # from now on the bridge copies the topic to us
sub.get_message(timeout=5)  # reads the confirmation (and returns None)
print("receivers:", r.publish(topic, "EURUSD 1.08495"))
msg, deadline = None, time.monotonic() + 10
while msg is None and time.monotonic() < deadline:
    msg = sub.get_message(timeout=1)
if msg is None:
    sys.exit("bridge_client: nothing received in 10 s")
print("received on %s: %s" % (msg["channel"].decode(), msg["data"].decode()))
