/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Topic object: a topic opened through a Bus. It makes publishers and
 * subscribers, reports its parameters (read once, at open) and counters
 * (stats(), read from the segment each call), and is destroyed when closed
 * and the last publisher or subscriber made from it is gone.
 */
#include "pyshmbus.h"

/* Destroy the library handle (a round trip to the daemon: GIL released). */
static void topic_destroy(psb_topic *t)
{
    shmbus_topic *h = t->topic;

    t->topic = NULL;
    if (t->fork_gen != psb_fork_gen()) {
        shmbus_topic_destroy(h);
        return;
    }
    Py_BEGIN_ALLOW_THREADS
    shmbus_topic_destroy(h);
    Py_END_ALLOW_THREADS
}

void psb_topic_child_gone(psb_topic *t)
{
    t->children--;
    /* close() was called while this child lived: the topic goes now. */
    if (t->closed && t->children == 0 && t->topic != NULL)
        topic_destroy(t);
}

static void topic_dealloc(psb_topic *t)
{
    /* Children hold a reference: none is left here. */
    if (t->topic != NULL)
        topic_destroy(t);
    Py_XDECREF(t->bus);
    Py_XDECREF(t->name);
    PyObject_Free(t);
}

static PyObject *topic_close(psb_topic *t, PyObject *unused)
{
    (void)unused;
    t->closed = 1;
    if (t->children == 0 && t->topic != NULL)
        topic_destroy(t);
    Py_RETURN_NONE;
}

static PyObject *topic_exit(PyObject *self, PyObject *args)
{
    (void)args;
    return topic_close((psb_topic *)self, NULL);
}

static PyObject *topic_publisher(psb_topic *t, PyObject *unused)
{
    (void)unused;
    if (psb_check_usable(t->closed, t->fork_gen, "Topic") < 0)
        return NULL;
    return psb_publisher_new(t);
}

static PyObject *topic_subscriber(psb_topic *t, PyObject *args, PyObject *kw)
{
    if (psb_check_usable(t->closed, t->fork_gen, "Topic") < 0)
        return NULL;
    return psb_subscriber_new(t, args, kw);
}

static PyObject *topic_stats(psb_topic *t, PyObject *unused)
{
    shmbus_topic_info i;

    (void)unused;
    if (psb_check_usable(t->topic == NULL, t->fork_gen, "Topic") < 0)
        return NULL;
    shmbus_topic_info_get(t->topic, &i);
    return Py_BuildValue(
        "{sKsKsKsKsKsKsK}", "published", (unsigned long long)i.published, "overruns",
        (unsigned long long)i.overruns, "skipped", (unsigned long long)i.skipped, "unblocked",
        (unsigned long long)i.unblocked, "reaped", (unsigned long long)i.reaped, "evicted",
        (unsigned long long)i.evicted, "abandoned", (unsigned long long)i.abandoned);
}

static PyObject *topic_reliable(psb_topic *t, void *unused)
{
    (void)unused;
    return PyBool_FromLong(t->info.mode == SHMBUS_RELIABLE);
}

static PyObject *topic_exclusive(psb_topic *t, void *unused)
{
    (void)unused;
    return PyBool_FromLong((t->info.flags & SHMBUS_TOPIC_EXCLUSIVE) != 0);
}

static PyObject *topic_closed(psb_topic *t, void *unused)
{
    (void)unused;
    return PyBool_FromLong(t->closed);
}

static PyObject *topic_repr(psb_topic *t)
{
    return PyUnicode_FromFormat("<shmbus.Topic %R %s capacity=%u max_msg=%u%s>", t->name,
                                t->info.mode == SHMBUS_RELIABLE ? "reliable" : "lossy",
                                t->info.capacity, t->info.max_msg_size, t->closed ? " closed" : "");
}

static PyMethodDef topic_methods[] = {
    {"publisher", (PyCFunction)topic_publisher, METH_NOARGS,
     "publisher() -> Publisher\n\nA publisher on this topic, used by one thread at a time."},
    {"subscriber", (PyCFunction)(void (*)(void))topic_subscriber, METH_VARARGS | METH_KEYWORDS,
     "subscriber(group=None, start='next', *, observer=False) -> Subscriber\n\n"
     "start: 'next', 'oldest', or an int seq. group: a consumer group name."},
    {"stats", (PyCFunction)topic_stats, METH_NOARGS,
     "stats() -> dict of the topic's counters (published, overruns, ...)."},
    {"close", (PyCFunction)topic_close, METH_NOARGS,
     "Close the topic; it goes when its last publisher and subscriber close."},
    {"__enter__", psb_enter, METH_NOARGS, NULL},
    {"__exit__", topic_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef topic_getset[] = {
    {"reliable", (getter)topic_reliable, NULL, "True for a reliable topic", NULL},
    {"exclusive", (getter)topic_exclusive, NULL, "True for an exclusive topic", NULL},
    {"closed", (getter)topic_closed, NULL, "True once close() was called", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyMemberDef topic_members[] = {
    {"name", T_OBJECT, offsetof(psb_topic, name), READONLY, "topic name"},
    {"bus", T_OBJECT, offsetof(psb_topic, bus), READONLY, "the Bus it was opened through"},
    {"capacity", T_UINT, offsetof(psb_topic, info.capacity), READONLY, "cells in the ring"},
    {"max_msg", T_UINT, offsetof(psb_topic, info.max_msg_size), READONLY,
     "largest payload in bytes"},
    {"max_subscribers", T_UINT, offsetof(psb_topic, info.max_subscribers), READONLY, NULL},
    {"max_publishers", T_UINT, offsetof(psb_topic, info.max_publishers), READONLY, NULL},
    {"max_groups", T_UINT, offsetof(psb_topic, info.max_groups), READONLY, NULL},
    {NULL, 0, 0, 0, NULL}};

PyTypeObject psb_TopicType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmbus.Topic",
    .tp_basicsize = sizeof(psb_topic),
    .tp_dealloc = (destructor)topic_dealloc,
    .tp_repr = (reprfunc)topic_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A topic opened through a Bus: bus.open(name, ...).",
    .tp_methods = topic_methods,
    .tp_members = topic_members,
    .tp_getset = topic_getset,
};
