# SPDX-License-Identifier: Apache-2.0
"""asyncio for shmbus subscribers: Subscriber.aiter().

A subscriber has no file descriptor an event loop could watch (it sleeps
on a futex in shared memory), so the wait runs in the loop's default
executor: one executor thread per iterator while it waits, sleeping in
the kernel (no spinning beyond the library's spin time), woken by the
publisher or after `slice` seconds. The message itself is taken in the
loop's thread with recv(timeout=0), so cancelling the iteration loses no
message: the executor thread only waits, it never takes one.
"""
import asyncio

__all__ = ["aiter"]


def _wait(sub, slice):
    """sub.wait(slice) in the executor: False when sub was closed before
    the executor thread came to it, as when closed during the wait."""
    try:
        return sub.wait(slice)
    except ValueError:
        if sub.closed:
            return False
        raise


async def aiter(sub, slice=0.2):
    """Yield sub's messages as they come; ends when sub is closed."""
    loop = asyncio.get_running_loop()
    while not sub.closed:
        msg = sub.recv(0)
        if msg is not None:
            yield msg
            continue
        await loop.run_in_executor(None, _wait, sub, slice)
