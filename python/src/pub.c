/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Publisher object. publish() hands libshmbus the caller's buffer
 * (any object with the buffer protocol) as it is: the ring's copy is the
 * only one. A lossy topic never waits, so the GIL stays held there (a
 * release costs more than the publish); a reliable topic that is full is
 * waited on with the GIL released, in slices of PSB_SLICE_NS so that
 * signals are handled. publish_many() goes through shmbus_publish_vec(),
 * PUB_CHUNK messages a call.
 */
#include <errno.h>
#include <sys/uio.h>

#include "pyshmbus.h"

/* Messages taken from the iterable and published per shmbus_publish_vec(). */
#define PUB_CHUNK 64

typedef struct {
    PyObject_HEAD
    shmbus_pub *pub;    /* NULL once closed */
    psb_topic *topic;   /* a reference */
    int counted;        /* in topic->children: until the handles are destroyed */
    struct psb_guard g; /* held by every call on pub */
} pub_object;

PyObject *psb_publisher_new(psb_topic *t)
{
    pub_object *p = PyObject_New(pub_object, &psb_PublisherType);
    int rc;

    if (p == NULL)
        return NULL;
    p->pub = NULL;
    p->g.lock = NULL;
    p->topic = (psb_topic *)Py_NewRef((PyObject *)t);
    p->counted = 1;
    t->children++;
    if (psb_guard_init(&p->g) < 0) {
        Py_DECREF(p);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = shmbus_pub_create(t->topic, &p->pub);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        Py_DECREF(p);
        return psb_raise(rc);
    }
    return (PyObject *)p;
}

/* Leave the Topic's children once the handles are gone (or were never
 * made): a closed Topic goes with its last child, not with the last
 * child object, which the program may keep long after closing it. */
static void pub_uncount(pub_object *p)
{
    if (!p->counted)
        return;
    p->counted = 0;
    psb_topic_child_gone(p->topic);
}

/* Destroy the library's publisher of @p p, its lock held (psb_close_begin()
 * or psb_end() said so), then let the lock go. */
static void pub_destroy(pub_object *p)
{
    shmbus_pub *h = p->pub;

    p->pub = NULL;
    Py_BEGIN_ALLOW_THREADS
    shmbus_pub_destroy(h);
    Py_END_ALLOW_THREADS
    psb_close_end(&p->g);
    pub_uncount(p);
}

static void pub_release(pub_object *p)
{
    /* Closed already, or inside this thread's call (a signal handler),
     * whose end destroys the publisher. A publish() waiting for room in
     * another thread sees the closed flag within a slice. */
    if (psb_close_begin(&p->g))
        pub_destroy(p);
}

/* End a call on @p p: psb_end(), and the publisher's destruction if
 * close() was called inside it. */
static void pub_end(pub_object *p)
{
    if (psb_end(&p->g))
        pub_destroy(p);
}

static void pub_dealloc(pub_object *p)
{
    if (p->pub != NULL)
        pub_release(p);
    psb_guard_fini(&p->g);
    pub_uncount(p);
    Py_DECREF(p->topic);
    PyObject_Free(p);
}

static PyObject *pub_close(pub_object *p, PyObject *unused)
{
    (void)unused;
    if (p->pub != NULL)
        pub_release(p);
    Py_RETURN_NONE;
}

static PyObject *pub_exit(PyObject *self, PyObject *args)
{
    (void)args;
    return pub_close((pub_object *)self, NULL);
}

/*
 * Wait for room with the GIL released, in slices, for up to @p timeout_ns
 * (-1 for ever). @p call publishes with a timeout and returns its result.
 * Call with the publisher's guard @p g held. @return the last result,
 * SHMBUS_ERR_TIMEOUT once the timeout went by; -ECANCELED once close()
 * was called meanwhile; -EINTR with a Python exception set when a signal
 * handler raised.
 */
static int pub_wait(const struct psb_guard *g, int64_t timeout_ns, int (*call)(void *, int64_t),
                    void *arg)
{
    struct psb_wait w;
    int64_t slice;
    int rc;

    psb_wait_start(&w, timeout_ns);
    while ((slice = psb_wait_slice(&w)) > 0) {
        Py_BEGIN_ALLOW_THREADS
        rc = call(arg, slice);
        Py_END_ALLOW_THREADS
        if (rc != SHMBUS_ERR_TIMEOUT && rc != -EINTR)
            return rc;
        if (PyErr_CheckSignals() < 0)
            return -EINTR;
        /* Closed by another thread or a signal handler: nothing went. */
        if (g->closed)
            return -ECANCELED;
    }
    /* The whole timeout went by with the ring full. */
    return SHMBUS_ERR_TIMEOUT;
}

