/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every handle object shares (struct psb_guard): the lock that
 * serialises its calls and keeps close() from freeing the handle under a
 * call waiting with the GIL released, the closed flag, and the fork
 * generation it was made in, so that a forked child's use is refused
 * before any lock a parent's thread may have held at the fork is touched.
 * Also the conversion of arguments (timeouts, unsigned options), and waits
 * cut into slices.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "pyshmbus.h"

/* Bumped in the child of every fork(). relaxed: the handler runs in the
 * child's only thread before fork() returns; later threads inherit it. */
static _Atomic uint32_t guard_fork_generation;

static void guard_after_fork(void)
{
    /* relaxed: see guard_fork_generation */
    atomic_fetch_add_explicit(&guard_fork_generation, 1, memory_order_relaxed);
}

int psb_fork_watch(void)
{
    return pthread_atfork(NULL, NULL, guard_after_fork);
}

uint32_t psb_fork_gen(void)
{
    /* relaxed: see guard_fork_generation */
    return atomic_load_explicit(&guard_fork_generation, memory_order_relaxed);
}

int psb_check_usable(int closed, uint32_t fork_gen, const char *what)
{
    if (fork_gen != psb_fork_gen()) {
        psb_raise(SHMBUS_ERR_INVALID);
        return -1;
    }
    if (closed) {
        PyErr_Format(PyExc_ValueError, "operation on a closed %s", what);
        return -1;
    }
    return 0;
}

int psb_guard_init(struct psb_guard *g)
{
    g->fork_gen = psb_fork_gen();
    g->owner = 0;
    g->closed = 0;
    g->close_pending = 0;
    g->lock = PyThread_allocate_lock();
    if (g->lock == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

void psb_guard_fini(struct psb_guard *g)
{
    if (g->lock != NULL)
        PyThread_free_lock(g->lock);
    g->lock = NULL;
}

/* Take the lock, releasing the GIL if another thread holds it. */
static void guard_lock(struct psb_guard *g)
{
    /* Uncontended, the usual case: no GIL release. */
    if (PyThread_acquire_lock(g->lock, NOWAIT_LOCK))
        return;
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(g->lock, WAIT_LOCK);
    Py_END_ALLOW_THREADS
}

/* guard_lock() for a call, which may wait for as long as another thread's
 * recv() (for ever): signal handlers run meanwhile, as in a wait.
 * @return 0 with the lock held, or -1 with a handler's exception set. */
static int guard_lock_call(struct psb_guard *g)
{
    PyLockStatus st;

    /* Uncontended, the usual case: no GIL release. */
    if (PyThread_acquire_lock(g->lock, NOWAIT_LOCK))
        return 0;
    do {
        Py_BEGIN_ALLOW_THREADS
        st = PyThread_acquire_lock_timed(g->lock, -1, 1);
        Py_END_ALLOW_THREADS
        /* A signal interrupted the wait: its handler raised (Ctrl-C). */
        if (st == PY_LOCK_INTR && PyErr_CheckSignals() < 0)
            return -1;
    } while (st != PY_LOCK_ACQUIRED);
    return 0;
}

int psb_begin(struct psb_guard *g, const char *what)
{
    if (psb_check_usable(g->closed, g->fork_gen, what) < 0)
        return -1;
    /* This thread holds the lock already: waiting for it would hang. */
    if (g->owner == PyThread_get_thread_ident()) {
        PyErr_Format(PyExc_RuntimeError,
                     "%s used inside one of its own calls (a signal handler or an iterable)", what);
        return -1;
    }
    if (guard_lock_call(g) < 0)
        return -1;
    /* Closed by another thread while this one waited for the lock. */
    if (g->closed) {
        PyThread_release_lock(g->lock);
        PyErr_Format(PyExc_ValueError, "operation on a closed %s", what);
        return -1;
    }
    g->owner = PyThread_get_thread_ident();
    return 0;
}

int psb_end(struct psb_guard *g)
{
    g->owner = 0;
    /* close() was called inside this call: the caller destroys the handle. */
    if (g->close_pending)
        return 1;
    PyThread_release_lock(g->lock);
    return 0;
}

int psb_close_begin(struct psb_guard *g)
{
    /* Closed already (or never opened): nothing to destroy. */
    if (g->closed)
        return 0;
    g->closed = 1;
    /* A forked child's copy: no thread of the child holds the lock, and a
     * parent's thread may have held it at the fork. */
    if (g->fork_gen != psb_fork_gen())
        return 1;
    /* Inside a call of this thread, which holds the lock: psb_end() of
     * that call hands the destruction back. */
    if (g->owner == PyThread_get_thread_ident()) {
        g->close_pending = 1;
        return 0;
    }
    guard_lock(g);
    return 1;
}

void psb_close_end(struct psb_guard *g)
{
    if (g->fork_gen == psb_fork_gen())
        PyThread_release_lock(g->lock);
}

static int64_t guard_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

void psb_wait_start(struct psb_wait *w, int64_t timeout_ns)
{
    w->deadline = timeout_ns < 0 ? -1 : guard_now() + timeout_ns;
}

int64_t psb_wait_slice(const struct psb_wait *w)
{
    int64_t left;

    /* For ever: every slice is a whole one. */
    if (w->deadline < 0)
        return PSB_SLICE_NS;
    left = w->deadline - guard_now();
    return left <= 0 ? 0 : left < PSB_SLICE_NS ? left : PSB_SLICE_NS;
}

int psb_timeout_ns(PyObject *timeout, int64_t *out)
{
    double s;

    if (timeout == NULL || timeout == Py_None) {
        *out = -1;
        return 0;
    }
    s = PyFloat_AsDouble(timeout);
    if (s == -1.0 && PyErr_Occurred())
        return -1;
    if (!(s >= 0.0) || s > 9.2e9) {
        PyErr_SetString(PyExc_ValueError, "timeout must be None or 0..9.2e9 seconds");
        return -1;
    }
    *out = (int64_t)(s * 1e9);
    return 0;
}

int psb_u32(PyObject *o, void *out)
{
    unsigned long long v;
    PyObject *i = PyNumber_Index(o); /* ints only: no float, no str */

    if (i == NULL)
        return 0;
    v = PyLong_AsUnsignedLongLong(i);
    Py_DECREF(i);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return 0;
    if (v > UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "value must be 0..4294967295");
        return 0;
    }
    *(uint32_t *)out = (uint32_t)v;
    return 1;
}
