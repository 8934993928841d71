/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SIGBUS guard: a client holding a segment's descriptor can shrink the
 * file, and the daemon's next access to the missing pages would kill it
 * with SIGBUS. The guard catches that fault, replaces the topic's whole
 * mapping with private zeroed memory (so the access that faulted, and any
 * later one, completes harmlessly) and flags the topic broken; the daemon
 * then stops serving it and removes its segment. A fault outside every
 * topic mapping is a real crash and is re-raised.
 */
#ifndef SHMBUSD_GUARD_H
#define SHMBUSD_GUARD_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>

/* Install the SIGBUS handler. @return 0 or -errno. */
int sbd_guard_init(void);

/* Guard the mapping [@p base, @p base + @p len); *broken is set to 1 if a
 * fault hits it, in whichever thread. Calls must not overlap (the registry
 * makes them under its topic lock). @return 0 or -ENOMEM. */
int sbd_guard_add(void *base, size_t len, _Atomic int *broken);

/*
 * Open (@p hit not NULL) or close (NULL) the calling thread's window: while
 * it is open, a SIGBUS that this thread takes outside every guarded range
 * is a fault on the segment it is taking over (sbd_registry_adopt(), which
 * maps and reads a segment before sbd_guard_add() can cover it): the
 * faulting page is replaced by a private zeroed one and *hit is set to 1.
 * Nothing but the segment being taken over may be touched while it is open.
 */
void sbd_guard_window(_Atomic int *hit);

/* Fill @p set with every signal but the synchronous faults (SIGBUS,
 * SIGSEGV, SIGILL, SIGFPE): the mask of a daemon thread started before
 * the control thread blocks SIGTERM for its signalfd, which must take no
 * signal but its own faults. A fault the thread has blocked is forced by
 * the kernel with its default action, killing the daemon past the guard
 * (SIGBUS) and the log's crash handler (the others). */
void sbd_guard_sigmask(sigset_t *set);

#endif
