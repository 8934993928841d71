/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Subscriber and Message objects. recv() takes one message with
 * shmbus_poll() while holding the GIL, copying its payload straight from
 * the ring (reliable) or from the library's checked copy (lossy) into the
 * Message's bytes: one copy, and the Message stays valid for ever. When
 * nothing is ready it waits with the GIL released on a wait set holding
 * only this subscriber (shmbus_waitset_wait(): spin, then the topic's
 * futex; consumes nothing), in slices of PSB_SLICE_NS so that signals are
 * handled and a close() from another thread ends the wait.
 */
#include <errno.h>
#include <string.h>

#include "pyshmbus.h"

typedef struct {
    PyObject_HEAD
    shmbus_sub *sub;    /* NULL once closed */
    shmbus_waitset *ws; /* holds sub alone */
    psb_topic *topic;   /* a reference */
    int counted;        /* in topic->children: until the handles are destroyed */
    struct psb_guard g; /* held by every call on sub; closed ends a wait */
} sub_object;

typedef struct {
    PyObject_HEAD
    PyObject *data; /* bytes */
    unsigned long long seq;
    unsigned long long timestamp;
    unsigned long long lost;
    unsigned int pid;
} msg_object;

/* Subscriber options from topic.subscriber()'s start argument. */
static int sub_start(PyObject *start, shmbus_sub_opts *o)
{
    if (PyLong_Check(start)) {
        o->start = SHMBUS_START_SEQ;
        o->start_seq = PyLong_AsUnsignedLongLong(start);
        return PyErr_Occurred() ? -1 : 0;
    }
    if (PyUnicode_Check(start) && PyUnicode_CompareWithASCIIString(start, "next") == 0)
        o->start = SHMBUS_START_NEXT;
    else if (PyUnicode_Check(start) && PyUnicode_CompareWithASCIIString(start, "oldest") == 0)
        o->start = SHMBUS_START_OLDEST;
    else {
        PyErr_SetString(PyExc_ValueError, "start must be 'next', 'oldest' or a seq (int)");
        return -1;
    }
    return 0;
}

/* Create the library's subscriber and wait set of @p s (GIL released). */
static int sub_attach(sub_object *s, const shmbus_sub_opts *o)
{
    int rc;

    Py_BEGIN_ALLOW_THREADS
    rc = shmbus_sub_create(s->topic->topic, o, &s->sub);
    if (rc == 0)
        rc = shmbus_waitset_create(&s->ws);
    if (rc == 0)
        rc = shmbus_waitset_add(s->ws, s->sub);
    Py_END_ALLOW_THREADS
    return rc;
}

PyObject *psb_subscriber_new(psb_topic *t, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"group", "start", "observer", NULL};
    shmbus_sub_opts o;
    const char *group = NULL;
    PyObject *start = NULL;
    int observer = 0, rc;
    sub_object *s;

    memset(&o, 0, sizeof(o));
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|zO$p:subscriber", kwlist, &group, &start,
                                     &observer) ||
        (start != NULL && sub_start(start, &o) < 0))
        return NULL;
    o.group_name = group;
    o.flags = observer ? SHMBUS_SUB_OBSERVER : 0;
    s = PyObject_New(sub_object, &psb_SubscriberType);
    if (s == NULL)
        return NULL;
    s->sub = NULL;
    s->ws = NULL;
    s->g.lock = NULL;
    s->topic = (psb_topic *)Py_NewRef((PyObject *)t);
    s->counted = 1;
    t->children++;
    if (psb_guard_init(&s->g) < 0) {
        Py_DECREF(s);
        return NULL;
    }
    rc = sub_attach(s, &o);
    if (rc < 0) {
        Py_DECREF(s);
        return psb_raise(rc);
    }
    return (PyObject *)s;
}

/* Leave the Topic's children once the handles are gone (or were never
 * made): a closed Topic goes with its last child, not with the last
 * child object, which the program may keep long after closing it. */
static void sub_uncount(sub_object *s)
{
    if (!s->counted)
        return;
    s->counted = 0;
    psb_topic_child_gone(s->topic);
}

/* Destroy the library's handles of @p s, its lock held (psb_close_begin()
 * or psb_end() said so), then let the lock go. */
static void sub_destroy(sub_object *s)
{
    shmbus_sub *h;
    shmbus_waitset *ws;

    h = s->sub;
    ws = s->ws;
    s->sub = NULL;
    s->ws = NULL;
    Py_BEGIN_ALLOW_THREADS
    shmbus_waitset_destroy(ws);
    shmbus_sub_destroy(h);
    Py_END_ALLOW_THREADS
    psb_close_end(&s->g);
    sub_uncount(s);
}

static void sub_release(sub_object *s)
{
    /* Closed already, or by a signal handler inside this thread's call,
     * whose end destroys the handles. A recv() waiting in another thread
     * sees the closed flag within a slice and lets the lock go. */
    if (psb_close_begin(&s->g))
        sub_destroy(s);
}

/* End a call on @p s: psb_end(), and the handles' destruction if close()
 * was called inside it. */