struct pub_one {
    const struct psb_guard *g;
    shmbus_pub *pub;
    const void *data;
    size_t len;
};

static int pub_one_call(void *arg, int64_t timeout_ns)
{
    struct pub_one *a = arg;

    return shmbus_publish(a->pub, a->data, a->len, timeout_ns);
}

/* Publish @p a, waiting up to @p timeout_ns when reliable and full. */
static int pub_send(struct pub_one *a, int64_t timeout_ns)
{
    int rc = shmbus_publish(a->pub, a->data, a->len, 0);

    /* Room at once (or lossy, which never waits), or no wait wanted. */
    if (rc != -EAGAIN || timeout_ns == 0)
        return rc;
    return pub_wait(a->g, timeout_ns, pub_one_call, a);
}

static PyObject *pub_publish(pub_object *p, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"data", "timeout", NULL};
    PyObject *timeout = Py_None;
    struct pub_one a;
    Py_buffer view;
    int64_t tns;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*|O:publish", kwlist, &view, &timeout))
        return NULL;
    if (psb_timeout_ns(timeout, &tns) < 0 || psb_begin(&p->g, "Publisher") < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    a = (struct pub_one){.g = &p->g, .pub = p->pub, .data = view.buf, .len = (size_t)view.len};
    rc = pub_send(&a, tns);
    pub_end(p);
    PyBuffer_Release(&view);
    if (rc == -EINTR && PyErr_Occurred())
        return NULL;
    if (rc < 0)
        return psb_raise_publish(rc, -1);
    Py_RETURN_NONE;
}

/* One chunk of publish_many(): buffers taken from the iterable. */
struct pub_vec {
    const struct psb_guard *g;
    shmbus_pub *pub;
    struct iovec iov[PUB_CHUNK];
    Py_buffer views[PUB_CHUNK];
    unsigned n;    /* buffers held */
    unsigned done; /* published so far */
};

static int pub_vec_call(void *arg, int64_t timeout_ns)
{
    struct pub_vec *v = arg;

    return shmbus_publish_vec(v->pub, v->iov + v->done, v->n - v->done, timeout_ns);
}

/* Fill @p v from @p it. @return buffers taken (0 at the end), -1 on error. */
static int pub_vec_fill(struct pub_vec *v, PyObject *it)
{
    PyObject *item;

    v->n = v->done = 0;
    while (v->n < PUB_CHUNK && (item = PyIter_Next(it)) != NULL) {
        int rc = PyObject_GetBuffer(item, &v->views[v->n], PyBUF_SIMPLE);

        Py_DECREF(item);
        if (rc < 0)
            return -1;
        v->iov[v->n].iov_base = v->views[v->n].buf;
        v->iov[v->n].iov_len = (size_t)v->views[v->n].len;
        v->n++;
    }
    return PyErr_Occurred() ? -1 : (int)v->n;
}

static void pub_vec_release(struct pub_vec *v)
{
    for (unsigned i = 0; i < v->n; i++)
        PyBuffer_Release(&v->views[i]);
    v->n = 0;
}

/* Publish the chunk in @p v; @return 0, or the error that stopped it. */
static int pub_vec_send(struct pub_vec *v, int64_t timeout_ns)
{
    while (v->done < v->n) {
        int rc;

        /* Closed meanwhile (by the iterable, or a signal handler). */
        if (v->g->closed)
            return -ECANCELED;
        rc = pub_vec_call(v, 0);

        /* A full reliable ring: wait for room unless told not to. */
        if (rc == -EAGAIN && timeout_ns != 0)
            rc = pub_wait(v->g, timeout_ns, pub_vec_call, v);
        if (rc < 0)
            return rc;
        v->done += (unsigned)rc;
    }
    return 0;
}

/* Publish the buffers @p v took before the iterable raised, that exception
 * set aside meanwhile: set again after, unless the publish raised one of
 * its own (a signal handler's). @return as pub_vec_send(). */
