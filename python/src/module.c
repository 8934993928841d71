/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Initialisation of the module shmbus._shmbus: its types, exception
 * classes, connect() and version strings. The package shmbus re-exports
 * it (python/shmbus/__init__.py).
 */
#include <errno.h>

#include "pyshmbus.h"

static PyMethodDef module_methods[] = {
    {"connect", (PyCFunction)(void (*)(void))psb_connect, METH_VARARGS | METH_KEYWORDS,
     "connect(bus=None) -> Bus\n\nConnect to the daemon of a bus (None: $SHMBUS_BUS, else "
     "\"default\"). Blocks for one round trip, with the GIL released."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "shmbus._shmbus",
    .m_doc = "libshmbus bindings: shared-memory publish/subscribe.",
    .m_size = -1,
    .m_methods = module_methods,
};

static int module_add_types(PyObject *m)
{
    PyTypeObject *types[] = {&psb_BusType, &psb_TopicType, &psb_PublisherType, &psb_SubscriberType,
                             &psb_MessageType};

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (PyType_Ready(types[i]) < 0)
            return -1;
        /* The name after "shmbus.". */
        if (PyModule_AddObjectRef(m, types[i]->tp_name + 7, (PyObject *)types[i]) < 0)
            return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__shmbus(void);
PyMODINIT_FUNC PyInit__shmbus(void)
{
    PyObject *m;
    int rc = psb_fork_watch();

    if (rc != 0) {
        errno = rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    if (module_add_types(m) < 0 || psb_errors_init(m) < 0 ||
        PyModule_AddStringConstant(m, "version", shmbus_version()) < 0 ||
        PyModule_AddStringConstant(m, "header_version", SHMBUS_VERSION_STRING) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
