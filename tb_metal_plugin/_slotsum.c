/* Sums of per-slot arrays in C: the op rows of thousands of ops sum several each. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "_hostline.h"

static PyObject *builtin_sum;

/* The slots lo..hi of an integer array summed in C, with no Python int per slot (the
   rows of thousands of ops sum several per-slot arrays each). Anything that is not a
   one-dimensional array of C integers, or a sum past 64 bits, is summed by the builtin
   sum, so the result is always sum(values[lo:hi]). */
PyObject *hl_total(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "total(values, lo=0, hi=len)");
        return NULL;
    }
    PyObject *v = args[0];
    Py_ssize_t lo = 0, hi = PY_SSIZE_T_MAX;
    if (nargs > 1 && (lo = PyLong_AsSsize_t(args[1])) == -1 && PyErr_Occurred()) return NULL;
    if (nargs > 2 && (hi = PyLong_AsSsize_t(args[2])) == -1 && PyErr_Occurred()) return NULL;
    Py_buffer b;
    if (lo >= 0 && hi >= lo && PyObject_CheckBuffer(v) &&
        PyObject_GetBuffer(v, &b, PyBUF_FORMAT | PyBUF_ND) == 0) {
        const char *f = b.format ? b.format : "B";
        char code = (f[0] == '@' || f[0] == '=') && f[1] ? f[1] : f[0];
        Py_ssize_t n = b.ndim == 1 && b.itemsize ? b.len / b.itemsize : -1;
        int known = n >= 0 && f[(f[0] == '@' || f[0] == '=') ? 2 : 1] == 0 &&
                    ((code == 'q' && b.itemsize == 8) || (code == 'l' && b.itemsize == 8) ||
                     (code == 'i' && b.itemsize == 4));
        if (known) {
            if (hi > n) hi = n;
            if (lo > hi) lo = hi;
            int64_t acc = 0;
            int over = 0;
            if (b.itemsize == 8) {
                const int64_t *x = b.buf;
                for (Py_ssize_t i = lo; i < hi; i++) over |= __builtin_add_overflow(acc, x[i], &acc);
            } else {
                const int32_t *x = b.buf;
                for (Py_ssize_t i = lo; i < hi; i++) acc += x[i]; /* 2^31 items at most: fits */
            }
            PyBuffer_Release(&b);
            if (!over) return PyLong_FromLongLong(acc);
        } else {
            PyBuffer_Release(&b);
        }
    } else {
        PyErr_Clear();
    }
    PyObject *part = PySequence_GetSlice(v, lo, hi);
    if (!part) return NULL;
    PyObject *out = PyObject_CallOneArg(builtin_sum, part);
    Py_DECREF(part);
    return out;
}

int hl_total_ready(void) {
    PyObject *builtins = PyEval_GetBuiltins(); /* borrowed */
    builtin_sum = builtins ? PyDict_GetItemString(builtins, "sum") : NULL;
    if (!builtin_sum) {
        PyErr_SetString(PyExc_ImportError, "no builtin sum");
        return -1;
    }
    Py_INCREF(builtin_sum);
    return 0;
}
