/* Compact JSON of plain data in C, byte for byte what json.dumps(obj, separators=(",", ":"))
 * gives (ensure_ascii, allow_nan): the twin of jsonout.py's pure-Python path.
 *
 * Why: the stdlib's C encoder spends half its time on an ops payload's row dicts making
 * an items list, a tuple per item and a fresh escaped string per key; here keys and
 * values are escaped straight into one ASCII buffer.
 *
 * It takes only what it encodes exactly as json does: str (and subclasses), int, float,
 * bool, None, lists and tuples, and exact dicts whose keys are str. Anything else (a
 * dict subclass, whose items() json would call; a non-str key; an unknown type; nesting
 * deeper than MAX_DEPTH, which also stops a cycle) makes encode() return None, and the
 * caller encodes that object with json: so both paths always agree, and json decides,
 * or raises for, every odd case.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#define MAX_DEPTH 64

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

static int grow(Buf *b, Py_ssize_t more) {
    if (b->len + more <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more) {
        if (cap > PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return -1;
        }
        cap *= 2;
    }
    char *data = PyMem_Realloc(b->data, cap);
    if (!data) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static int put(Buf *b, const char *s, Py_ssize_t n) {
    if (grow(b, n) < 0) return -1;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

static const char HEX[] = "0123456789abcdef";

/* One code unit as json's ascii_escape_unichar writes it. */
static Py_ssize_t escape_unit(char *out, Py_UCS4 c) {
    Py_ssize_t n = 0;
    out[n++] = '\\';
    switch (c) {
    case '\\': out[n++] = '\\'; break;
    case '"': out[n++] = '"'; break;
    case '\b': out[n++] = 'b'; break;
    case '\f': out[n++] = 'f'; break;
    case '\n': out[n++] = 'n'; break;
    case '\r': out[n++] = 'r'; break;
    case '\t': out[n++] = 't'; break;
    default:
        if (c >= 0x10000) { /* a UTF-16 surrogate pair, as json writes it */
            Py_UCS4 hi = 0xd800 | ((c - 0x10000) >> 10);
            out[n++] = 'u';
            out[n++] = HEX[(hi >> 12) & 0xf];
            out[n++] = HEX[(hi >> 8) & 0xf];
            out[n++] = HEX[(hi >> 4) & 0xf];
            out[n++] = HEX[hi & 0xf];
            out[n++] = '\\';
            c = 0xdc00 | ((c - 0x10000) & 0x3ff);
        }
        out[n++] = 'u';
        out[n++] = HEX[(c >> 12) & 0xf];
        out[n++] = HEX[(c >> 8) & 0xf];
        out[n++] = HEX[(c >> 4) & 0xf];
        out[n++] = HEX[c & 0xf];
    }
    return n;
}

/* json's S_CHAR: printable ASCII that needs no escape. */
#define PLAIN(c) ((c) >= ' ' && (c) <= '~' && (c) != '\\' && (c) != '"')

static int put_str(Buf *b, PyObject *s) {
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(s) < 0) return -1;
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (n > (PY_SSIZE_T_MAX - 2) / 12) {
        PyErr_NoMemory();
        return -1;
    }
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    /* At most 12 bytes per character (a surrogate pair), plus the quotes. */
    if (grow(b, 12 * n + 2) < 0) return -1;
    char *out = b->data + b->len;
    Py_ssize_t k = 0;
    out[k++] = '"';
    if (PyUnicode_IS_ASCII(s)) {
        /* Runs of plain characters copied whole; most names hold no character to escape. */
        const char *p = data;
        Py_ssize_t i = 0;
        while (i < n) {
            Py_ssize_t j = i;
            while (j < n && PLAIN((unsigned char)p[j])) j++;
            memcpy(out + k, p + i, j - i);
            k += j - i;
            if (j < n) k += escape_unit(out + k, (unsigned char)p[j++]);
            i = j;
        }
    } else if (kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *p = data;
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_UCS1 c = p[i];
            if (PLAIN(c))
                out[k++] = (char)c;
            else
                k += escape_unit(out + k, c);
        }
    } else {
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            if (PLAIN(c))
                out[k++] = (char)c;
            else
                k += escape_unit(out + k, c);
        }
    }
    out[k++] = '"';
    b->len += k;
    return 0;
}

/* An ASCII str made by a repr (int, float) appended as it is. */
static int put_repr(Buf *b, PyObject *repr) {
    if (!repr) return -1;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(repr, &n);
    int rc = s ? put(b, s, n) : -1;
    Py_DECREF(repr);
    return rc;
}