static int pub_vec_flush(struct pub_vec *v, int64_t timeout_ns)
{
    int rc;
#if PY_VERSION_HEX >= 0x030C0000 /* PyErr_Fetch() is deprecated there */
    PyObject *exc = PyErr_GetRaisedException();

    rc = pub_vec_send(v, timeout_ns);
    if (PyErr_Occurred())
        Py_XDECREF(exc);
    else
        PyErr_SetRaisedException(exc);
#else
    PyObject *type, *value, *tb;

    PyErr_Fetch(&type, &value, &tb);
    rc = pub_vec_send(v, timeout_ns);
    if (PyErr_Occurred()) {
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
    } else
        PyErr_Restore(type, value, tb);
#endif
    return rc;
}

/* publish_many()'s loop over the chunks: what the iterable gave before it
 * raised is published too. @return published, or -1 raised. */
static Py_ssize_t pub_many(struct pub_vec *v, PyObject *it, int64_t tns)
{
    Py_ssize_t total = 0;
    int n, rc = 0;

    do {
        n = pub_vec_fill(v, it);
        if (v->n > 0)
            rc = n < 0 ? pub_vec_flush(v, tns) : pub_vec_send(v, tns);
        total += v->done;
        pub_vec_release(v);
    } while (rc == 0 && n > 0);
    if (PyErr_Occurred())
        return -1;
    /* Room ran out after some went: say how many, as socket.send() does. */
    if ((rc == -EAGAIN || rc == SHMBUS_ERR_TIMEOUT) && total > 0)
        return total;
    /* Any other error: .published says how many went before it. */
    if (rc < 0) {
        psb_raise_publish(rc, total);
        return -1;
    }
    return total;
}

static PyObject *pub_publish_many(pub_object *p, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"messages", "timeout", NULL};
    PyObject *msgs, *it, *timeout = Py_None;
    struct pub_vec *v;
    Py_ssize_t total;
    int64_t tns;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:publish_many", kwlist, &msgs, &timeout) ||
        psb_timeout_ns(timeout, &tns) < 0)
        return NULL;
    it = PyObject_GetIter(msgs);
    if (it == NULL)
        return NULL;
    v = PyMem_Malloc(sizeof(*v));
    if (v == NULL || psb_begin(&p->g, "Publisher") < 0) {
        PyMem_Free(v);
        Py_DECREF(it);
        return v == NULL ? PyErr_NoMemory() : NULL;
    }
    v->g = &p->g;
    v->pub = p->pub;
    v->n = 0;
    total = pub_many(v, it, tns);
    pub_end(p);
    PyMem_Free(v);
    Py_DECREF(it);
    return total < 0 ? NULL : PyLong_FromSsize_t(total);
}

static PyObject *pub_closed(pub_object *p, void *unused)
{
    (void)unused;
    return PyBool_FromLong(p->g.closed);
}

static PyMethodDef pub_methods[] = {
    {"publish", (PyCFunction)(void (*)(void))pub_publish, METH_VARARGS | METH_KEYWORDS,
     "publish(data, timeout=None)\n\nPublish a copy of data (any buffer). A full reliable "
     "topic waits up to timeout seconds (None: forever, 0: not at all), then raises "
     "shmbus.Full; shmbus.Error (ECANCELED) if close() is called meanwhile."},
    {"publish_many", (PyCFunction)(void (*)(void))pub_publish_many, METH_VARARGS | METH_KEYWORDS,
     "publish_many(messages, timeout=None) -> int\n\nPublish each buffer of the iterable, "
     "in batches (shmbus_publish_vec). Returns how many went out: fewer than given when a "
     "reliable topic stayed full for timeout after some went (the rest of that batch was "
     "taken from the iterable but not published); shmbus.Full when none did. An "
     "iterable that raises (or yields a non-buffer) has what it gave before published, "
     "then its exception propagates. Any shmbus.Error it raises has .published, "
     "how many went out before."},
    {"close", (PyCFunction)pub_close, METH_NOARGS, "Destroy the publisher."},
    {"__enter__", psb_enter, METH_NOARGS, NULL},
    {"__exit__", pub_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef pub_getset[] = {
    {"closed", (getter)pub_closed, NULL, "True once close() was called", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyMemberDef pub_members[] = {
    {"topic", T_OBJECT, offsetof(pub_object, topic), READONLY, "the Topic it publishes on"},
    {NULL, 0, 0, 0, NULL}};

PyTypeObject psb_PublisherType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmbus.Publisher",
    .tp_basicsize = sizeof(pub_object),
    .tp_dealloc = (destructor)pub_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A publisher on a topic: topic.publisher(). One thread at a time uses it "
              "(calls from others wait).",
    .tp_methods = pub_methods,
    .tp_members = pub_members,
    .tp_getset = pub_getset,
};