static void sub_end(sub_object *s)
{
    if (psb_end(&s->g))
        sub_destroy(s);
}

static void sub_dealloc(sub_object *s)
{
    if (s->sub != NULL || s->ws != NULL)
        sub_release(s);
    psb_guard_fini(&s->g);
    sub_uncount(s);
    Py_DECREF(s->topic);
    PyObject_Free(s);
}

static PyObject *sub_close(sub_object *s, PyObject *unused)
{
    (void)unused;
    if (s->sub != NULL)
        sub_release(s);
    Py_RETURN_NONE;
}

static PyObject *sub_exit(PyObject *self, PyObject *args)
{
    (void)args;
    return sub_close((sub_object *)self, NULL);
}

/* shmbus_poll() callback: the message as a Message, in *arg. */
static int sub_take(const shmbus_msg *m, void *arg)
{
    msg_object *msg = PyObject_New(msg_object, &psb_MessageType);

    if (msg == NULL)
        return 1;
    msg->data = PyBytes_FromStringAndSize(m->data, m->len);
    if (msg->data == NULL) {
        Py_DECREF(msg);
        return 1;
    }
    msg->seq = m->seq;
    msg->timestamp = m->timestamp_ns;
    msg->lost = m->lost;
    msg->pid = m->publisher_pid;
    *(PyObject **)arg = (PyObject *)msg;
    return 1;
}

/*
 * Wait for a message until @p w's deadline. Call with s->g held.
 * @return 1 ready; 0 nothing came, or close() was called; a negative
 * code; -EINTR with a Python exception set.
 */
static int sub_wait(sub_object *s, const struct psb_wait *w)
{
    shmbus_sub *ready;
    int64_t slice;
    int rc;

    while ((slice = psb_wait_slice(w)) > 0) {
        Py_BEGIN_ALLOW_THREADS
        rc = shmbus_waitset_wait(s->ws, &ready, 1, slice);
        Py_END_ALLOW_THREADS
        if (rc != SHMBUS_ERR_TIMEOUT && rc != -EINTR && rc != -EAGAIN)
            return rc;
        if (PyErr_CheckSignals() < 0)
            return -EINTR;
        /* Closed by another thread: the wait ends with nothing. */
        if (s->g.closed)
            return 0;
    }
    /* The whole timeout went by with nothing. */
    return 0;
}

/* recv() with s->g held. @return a Message, None, or NULL raised. */
static PyObject *sub_recv_locked(sub_object *s, int64_t tns)
{
    struct psb_wait w;

    psb_wait_start(&w, tns);
    for (;;) {
        PyObject *msg = NULL;
        int rc = shmbus_poll(s->sub, sub_take, &msg, 1);

        /* Evicted while the callback copied from the ring in place (or any
         * error after a delivery): what it copied may have been
         * overwritten, so it is dropped, as shmbus_recv() drops it. */
        if (rc < 0) {
            Py_XDECREF(msg);
            return psb_raise(rc);
        }
        if (msg != NULL)
            return msg;
        if (rc > 0 || PyErr_Occurred()) /* consumed, but no memory for it */
            return PyErr_Occurred() ? NULL : PyErr_NoMemory();
        /* Nothing ready and no wait wanted. */
        if (tns == 0)
            Py_RETURN_NONE;
        rc = sub_wait(s, &w);
        if (rc == -EINTR && PyErr_Occurred())
            return NULL;
        if (rc < 0)
            return psb_raise(rc);
        if (rc == 0)
            Py_RETURN_NONE;
    }
}

static PyObject *sub_recv_ns(sub_object *s, int64_t tns)
{
    PyObject *r;

    if (psb_begin(&s->g, "Subscriber") < 0)
        return NULL;
    r = sub_recv_locked(s, tns);
    sub_end(s);
    return r;
}

static PyObject *sub_recv(sub_object *s, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *timeout = Py_None;
    int64_t tns;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:recv", kwlist, &timeout) ||
        psb_timeout_ns(timeout, &tns) < 0)
        return NULL;
    return sub_recv_ns(s, tns);
}

static PyObject *sub_next(sub_object *s)
{
    PyObject *r = sub_recv_ns(s, -1);

    /* None from a wait for ever: closed meanwhile, the iteration ends. */
    if (r == Py_None) {
        Py_DECREF(r);
        return NULL;
    }
    return r;
}

/* wait(): a message is ready, without taking it. */
static PyObject *sub_wait_ready(sub_object *s, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *timeout = Py_None;
    struct psb_wait w;
    int64_t tns;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:wait", kwlist, &timeout) ||
        psb_timeout_ns(timeout, &tns) < 0 || psb_begin(&s->g, "Subscriber") < 0)
        return NULL;
    psb_wait_start(&w, tns);
    rc = shmbus_sub_ready(s->sub);
    if (rc == 0 && tns != 0)
        rc = sub_wait(s, &w);
    sub_end(s);
    if (rc == -EINTR && PyErr_Occurred())
        return NULL;
    if (rc < 0)
        return psb_raise(rc);
    return PyBool_FromLong(rc > 0);
}

