/* What the C files of tb_metal_plugin._hostline give each other. */
#ifndef TB_METAL_HOSTLINE_H
#define TB_METAL_HOSTLINE_H

#include <Python.h>

/* _hostmeta.c: op_metadata(xplane_bytes, prefixes, needle). */
PyObject *hl_op_metadata(PyObject *self, PyObject *args);
/* _slotsum.c: total(values, lo=0, hi=len), and its setup at module init (0, or -1). */
PyObject *hl_total(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
int hl_total_ready(void);

#endif
