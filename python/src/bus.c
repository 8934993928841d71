/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The module shmbus._shmbus, its connect(), and the Bus and Topic objects.
 * A Bus is a connection to a bus's daemon (shmbus_connect()); a Topic a
 * topic opened through it (shmbus_open()). Calls that make a round trip to
 * the daemon release the GIL. A Topic closed while publishers or
 * subscribers made from it are open is destroyed when the last of them
 * closes: the library wants the topic to outlive them.
 */
#include <string.h>

#include "pyshmbus.h"

typedef struct {
    PyObject_HEAD
    shmbus_bus *bus;    /* NULL once closed */
    struct psb_guard g; /* held by open() and close() */
    PyObject *name;     /* str, or None for the default bus */
} bus_object;

PyObject *psb_connect(PyObject *mod, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"bus", NULL};
    const char *name = NULL;
    bus_object *b;
    int rc;

    (void)mod;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|z:connect", kwlist, &name))
        return NULL;
    b = PyObject_New(bus_object, &psb_BusType);
    if (b == NULL)
        return NULL;
    b->bus = NULL;
    b->g.lock = NULL;
    b->name = name != NULL ? PyUnicode_FromString(name) : Py_NewRef(Py_None);
    if (b->name == NULL || psb_guard_init(&b->g) < 0) {
        Py_DECREF(b);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = shmbus_connect(name, &b->bus);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        Py_DECREF(b);
        return psb_raise(rc);
    }
    return (PyObject *)b;
}

/* Close the connection of @p b, its lock held (psb_close_begin() or
 * psb_end() said so), then let the lock go. */
static void bus_destroy(bus_object *b)
{
    shmbus_bus *h = b->bus;

    b->bus = NULL;
    Py_BEGIN_ALLOW_THREADS
    shmbus_close(h);
    Py_END_ALLOW_THREADS
    psb_close_end(&b->g);
}

static void bus_release(bus_object *b)
{
    /* Closed already. */
    if (psb_close_begin(&b->g))
        bus_destroy(b);
}

static void bus_dealloc(bus_object *b)
{
    if (b->bus != NULL)
        bus_release(b);
    psb_guard_fini(&b->g);
    Py_XDECREF(b->name);
    PyObject_Free(b);
}

static PyObject *bus_close(bus_object *b, PyObject *unused)
{
    (void)unused;
    if (b->bus != NULL)
        bus_release(b);
    Py_RETURN_NONE;
}

static PyObject *bus_exit(PyObject *self, PyObject *args)
{
    (void)args;
    return bus_close((bus_object *)self, NULL);
}

PyObject *psb_enter(PyObject *self, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(self);
}

/* Options of Bus.open() into @p o; @return 0, or -1 with an exception set.
 * reliable None (mode 0) opens an existing topic of either mode, and
 * creates a lossy one. */
static int bus_topic_opts(shmbus_topic_opts *o, PyObject *reliable, int exclusive, double stall)
{
    int r = reliable == Py_None ? -1 : PyObject_IsTrue(reliable);

    if (r == -1 && PyErr_Occurred())
        return -1;
    o->mode = r < 0 ? 0 : r ? SHMBUS_RELIABLE : SHMBUS_LOSSY;
    o->flags = exclusive ? SHMBUS_TOPIC_EXCLUSIVE : 0;
    if (!(stall >= 0.0) || stall > 4.0e6) {
        PyErr_SetString(PyExc_ValueError, "stall_timeout must be 0..4e6 seconds");
        return -1;
    }
    o->stall_timeout_ms = (uint32_t)(stall * 1000.0);
    if (stall > 0.0 && o->stall_timeout_ms == 0)
        o->stall_timeout_ms = 1;
    return 0;
}

