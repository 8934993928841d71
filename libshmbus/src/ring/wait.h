/* Waiting for messages: bounded spin, then sleep on the topics' futexes. */
#ifndef SHMBUS_RING_WAIT_H
#define SHMBUS_RING_WAIT_H

#include <stdint.h>

#include "shmbus/shmbus.h"

/* A sleeper (subscriber or reliable publisher) wakes at least this often to
 * look again, so that a wake-up that never comes (the one who should send it
 * died) costs at most this much. */
#define SB_WAIT_SLICE_NS 50000000ull

/* Wait until one of @p subs is ready or the monotonic deadline passes
 * (UINT64_MAX: never). Spins for the shortest spin time among them first.
 * @return 0 (something may be ready: poll), SHMBUS_ERR_TIMEOUT, -EINTR. */
int sb_wait_any(shmbus_sub *const *subs, unsigned n, uint64_t deadline);

#endif