/* Digits written backwards into a small buffer: what int.__repr__ gives. */
static int put_ll(Buf *b, long long v) {
    char tmp[24];
    char *end = tmp + sizeof tmp, *q = end;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--q = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--q = '-';
    return put(b, q, end - q);
}

static int put_int(Buf *b, PyObject *o) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (overflow) return put_repr(b, PyLong_Type.tp_repr(o));
    return put_ll(b, v);
}

static int put_float(Buf *b, PyObject *o) {
    double v = PyFloat_AS_DOUBLE(o);
    if (isnan(v)) return put(b, "NaN", 3);
    if (isinf(v)) return v > 0 ? put(b, "Infinity", 8) : put(b, "-Infinity", 9);
    return put_repr(b, PyFloat_Type.tp_repr(o));
}

/* 0: written; 1: not ours (the caller falls back to json); -1: a Python error. */
static int put_obj(Buf *b, PyObject *o, int depth) {
    if (o == Py_None) return put(b, "null", 4);
    if (o == Py_True) return put(b, "true", 4);
    if (o == Py_False) return put(b, "false", 5);
    if (PyUnicode_Check(o)) return put_str(b, o);
    if (PyLong_Check(o)) return put_int(b, o);
    if (PyFloat_Check(o)) return put_float(b, o);
    if (depth >= MAX_DEPTH) return 1;
    if (PyList_Check(o) || PyTuple_Check(o)) {
        PyObject *seq = PySequence_Fast(o, "");
        if (!seq) return -1;
        int rc = put(b, "[", 1);
        /* The size is read again each time, as json does (no Python code runs here,
         * but a list is never read past its end). */
        for (Py_ssize_t i = 0; rc == 0 && i < PySequence_Fast_GET_SIZE(seq); i++) {
            if (i) rc = put(b, ",", 1);
            if (rc == 0) rc = put_obj(b, PySequence_Fast_GET_ITEM(seq, i), depth + 1);
        }
        if (rc == 0) rc = put(b, "]", 1);
        Py_DECREF(seq);
        return rc;
    }
    if (PyDict_CheckExact(o)) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        int first = 1;
        if (put(b, "{", 1) < 0) return -1;
        while (PyDict_Next(o, &pos, &key, &value)) {
            if (!PyUnicode_Check(key)) return 1; /* json converts such keys itself */
            if (!first && put(b, ",", 1) < 0) return -1;
            first = 0;
            /* The dict may change under a str subclass's code: hold what we read. */
            Py_INCREF(key);
            Py_INCREF(value);
            int rc = put_str(b, key);
            if (rc == 0) rc = put(b, ":", 1);
            if (rc == 0) rc = put_obj(b, value, depth + 1);
            Py_DECREF(key);
            Py_DECREF(value);
            if (rc) return rc;
        }
        return put(b, "}", 1);
    }
    return 1;
}

/* What a put_* run hands back: the ASCII text (rc 0), None (rc 1: the Python path makes
 * it), or NULL with the Python error set (rc -1); the buffer is freed. */
static PyObject *finish(Buf *b, int rc) {
    PyObject *out = NULL;
    if (rc == 0) {
        out = PyUnicode_New(b->len, 127);
        if (out) memcpy(PyUnicode_1BYTE_DATA(out), b->data, b->len);
    } else if (rc == 1) {
        Py_INCREF(Py_None);
        out = Py_None;
    }
    PyMem_Free(b->data);
    return out;
}

static PyObject *encode(PyObject *self, PyObject *obj) {
    Buf b = {NULL, 0, 0};
    int rc = put_obj(&b, obj, 0);
    return finish(&b, rc);
}

/* ---- Op rows (oprows.iter_op_json): a row's JSON from its op and shared fragments ----
 *
 * An ops payload's row is mostly what its attribution and placement decide (a few dozen
 * kinds over thousands of ops); oprows.py encodes that part once per kind, as the nine
 * pieces of text between the eight values an op decides (name, type, layer, count,
 * time_ps, self_ps, total_ps and self_ps again, the one device's figure). Here the pieces
 * and the values are written straight into the text: no row dict per op. Rows oprows.py
 * has no pieces for (device-plane ops, copies with stats) come from its own row
 * function, encoded like any dict. */

static PyObject *S_REC, *S_ATT, *S_PL, *S_LAYER, *S_SELF, *S_TOTAL, *S_STATS;