static PyObject *topic_new(bus_object *b, PyObject *name, shmbus_topic *topic)
{
    psb_topic *t = PyObject_New(psb_topic, &psb_TopicType);

    if (t == NULL) {
        shmbus_topic_destroy(topic);
        return NULL;
    }
    t->topic = topic;
    t->bus = Py_NewRef((PyObject *)b);
    t->name = Py_NewRef(name);
    t->children = 0;
    t->closed = 0;
    t->fork_gen = psb_fork_gen();
    shmbus_topic_info_get(topic, &t->info);
    return (PyObject *)t;
}

static PyObject *bus_open(bus_object *b, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {
        "name",           "reliable",   "capacity",      "max_msg", "exclusive", "max_subscribers",
        "max_publishers", "max_groups", "stall_timeout", "perm",    "create",    NULL};
    shmbus_topic_opts o;
    shmbus_topic *topic = NULL;
    PyObject *name, *reliable = Py_None;
    int exclusive = 0, create = 1, rc;
    double stall = 0.0;
    const char *cname;
    Py_ssize_t len;

    memset(&o, 0, sizeof(o));
    if (!PyArg_ParseTupleAndKeywords(args, kw, "U|$OO&O&pO&O&O&dO&p:open", kwlist, &name, &reliable,
                                     psb_u32, &o.capacity, psb_u32, &o.max_msg_size, &exclusive,
                                     psb_u32, &o.max_subscribers, psb_u32, &o.max_publishers,
                                     psb_u32, &o.max_groups, &stall, psb_u32, &o.perm, &create))
        return NULL;
    cname = PyUnicode_AsUTF8AndSize(name, &len);
    if (cname == NULL || bus_topic_opts(&o, reliable, exclusive, stall) < 0)
        return NULL;
    /* An embedded NUL would open the topic named by the part before it. */
    if (strlen(cname) != (size_t)len)
        return psb_raise(SHMBUS_ERR_BAD_NAME);
    if (psb_begin(&b->g, "Bus") < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = shmbus_open(b->bus, cname, &o, create ? 0 : SHMBUS_OPEN_NOCREATE, &topic);
    Py_END_ALLOW_THREADS
    /* Closed inside the call: the connection goes now. */
    if (psb_end(&b->g))
        bus_destroy(b);
    if (rc < 0)
        return psb_raise(rc);
    return topic_new(b, name, topic);
}

static PyObject *bus_closed(bus_object *b, void *unused)
{
    (void)unused;
    return PyBool_FromLong(b->g.closed);
}

static PyObject *bus_repr(bus_object *b)
{
    return PyUnicode_FromFormat("<shmbus.Bus %R%s>", b->name, b->g.closed ? " closed" : "");
}

static PyMethodDef bus_methods[] = {
    {"open", (PyCFunction)(void (*)(void))bus_open, METH_VARARGS | METH_KEYWORDS,
     "open(name, *, reliable=None, capacity=0, max_msg=0, exclusive=False, "
     "max_subscribers=0, max_publishers=0, max_groups=0, stall_timeout=0.0, perm=0, "
     "create=True) -> Topic\n\nOpen a topic through the daemon, creating it on first "
     "use. 0 (reliable: None) takes the default (lossy) or, for an existing topic, what "
     "it has; other values must match it (else shmbus.Mismatch)."},
    {"close", (PyCFunction)bus_close, METH_NOARGS,
     "Close the connection. Topics opened through it stay usable."},
    {"__enter__", psb_enter, METH_NOARGS, NULL},
    {"__exit__", bus_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef bus_getset[] = {
    {"closed", (getter)bus_closed, NULL, "True once close() was called", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyMemberDef bus_members[] = {
    {"name", T_OBJECT, offsetof(bus_object, name), READONLY, "bus name (None: the default)"},
    {NULL, 0, 0, 0, NULL}};

PyTypeObject psb_BusType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmbus.Bus",
    .tp_basicsize = sizeof(bus_object),
    .tp_dealloc = (destructor)bus_dealloc,
    .tp_repr = (reprfunc)bus_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A connection to a bus's daemon: shmbus.connect(bus=None).",
    .tp_methods = bus_methods,
    .tp_members = bus_members,
    .tp_getset = bus_getset,
};
