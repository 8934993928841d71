/* SPDX-License-Identifier: Apache-2.0 */
/* SIGBUS guard (guard.h). The handler runs in the thread that faulted (a
 * SIGBUS from a memory access is synchronous): the control thread or a
 * bridge thread. Adds are serialised by the caller (the registry's topic
 * lock) but may run while a handler in another thread reads the table, so
 * the table is published with release stores and read with acquire loads,
 * and a table that was outgrown is never freed (a reader may still be in
 * it): the tables together stay under twice the final one. */
#include "guard.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct guard_range {
    uint8_t *base;
    size_t len;
    _Atomic int *broken;
};

static struct guard_range *_Atomic ranges;
static _Atomic size_t nranges;
static size_t cap; /* sbd_guard_add() only */
/* Outgrown tables, kept (and reachable, for LeakSanitizer): doubling from
 * 64 entries, 48 of them would outgrow any address space. */
static struct guard_range *old_tables[48];
static size_t nold;
/* The page size, read once by sbd_guard_init() (sysconf() is not
 * async-signal-safe). */
static size_t page_size;
/* sbd_guard_window(): read by this thread's own handler only. */
static _Thread_local _Atomic int *_Atomic window;

/* A fault of this thread outside every range while its window is open:
 * zeroes over the faulting page. @return 1 if handled. */
static int guard_window_fault(uint8_t *a)
{
    /* relaxed: written by this very thread before the access that faulted
     * (sbd_guard_window(), its signal fences). */
    _Atomic int *hit = atomic_load_explicit(&window, memory_order_relaxed);
    uint8_t *page = (uint8_t *)((uintptr_t)a & ~(uintptr_t)(page_size - 1));

    if (hit == NULL || mmap(page, page_size, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
        return 0;
    /* relaxed: the thread that reads it is this one, after the handler. */
    atomic_store_explicit(hit, 1, memory_order_relaxed);
    return 1;
}

static void guard_fault(int sig, siginfo_t *si, void *ctx)
{
    uint8_t *a = si->si_addr;
    int saved = errno;
    /* acquire, both: pair with the release stores of sbd_guard_add(); the
     * count first, so every entry below it is in the table we load. */
    size_t n = atomic_load_explicit(&nranges, memory_order_acquire);
    struct guard_range *tab = atomic_load_explicit(&ranges, memory_order_acquire);

    (void)ctx;
    /* Only a fault of ours: a SIGBUS sent by kill() or sigqueue() carries
     * a pointer of the sender's choice. */
    for (size_t i = 0; si->si_code > 0 && i < n; i++) {
        struct guard_range *r = &tab[i];

        if (a < r->base || a >= r->base + r->len)
            continue;
        /* mmap is a plain system call: safe here. The faulting access is
         * retried on return and lands on zeroes. */
        if (mmap(r->base, r->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                 -1, 0) == MAP_FAILED)
            break;
        /* relaxed: a flag the topic's users poll; the mapping itself was
         * replaced by the system call above. */
        atomic_store_explicit(r->broken, 1, memory_order_relaxed);
        errno = saved;
        return;
    }
    if (si->si_code > 0 && guard_window_fault(a)) {
        errno = saved;
        return;
    }
    signal(sig, SIG_DFL); /* not a segment: crash as we would have */
    raise(sig);
}

int sbd_guard_init(void)
{
    struct sigaction sa;

    page_size = (size_t)sysconf(_SC_PAGESIZE);
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = guard_fault;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGBUS, &sa, NULL) < 0 ? -errno : 0;
}

void sbd_guard_sigmask(sigset_t *set)
{
    static const int faults[] = {SIGBUS, SIGSEGV, SIGILL, SIGFPE};

    sigfillset(set);
    for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
        sigdelset(set, faults[i]);
}

int sbd_guard_add(void *base, size_t len, _Atomic int *broken)
{
    /* relaxed: we are the only writer (the caller serialises adds). */
    size_t n = atomic_load_explicit(&nranges, memory_order_relaxed);
    struct guard_range *tab = atomic_load_explicit(&ranges, memory_order_relaxed);

    if (n == cap) {
        size_t ncap = cap ? cap * 2 : 64;
        struct guard_range *p = malloc(ncap * sizeof(*p));

        if (p == NULL)
            return -ENOMEM;
        if (n > 0)
            memcpy(p, tab, n * sizeof(*p));
        /* release: the copied entries before the pointer. The old table
         * stays: a handler may be reading it. */
        atomic_store_explicit(&ranges, p, memory_order_release);
        if (tab != NULL)
            old_tables[nold++] = tab;
        tab = p;
        cap = ncap;
    }
    tab[n] = (struct guard_range){.base = base, .len = len, .broken = broken};
    /* release: the entry before the count that covers it. */
    atomic_store_explicit(&nranges, n + 1, memory_order_release);
    return 0;
}

void sbd_guard_window(_Atomic int *hit)
{
    /* relaxed: only this thread's own handler reads it (guard_window_fault()),
     * which runs at one of this thread's accesses, so no other thread is
     * ordered. What must not move is the compiler's placement of the plain
     * loads of the mapping: a seq_cst store orders only atomics. The
     * signal fences (compiler barriers, for a handler of this thread) keep
     * the loads after opening the window after the store, and those
     * before closing it before the store. */
    atomic_signal_fence(memory_order_seq_cst);
    atomic_store_explicit(&window, hit, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
}