/* Sum of an int64 array's items lo..hi (floor-divided by div): 0, or 1 when values is not
 * an int64 buffer (the caller takes the Python path), or -1 on an error. */
static int slot_sum(PyObject *values, Py_ssize_t lo, Py_ssize_t hi, long long div,
                    long long *out) {
    Py_buffer view;
    if (PyObject_GetBuffer(values, &view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Clear();
        return 1;
    }
    int rc = 1;
    const char *f = view.format ? view.format : "B";
    if (view.itemsize == 8 && (f[0] == 'q' || f[0] == 'l') && f[1] == 0) {
        Py_ssize_t n = view.len / 8;
        const long long *v = view.buf;
        long long total = 0;
        rc = 0;
        for (Py_ssize_t i = lo < 0 ? 0 : lo; i < hi && i < n; i++) {
            if (__builtin_add_overflow(total, v[i], &total)) {
                rc = 1; /* Python's ints do not overflow: let it add these */
                break;
            }
        }
        if (rc == 0 && div > 1) {
            long long q = total / div;
            if ((total % div != 0) && ((total < 0) != (div < 0))) q -= 1; /* floor, as // */
            total = q;
        }
        *out = total;
    }
    PyBuffer_Release(&view);
    return rc;
}

static int put_piece(Buf *b, PyObject *pieces, Py_ssize_t i) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(pieces, i), &n);
    return s ? put(b, s, n) : -1;
}

/* One row of the batch: 0 written, 1 not ours (the batch goes the Python way), -1 error. */
static int put_op_row(Buf *b, PyObject *item, Py_ssize_t lo, Py_ssize_t hi, long long div,
                      PyObject *cache, PyObject *pieces_of, PyObject *slow_row,
                      PyObject *copy_types) {
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 5) return 1;
    PyObject *neg_time = PyTuple_GET_ITEM(item, 0), *name = PyTuple_GET_ITEM(item, 1);
    PyObject *type = PyTuple_GET_ITEM(item, 2), *count = PyTuple_GET_ITEM(item, 3);
    PyObject *op = PyTuple_GET_ITEM(item, 4);
    if (!PyUnicode_Check(name) || !PyUnicode_Check(type)) return 1;
    int overflow = 0;
    long long neg = PyLong_Check(neg_time) ? PyLong_AsLongLongAndOverflow(neg_time, &overflow)
                                           : 0;
    if (!PyLong_Check(neg_time) || overflow || neg == LLONG_MIN) return 1;
    if (neg == -1 && PyErr_Occurred()) return -1;
    int rc = -1;
    PyObject *rec = NULL, *att = NULL, *pl = NULL, *key = NULL, *pieces = NULL;
    PyObject *layer = NULL, *stats = NULL, *row = NULL;
    if (!(rec = PyObject_GetAttr(op, S_REC)) || !(att = PyObject_GetAttr(op, S_ATT)) ||
        !(pl = PyObject_GetAttr(op, S_PL)))
        goto done;
    int copy = PySet_Contains(copy_types, type);
    if (copy < 0) goto done;
    key = Py_BuildValue("(NNi)", PyLong_FromVoidPtr(att), PyLong_FromVoidPtr(pl), copy);
    if (!key) goto done;
    pieces = PyDict_GetItemWithError(cache, key);
    if (pieces) {
        Py_INCREF(pieces);
    } else {
        if (PyErr_Occurred()) goto done;
        pieces = PyObject_CallFunction(pieces_of, "OOO", att, pl, copy ? Py_True : Py_False);
        if (!pieces || PyDict_SetItem(cache, key, pieces) < 0) goto done;
    }
    int slow = pieces == Py_None;
    if (!slow && copy) {
        if (!(stats = PyObject_GetAttr(rec, S_STATS))) goto done;
        int has = PyObject_IsTrue(stats);
        if (has < 0) goto done;
        slow = has; /* the row names the copy's two ends, from its stats */
    }
    long long self_ps = 0, total_ps = 0;
    if (!slow) {
        if (!PyTuple_Check(pieces) || PyTuple_GET_SIZE(pieces) != 9) {
            rc = 1;
            goto done;
        }
        PyObject *self_v = PyObject_GetAttr(rec, S_SELF);
        if (!self_v) goto done;
        int r1 = slot_sum(self_v, lo, hi, div, &self_ps);
        Py_DECREF(self_v);
        PyObject *total_v = PyObject_GetAttr(rec, S_TOTAL);
        if (!total_v) goto done;
        int r2 = slot_sum(total_v, lo, hi, div, &total_ps);
        Py_DECREF(total_v);
        slow = r1 || r2;
    }
    if (slow) {
        /* The Python row function's dict, encoded as any other. */
        PyObject *time = PyLong_FromLongLong(-neg);
        if (!time) goto done;
        row = PyObject_CallFunctionObjArgs(slow_row, op, count, time, NULL);
        Py_DECREF(time);
        if (!row) goto done;
        rc = put_obj(b, row, 1);
        goto done;
    }
    if (!(layer = PyObject_GetAttr(att, S_LAYER))) goto done;
    /* F0 name F1 type F2 layer F3 count F4 time F5 self F6 total F7 self F8 */
    if (put_piece(b, pieces, 0) || put_str(b, name) || put_piece(b, pieces, 1) ||
        put_str(b, type) || put_piece(b, pieces, 2))
        goto done;
    /* A layer is a tuple of names, written as the row's list; none (or empty) is null. */
    int has_layer = PyObject_IsTrue(layer);
    if (has_layer < 0) goto done;
    if (has_layer) {
        int r = put_obj(b, layer, 1);
        if (r) {
            rc = r;
            goto done;
        }
    } else if (put(b, "null", 4)) {
        goto done;
    }
    if (put_piece(b, pieces, 3)) goto done;
    {
        int r = put_obj(b, count, 1);
        if (r) {
            rc = r;
            goto done;
        }
    }
    if (put_piece(b, pieces, 4) || put_ll(b, -neg) || put_piece(b, pieces, 5) ||
        put_ll(b, self_ps) || put_piece(b, pieces, 6) || put_ll(b, total_ps) ||
        put_piece(b, pieces, 7) || put_ll(b, self_ps) || put_piece(b, pieces, 8))
        goto done;
    rc = 0;
