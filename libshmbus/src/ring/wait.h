/* Waiting for messages: bounded spin, then sleep on the topics' futexes. */
#ifndef SHMBUS_RING_WAIT_H
#define SHMBUS_RING_WAIT_H

#include <stdint.h>

#include "shmbus/shmbus.h"

/* Wait until one of @p subs is ready or the monotonic deadline passes
 * (UINT64_MAX: never). Spins for the shortest spin time among them first.
 * @return 0 (something may be ready: poll), SHMBUS_ERR_TIMEOUT, -EINTR. */
int sb_wait_any(shmbus_sub *const *subs, unsigned n, uint64_t deadline);

#endif
