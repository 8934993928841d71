/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The exception classes of the shmbus module. shmbus.Error carries .code
 * (the negative code the library returned) and .name (the code's C name,
 * "SHMBUS_ERR_TOPIC_GONE", or the errno's, "ENOENT"); its message is
 * shmbus_strerror(). The common codes get a subclass each, so that a
 * caller catches shmbus.TopicGone rather than comparing codes.
 */
#include <errno.h>
#include <string.h>

#include "pyshmbus.h"

PyObject *psb_Error;
PyObject *psb_Timeout;
PyObject *psb_Full;

/* The C names of enum shmbus_error, indexed by SHMBUS_ERR_INVALID - code. */
static const char *const errors_names[] = {
    "SHMBUS_ERR_INVALID",    "SHMBUS_ERR_BAD_MAGIC",   "SHMBUS_ERR_VERSION",
    "SHMBUS_ERR_TRUNCATED",  "SHMBUS_ERR_NOT_READY",   "SHMBUS_ERR_CORRUPT",
    "SHMBUS_ERR_TOO_BIG",    "SHMBUS_ERR_NO_SLOT",     "SHMBUS_ERR_TIMEOUT",
    "SHMBUS_ERR_NO_SPACE",   "SHMBUS_ERR_OVERRUN",     "SHMBUS_ERR_WAITSET_FULL",
    "SHMBUS_ERR_NO_DAEMON",  "SHMBUS_ERR_PROTOCOL",    "SHMBUS_ERR_PROTO_VERSION",
    "SHMBUS_ERR_DENIED",     "SHMBUS_ERR_LIMIT",       "SHMBUS_ERR_MISMATCH",
    "SHMBUS_ERR_BAD_NAME",   "SHMBUS_ERR_DAEMON_LOST", "SHMBUS_ERR_EVICTED",
    "SHMBUS_ERR_TOPIC_GONE", "SHMBUS_ERR_UNTRUSTED",   "SHMBUS_ERR_RANGE",
};
#define ERRORS_N ((int)(sizeof(errors_names) / sizeof(errors_names[0])))

/* A subclass of shmbus.Error and the code it stands for. */
struct errors_class {
    const char *name; /* attribute of the module */
    int code;
    const char *doc;
    PyObject *cls;
};

static struct errors_class errors_classes[] = {
    {"TopicGone", SHMBUS_ERR_TOPIC_GONE, "The topic was removed: destroy its handles.", NULL},
    {"Mismatch", SHMBUS_ERR_MISMATCH, "The topic exists with other options.", NULL},
    {"NoDaemon", SHMBUS_ERR_NO_DAEMON, "No daemon serves the bus.", NULL},
    {"DaemonLost", SHMBUS_ERR_DAEMON_LOST, "The connection to the daemon was lost.", NULL},
    {"TooBig", SHMBUS_ERR_TOO_BIG, "The message is longer than the topic's max_msg.", NULL},
    {"Evicted", SHMBUS_ERR_EVICTED, "The subscriber was evicted (stall timeout).", NULL},
    {"Overrun", SHMBUS_ERR_OVERRUN, "The message was dropped: readers count it lost.", NULL},
    {"NoSlot", SHMBUS_ERR_NO_SLOT, "Every subscriber slot of the topic is taken.", NULL},
    {"BadName", SHMBUS_ERR_BAD_NAME, "A bus, topic or group name is malformed.", NULL},
    {"Limit", SHMBUS_ERR_LIMIT, "A daemon limit was reached.", NULL},
};
#define ERRORS_CLASSES_N (sizeof(errors_classes) / sizeof(errors_classes[0]))

static const char *errors_name(int rc)
{
    const char *n;

    if (rc <= SHMBUS_ERR_INVALID && rc > SHMBUS_ERR_INVALID - ERRORS_N)
        return errors_names[SHMBUS_ERR_INVALID - rc];
    /* An errno: strerrorname_np returns static text, or NULL if unknown. */
    n = rc > SHMBUS_ERR_INVALID ? strerrorname_np(-rc) : NULL;
    return n != NULL ? n : "UNKNOWN";
}

static PyObject *errors_class_of(int rc)
{
    if (rc == SHMBUS_ERR_TIMEOUT || rc == -EAGAIN)
        return psb_Timeout;
    for (size_t i = 0; i < ERRORS_CLASSES_N; i++)
        if (errors_classes[i].code == rc)
            return errors_classes[i].cls;
    return psb_Error;
}

/* Raise @p cls for @p rc, with .published when @p published >= 0. */
static PyObject *errors_raise_as(PyObject *cls, int rc, Py_ssize_t published)
{
    const char *name = errors_name(rc);
    PyObject *exc = PyObject_CallFunction(cls, "s", shmbus_strerror(rc));
    PyObject *code = PyLong_FromLong(rc);
    PyObject *pname = PyUnicode_FromString(name);
    PyObject *pub = published >= 0 ? PyLong_FromSsize_t(published) : NULL;

    if (exc != NULL && code != NULL && pname != NULL && (published < 0 || pub != NULL) &&
        PyObject_SetAttrString(exc, "code", code) == 0 &&
        PyObject_SetAttrString(exc, "name", pname) == 0 &&
        (pub == NULL || PyObject_SetAttrString(exc, "published", pub) == 0))
        PyErr_SetObject(cls, exc);
    Py_XDECREF(exc);
    Py_XDECREF(code);
    Py_XDECREF(pname);
    Py_XDECREF(pub);
    return NULL;
}

PyObject *psb_raise(int rc)
{
    return errors_raise_as(errors_class_of(rc), rc, -1);
}

PyObject *psb_raise_publish(int rc, Py_ssize_t published)
{
    if (rc == SHMBUS_ERR_TIMEOUT || rc == -EAGAIN)
        return errors_raise_as(psb_Full, rc, published);
    return errors_raise_as(errors_class_of(rc), rc, published);
}

static int errors_add(PyObject *m, const char *name, PyObject *base, const char *doc,
                      PyObject **out)
{
    char qual[64];

    snprintf(qual, sizeof(qual), "shmbus.%s", name);
    *out = PyErr_NewExceptionWithDoc(qual, doc, base, NULL);
    if (*out == NULL)
        return -1;
    /* PyModule_AddObjectRef leaves our reference in *out, for raising. */
    return PyModule_AddObjectRef(m, name, *out);
}

int psb_errors_init(PyObject *m)
{
    PyObject *bases;
    int rc;

    if (errors_add(m, "Error", PyExc_Exception,
                   "A libshmbus error: .code (negative) and .name (its C name).", &psb_Error) < 0)
        return -1;
    bases = PyTuple_Pack(2, psb_Error, PyExc_TimeoutError);
    if (bases == NULL)
        return -1;
    rc = errors_add(m, "Timeout", bases, "A wait ended with nothing to report.", &psb_Timeout);
    Py_DECREF(bases);
    if (rc < 0 ||
        errors_add(m, "Full", psb_Timeout,
                   "A reliable topic stayed full for the publish's timeout.", &psb_Full) < 0)
        return -1;
    for (size_t i = 0; i < ERRORS_CLASSES_N; i++)
        if (errors_add(m, errors_classes[i].name, psb_Error, errors_classes[i].doc,
                       &errors_classes[i].cls) < 0)
            return -1;
    return 0;
}
