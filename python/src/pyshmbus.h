/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CPython extension shmbus._shmbus: Python objects over libshmbus's
 * public API (shmbus/shmbus.h only). This header is shared by its files:
 * module.c (the module), errors.c (the exception classes), guard.c (each
 * handle's lock, closed flag and fork generation; argument conversions),
 * bus.c (connect(), Bus), topic.c (Topic), pub.c (Publisher) and sub.c
 * (Subscriber, Message).
 *
 * Every handle object owns one library handle, a lock and the fork
 * generation it was made in. The lock serialises the object's calls,
 * which the library wants made by one thread at a time, and keeps close()
 * from freeing the handle under a call that waits with the GIL released.
 * An object used in a child that inherited it through fork() raises
 * shmbus.Error(SHMBUS_ERR_INVALID) and, when closed, only frees its copy.
 */
#ifndef PYSHMBUS_H
#define PYSHMBUS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>
#include <structmember.h>
#include <stdint.h>

#include <shmbus/shmbus.h>

/* The longest a call waits with the GIL released before it checks for
 * signals (KeyboardInterrupt) and for a close() from another thread. */
#define PSB_SLICE_NS 200000000ll

/* The exception classes, set up by psb_errors_init(). */
extern PyObject *psb_Error;
extern PyObject *psb_Timeout;
extern PyObject *psb_Full;

extern PyTypeObject psb_BusType;
extern PyTypeObject psb_TopicType;
extern PyTypeObject psb_PublisherType;
extern PyTypeObject psb_SubscriberType;
extern PyTypeObject psb_MessageType;

/* The lock, closed flag and fork generation of a handle object. */
struct psb_guard {
    PyThread_type_lock lock;
    unsigned long owner; /* PyThread_get_thread_ident() of the call holding
                            the lock, 0 for none: Python code run inside a
                            call (a signal handler, publish_many()'s
                            iterable) must not wait for the lock it holds */
    uint32_t fork_gen;
    int closed;        /* close() called: set before the lock is taken, so that a
                          call waiting with the GIL released sees it and ends */
    int close_pending; /* close() called inside a call of the same thread:
                          the handle goes when that call ends (psb_end()) */
};

typedef struct psb_topic {
    PyObject_HEAD
    shmbus_topic *topic; /* NULL once destroyed */
    PyObject *bus;       /* the Bus it was opened through (a reference) */
    PyObject *name;      /* str */
    shmbus_topic_info info;
    unsigned children; /* open publishers and subscribers made from it */
    int closed;        /* close() called: destroyed when children reaches 0 */
    uint32_t fork_gen;
} psb_topic;

/* Add the exception classes to module @p m. @return 0, or -1 with an
 * exception set. */
int psb_errors_init(PyObject *m);

/* Raise the exception class of @p rc (< 0) and return NULL. */
PyObject *psb_raise(int rc);

/* Raise shmbus.Full for a publish that found no room (@p rc -EAGAIN or
 * SHMBUS_ERR_TIMEOUT), else as psb_raise(). @p published: how many of a
 * publish_many() went out before, set as the exception's .published; -1
 * (publish()) sets none. */
PyObject *psb_raise_publish(int rc, Py_ssize_t published);

/* Watch for fork() (pthread_atfork, once at import). @return 0 or an errno. */
int psb_fork_watch(void);

/* The process's fork generation: bumped in the child of every fork(). */
uint32_t psb_fork_gen(void);

/* Raise shmbus.Error(SHMBUS_ERR_INVALID) for an object of another fork
 * generation, ValueError for a closed one; @return -1 then, else 0. */
int psb_check_usable(int closed, uint32_t fork_gen, const char *what);

/* Set up @p g (open, this fork generation). @return 0, or -1 raised. */
int psb_guard_init(struct psb_guard *g);
/* Free @p g's lock. Accepts a guard whose init failed. */
void psb_guard_fini(struct psb_guard *g);

/* Start a call on the object @p what: checked as psb_check_usable(), then
 * the lock taken (the GIL released while another thread holds it).
 * @return 0 with the lock held (end with psb_end()); -1 raised, among
 * others RuntimeError for a call made inside a call of the same thread. */
int psb_begin(struct psb_guard *g, const char *what);
/* End a call. @return 0 with the lock released; 1 when close() was called
 * inside it: the lock is still held, destroy the handle, then call
 * psb_close_end(). */
int psb_end(struct psb_guard *g);

/* Start closing: @return 0 if it was closed already, or if a call of this
 * thread is in progress (a signal handler closing the object whose recv()
 * it interrupted): the handle then goes when that call ends; else 1, with
 * the object marked closed and its lock held (not in a forked child):
 * destroy the handle, then call psb_close_end(). */
int psb_close_begin(struct psb_guard *g);
void psb_close_end(struct psb_guard *g);

/* A wait of a timeout, cut into slices of at most PSB_SLICE_NS. */
struct psb_wait {
    int64_t deadline; /* CLOCK_MONOTONIC ns; -1 for ever */
};

/* Start a wait of @p timeout_ns (-1 for ever). */
void psb_wait_start(struct psb_wait *w, int64_t timeout_ns);

/* The next slice of @p w in ns: PSB_SLICE_NS, or less up to the deadline;
 * 0 once the deadline has passed. */
int64_t psb_wait_slice(const struct psb_wait *w);

/* Timeout in seconds (None: forever) to ns: -1 forever, else >= 0.
 * @return 0, or -1 with ValueError/TypeError set. */
int psb_timeout_ns(PyObject *timeout, int64_t *out);

/* An "O&" converter: a Python int of 0..UINT32_MAX into the uint32_t at
 * @p out. @return 1, or 0 with TypeError (not an int) or OverflowError. */
int psb_u32(PyObject *o, void *out);

/* shmbus.connect(bus=None) -> Bus. */
PyObject *psb_connect(PyObject *mod, PyObject *args, PyObject *kw);

/* Publisher and Subscriber of Topic @p t (topic.publisher(), topic.subscriber()). */
PyObject *psb_publisher_new(psb_topic *t);
PyObject *psb_subscriber_new(psb_topic *t, PyObject *args, PyObject *kw);

/* __enter__ of every object: returns self. */
PyObject *psb_enter(PyObject *self, PyObject *unused);

/* A Topic's child is gone: destroy the topic if it was closed meanwhile. */
void psb_topic_child_gone(psb_topic *t);

#endif