done:
    Py_XDECREF(rec);
    Py_XDECREF(att);
    Py_XDECREF(pl);
    Py_XDECREF(key);
    Py_XDECREF(pieces);
    Py_XDECREF(layer);
    Py_XDECREF(stats);
    Py_XDECREF(row);
    return rc;
}

static PyObject *op_rows(PyObject *self, PyObject *args) {
    PyObject *batch, *cache, *pieces_of, *slow_row, *copy_types;
    Py_ssize_t lo, hi;
    long long div;
    if (!PyArg_ParseTuple(args, "O!nnLO!OOO!", &PyList_Type, &batch, &lo, &hi, &div,
                          &PyDict_Type, &cache, &pieces_of, &slow_row, &PyFrozenSet_Type,
                          &copy_types))
        return NULL;
    if (div < 1) Py_RETURN_NONE;
    Buf b = {NULL, 0, 0};
    int rc = 0;
    /* The list may not change under us: only its items' attributes are read, but hold
     * each item while a Python callback runs. */
    for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(batch); i++) {
        PyObject *item = PyList_GET_ITEM(batch, i);
        Py_INCREF(item);
        if (i) rc = put(&b, ",", 1);
        if (rc == 0) rc = put_op_row(&b, item, lo, hi, div, cache, pieces_of, slow_row,
                                     copy_types);
        Py_DECREF(item);
    }
    return finish(&b, rc);
}

static PyMethodDef methods[] = {
    {"op_rows", op_rows, METH_VARARGS,
     "op_rows(batch, lo, hi, div, cache, pieces_of, slow_row, copy_types): the compact JSON "
     "of a batch of oprows rows, comma-joined, or None where the Python path must make it."},
    {"encode", encode, METH_O,
     "Compact JSON of obj exactly as json.dumps(obj, separators=(',', ':')) writes it, "
     "or None when obj holds something only json encodes (or refuses)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jsonrows", "tb-metal's native compact JSON encoder.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__jsonrows(void) {
    if (!(S_REC = PyUnicode_InternFromString("rec")) ||
        !(S_ATT = PyUnicode_InternFromString("attribution")) ||
        !(S_PL = PyUnicode_InternFromString("placement")) ||
        !(S_LAYER = PyUnicode_InternFromString("layer")) ||
        !(S_SELF = PyUnicode_InternFromString("self_ps")) ||
        !(S_TOTAL = PyUnicode_InternFromString("total_ps")) ||
        !(S_STATS = PyUnicode_InternFromString("stats")))
        return NULL;
    return PyModule_Create(&module);
}
