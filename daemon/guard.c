/* SIGBUS guard (guard.h). The handler runs in the thread that faulted (a
 * SIGBUS from a memory access is synchronous), which is the control thread:
 * the only one that touches segments and the only one that changes the
 * range table, so the table is never read while it changes. */
#include "guard.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct guard_range {
    uint8_t *base;
    size_t len;
    volatile sig_atomic_t *broken;
};

static struct guard_range *ranges;
static size_t nranges, cap;

static void guard_fault(int sig, siginfo_t *si, void *ctx)
{
    uint8_t *a = si->si_addr;
    int saved = errno;

    (void)ctx;
    /* Only a fault of ours: a SIGBUS sent by kill() or sigqueue() carries
     * a pointer of the sender's choice. */
    for (size_t i = 0; si->si_code > 0 && i < nranges; i++) {
        struct guard_range *r = &ranges[i];

        if (a < r->base || a >= r->base + r->len)
            continue;
        /* mmap is a plain system call: safe here. The faulting access is
         * retried on return and lands on zeroes. */
        if (mmap(r->base, r->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                 -1, 0) == MAP_FAILED)
            break;
        *r->broken = 1;
        errno = saved;
        return;
    }
    signal(sig, SIG_DFL); /* not a segment: crash as we would have */
    raise(sig);
}

int sbd_guard_init(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = guard_fault;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGBUS, &sa, NULL) < 0 ? -errno : 0;
}

int sbd_guard_add(void *base, size_t len, volatile sig_atomic_t *broken)
{
    if (nranges == cap) {
        size_t ncap = cap ? cap * 2 : 64;
        struct guard_range *p = malloc(ncap * sizeof(*p));

        if (p == NULL)
            return -ENOMEM;
        struct guard_range *old = ranges;

        if (nranges > 0)
            memcpy(p, old, nranges * sizeof(*p));
        ranges = p;
        cap = ncap;
        free(old);
    }
    ranges[nranges] = (struct guard_range){.base = base, .len = len, .broken = broken};
    nranges++;
    return 0;
}