static PyObject *sub_stats(sub_object *s, PyObject *unused)
{
    shmbus_sub_stats st;

    (void)unused;
    if (psb_begin(&s->g, "Subscriber") < 0)
        return NULL;
    shmbus_sub_stats_get(s->sub, &st);
    sub_end(s);
    return Py_BuildValue("{sKsKsKsK}", "received", (unsigned long long)st.received, "lost",
                         (unsigned long long)st.lost, "lag", (unsigned long long)st.lag, "position",
                         (unsigned long long)st.position);
}

/* sub.aiter(): shmbus._aio.aiter(sub, ...), an async iterator. */
static PyObject *sub_aiter(sub_object *s, PyObject *args, PyObject *kw)
{
    PyObject *mod = PyImport_ImportModule("shmbus._aio");
    PyObject *fn, *full, *r = NULL;

    if (mod == NULL)
        return NULL;
    fn = PyObject_GetAttrString(mod, "aiter");
    Py_DECREF(mod);
    if (fn == NULL)
        return NULL;
    full = PyTuple_New(PyTuple_GET_SIZE(args) + 1);
    if (full != NULL) {
        PyTuple_SET_ITEM(full, 0, Py_NewRef((PyObject *)s));
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++)
            PyTuple_SET_ITEM(full, i + 1, Py_NewRef(PyTuple_GET_ITEM(args, i)));
        r = PyObject_Call(fn, full, kw);
        Py_DECREF(full);
    }
    Py_DECREF(fn);
    return r;
}

static PyObject *sub_closed(sub_object *s, void *unused)
{
    (void)unused;
    return PyBool_FromLong(s->g.closed);
}

static PyMethodDef sub_methods[] = {
    {"recv", (PyCFunction)(void (*)(void))sub_recv, METH_VARARGS | METH_KEYWORDS,
     "recv(timeout=None) -> Message or None\n\nThe next message, waiting up to timeout "
     "seconds (None: for ever, 0: not at all) with the GIL released. None when nothing "
     "came, or close() was called from another thread meanwhile."},
    {"wait", (PyCFunction)(void (*)(void))sub_wait_ready, METH_VARARGS | METH_KEYWORDS,
     "wait(timeout=None) -> bool\n\nWait up to timeout seconds (GIL released) until a "
     "message is ready, taking none: True if one is (or an error or loss to report)."},
    {"stats", (PyCFunction)sub_stats, METH_NOARGS,
     "stats() -> dict: received, lost, lag, position."},
    {"aiter", (PyCFunction)(void (*)(void))sub_aiter, METH_VARARGS | METH_KEYWORDS,
     "aiter(slice=0.2) -> async iterator of Messages: waits in the loop's default "
     "executor, one thread per iterator (shmbus._aio)."},
    {"close", (PyCFunction)sub_close, METH_NOARGS,
     "Release the slot; a recv() waiting in another thread returns None."},
    {"__enter__", psb_enter, METH_NOARGS, NULL},
    {"__exit__", sub_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef sub_getset[] = {
    {"closed", (getter)sub_closed, NULL, "True once close() was called", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyMemberDef sub_members[] = {
    {"topic", T_OBJECT, offsetof(sub_object, topic), READONLY, "the Topic it reads"},
    {NULL, 0, 0, 0, NULL}};

PyTypeObject psb_SubscriberType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmbus.Subscriber",
    .tp_basicsize = sizeof(sub_object),
    .tp_dealloc = (destructor)sub_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A subscriber: topic.subscriber(). Iterating it blocks for each message. "
              "One thread at a time uses it (calls from others wait).",
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)sub_next,
    .tp_methods = sub_methods,
    .tp_members = sub_members,
    .tp_getset = sub_getset,
};

static void msg_dealloc(msg_object *m)
{
    Py_XDECREF(m->data);
    PyObject_Free(m);
}

static PyObject *msg_repr(msg_object *m)
{
    return PyUnicode_FromFormat("<shmbus.Message seq=%llu len=%zd lost=%llu pid=%u>", m->seq,
                                PyBytes_GET_SIZE(m->data), m->lost, m->pid);
}

static PyMemberDef msg_members[] = {
    {"data", T_OBJECT, offsetof(msg_object, data), READONLY,
     "payload: bytes, a copy out of the ring, valid for ever"},
    {"seq", T_ULONGLONG, offsetof(msg_object, seq), READONLY, "per-topic sequence number"},
    {"timestamp", T_ULONGLONG, offsetof(msg_object, timestamp), READONLY,
     "publish time, CLOCK_REALTIME ns"},
    {"lost", T_ULONGLONG, offsetof(msg_object, lost), READONLY,
     "messages lost just before this one"},
    {"pid", T_UINT, offsetof(msg_object, pid), READONLY, "the publishing process"},
    {NULL, 0, 0, 0, NULL}};

PyTypeObject psb_MessageType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmbus.Message",
    .tp_basicsize = sizeof(msg_object),
    .tp_dealloc = (destructor)msg_dealloc,
    .tp_repr = (reprfunc)msg_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A received message: .data (bytes), .seq, .timestamp (ns), .lost, .pid.",
    .tp_members = msg_members,
};
