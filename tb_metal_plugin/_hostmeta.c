/* A host plane's event metadata sorted out in C: the twin of hostline.twin_op_metadata.
 *
 * One call reads the bytes of an XPlane without its lines (its metadata maps, thousands
 * of small entries) and gives, in metadata id order, each TF op's name and type split as
 * events.split_op_name splits them, the other names, and whether any name marks the TF
 * runtime: no protobuf object and no full-name str per op, where the twin makes both.
 * Anything not taken exactly as protobuf would (an entry protobuf merges or keeps out of
 * the map, a name that is not UTF-8) returns None, and the twin reads the parsed plane.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_hostline.h"
#include "_wire.h"

typedef struct {
    int64_t key;
    Py_ssize_t index;
    const uint8_t *name, *display;
    Py_ssize_t name_len, display_len;
} MetaEntry;

static int cmp_entry(const void *x, const void *y) {
    const MetaEntry *a = x, *b = y;
    if (a->key != b->key) return (a->key > b->key) - (a->key < b->key);
    return (a->index > b->index) - (a->index < b->index);
}

/* One XEventMetadata: its name (2) and display name (4), the last of each as protobuf
   keeps it. 0 when not accepted. */
static int parse_meta_value(const uint8_t *p, const uint8_t *end, MetaEntry *e) {
    while (p < end) {
        uint32_t num;
        int wt;
        if (!rd_key(&p, end, &num, &wt)) return 0;
        if (num == 2 || num == 4) {
            const uint8_t *s, *t;
            if (wt != 2 || !rd_len(&p, end, &s, &t)) return 0;
            if (num == 2) {
                e->name = s;
                e->name_len = t - s;
            } else {
                e->display = s;
                e->display_len = t - s;
            }
        } else if (num == 1 && wt != 0) {
            return 0;
        } else if (!skip_value(&p, end, wt)) {
            return 0;
        }
    }
    return 1;
}

/* One map entry (key 1, value 2). A second value would be merged into the first by
   protobuf, and an entry with any other field (or a known one with another wire type)
   is kept out of the map as an unknown field: none of these is accepted. */
static int parse_meta_entry(const uint8_t *p, const uint8_t *end, MetaEntry *e) {
    int values = 0;
    while (p < end) {
        uint32_t num;
        int wt;
        uint64_t v;
        if (!rd_key(&p, end, &num, &wt)) return 0;
        if (num == 1) {
            if (wt != 0 || !rd_varint(&p, end, &v)) return 0;
            e->key = (int64_t)v;
        } else if (num == 2) {
            const uint8_t *s, *t;
            if (wt != 2 || values++ || !rd_len(&p, end, &s, &t) || !parse_meta_value(s, t, e))
                return 0;
        } else {
            return 0; /* protobuf keeps an entry with an unknown field out of the map */
        }
    }
    return 1;
}

static PyObject *decode_name(const uint8_t *s, Py_ssize_t n, int intern) {
    PyObject *u = PyUnicode_DecodeUTF8((const char *)s, n, "strict");
    if (u && intern) PyUnicode_InternInPlace(&u);
    return u;
}

#define DISP_CACHE 256

typedef struct {
    const uint8_t *bytes;
    Py_ssize_t len;
    PyObject *str; /* a reference held by the cache */
} DispCache;

/* The interned str of a display name's bytes (a new reference), from the cache when the
   same bytes were decoded before. */
static PyObject *cached_display(DispCache *cache, const uint8_t *b, Py_ssize_t n) {
    size_t h = (size_t)n * 31u;
    if (n) h += (size_t)b[0] * 7u + (size_t)b[n - 1] * 131u + (size_t)b[n / 2];
    DispCache *c = &cache[h % DISP_CACHE];
    if (c->str && c->len == n && (n == 0 || memcmp(c->bytes, b, n) == 0)) {
        Py_INCREF(c->str);
        return c->str;
    }
    PyObject *u = decode_name(b, n, 1);
    if (!u) return NULL;
    Py_XDECREF(c->str);
    Py_INCREF(u);
    c->bytes = b;
    c->len = n;
    c->str = u;
    return u;
}

/* True when s[0:n] is valid UTF-8 (as protobuf requires of a string field): ASCII, the
   common case, is checked without a decode. */
static int utf8_ok(const uint8_t *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    for (uint64_t w; i + 8 <= n; i += 8) { /* eight bytes at a time */
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ULL) break;
    }
    while (i < n && s[i] < 0x80) i++;
    if (i == n) return 1;
    PyObject *u = PyUnicode_DecodeUTF8((const char *)s, n, "strict");
    if (!u) {
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(u);
    return 1;
}

static int has_prefix(const uint8_t *s, Py_ssize_t n, PyObject *prefixes) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(prefixes); i++) {
        PyObject *p = PyTuple_GET_ITEM(prefixes, i);
        Py_ssize_t k = PyBytes_GET_SIZE(p);
        const char *b = PyBytes_AS_STRING(p);
        if (k <= n && (k == 0 || s[0] == (uint8_t)b[0]) && memcmp(s, b, k) == 0) return 1;
    }
    return 0;
}

static int find(const uint8_t *s, Py_ssize_t n, const char *needle, Py_ssize_t k) {
    if (k == 0) return 1;
    if (n < k) return 0; /* an absent name is NULL, length 0: no pointer arithmetic on it */
    const uint8_t *p = s, *last = s + n - k;
    while (p <= last && (p = memchr(p, needle[0], last - p + 1)) != NULL) {
        if (memcmp(p, needle, k) == 0) return 1;
        p++;
    }
    return 0;
}

/* (a, b) or (a, b, c): a new tuple that steals the references given; NULL if any is. */
static PyObject *tuple_of(PyObject *a, PyObject *b, PyObject *c) {
    Py_ssize_t n = c ? 3 : 2;
    PyObject *t = a && b ? PyTuple_New(n) : NULL;
    if (!t) {
        Py_XDECREF(a);
        Py_XDECREF(b);
        Py_XDECREF(c);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, a);
    PyTuple_SET_ITEM(t, 1, b);
    if (c) PyTuple_SET_ITEM(t, 2, c);
    return t;
}

static inline int ident_start(uint8_t c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static inline int ident_char(uint8_t c) { return ident_start(c) || (c >= '0' && c <= '9'); }

/* events.split_op_name on the UTF-8 bytes of a name and display name (':' and ' ' never
   occur inside a multi-byte character, so byte and character tests agree): 1 with the
   op name's length and its type's bytes, or 0 when the event is not a TF op. */
static int split_op(const MetaEntry *e, Py_ssize_t *head_len, const uint8_t **type,
                    Py_ssize_t *type_len) {
    const uint8_t *nm = e->name;
    Py_ssize_t nl = e->name_len, dl = e->display_len;
    if (dl) { /* `<name>:<display name>`, whatever the display name is */
        if (nl > dl + 1 && nm[nl - dl - 1] == ':' && memcmp(nm + nl - dl, e->display, dl) == 0) {
            *head_len = nl - dl - 1;
            *type = e->display;
            *type_len = dl;
            return 1;
        }
        return 0;
    }
    Py_ssize_t c = nl - 1; /* rpartition(":") */
    while (c >= 0 && nm[c] != ':') c--;
    if (c <= 0 || nm[c - 1] == ':' || memchr(nm, ' ', c)) return 0;
    const uint8_t *t = nm + c + 1;
    Py_ssize_t tl = nl - c - 1, m = tl;
    if (m && t[m - 1] == '\n') m--; /* the regex's `$` also matches before a final newline */
    if (!m || !ident_start(t[0])) return 0;
    for (Py_ssize_t i = 1; i < m; i++)
        if (!ident_char(t[i])) return 0;
    *head_len = c;
    *type = t;
    *type_len = tl;
    return 1;
}

/* op_metadata(data, prefixes, needle): the bytes of an XPlane without its lines -> (ops,
   others, runtime, needle_seen): (id, op name, op type) of each event metadata that is a
   TF op (events.split_op_name), (id, name) of the others, whether any name starts with
   one of the prefixes, whether any holds the needle; in id order, each id once (the last
   entry of an id, as protobuf keeps it); None for anything not taken exactly as protobuf
   would (the caller's twin then reads the parsed XPlane). Op types are interned. */
PyObject *hl_op_metadata(PyObject *self, PyObject *args) {
    /* Op types repeat (a few dozen for thousands of ops): a small cache by their bytes
       reuses the str. */
    DispCache cache[DISP_CACHE];
    memset(cache, 0, sizeof cache);
    PyObject *data, *prefixes;
    const char *needle;
    Py_ssize_t needle_len;
    if (!PyArg_ParseTuple(args, "OO!y#", &data, &PyTuple_Type, &prefixes, &needle, &needle_len))
        return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(prefixes); i++)
        if (!PyBytes_Check(PyTuple_GET_ITEM(prefixes, i))) {
            PyErr_SetString(PyExc_TypeError, "prefixes: a tuple of bytes");
            return NULL;
        }
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return NULL;
    const uint8_t *p = view.buf, *end = p + view.len;
    MetaEntry *es = NULL;
    Py_ssize_t n = 0, cap = 0;
    PyObject *out = NULL;
    int ok = 1;
    while (p < end) {
        uint32_t num;
        int wt;
        if (!rd_key(&p, end, &num, &wt)) {
            ok = 0;
            break;
        }
        if (num != 4) {
            if (!skip_value(&p, end, wt)) {
                ok = 0;
                break;
            }
            continue;
        }
        const uint8_t *s, *t;
        if (wt != 2 || !rd_len(&p, end, &s, &t)) {
            ok = 0;
            break;
        }
        if (n == cap) {
            Py_ssize_t c = cap ? 2 * cap : 1024;
            MetaEntry *g = realloc(es, c * sizeof(MetaEntry));
            if (!g) {
                PyErr_NoMemory();
                goto done;
            }
            es = g;
            cap = c;
        }
        MetaEntry *e = &es[n];
        memset(e, 0, sizeof *e);
        e->index = n;
        if (!parse_meta_entry(s, t, e)) {
            ok = 0;
            break;
        }
        n++;
    }
    if (!ok) {
        Py_INCREF(Py_None);
        out = Py_None;
        goto done;
    }
    Py_ssize_t kept = 0;
    int64_t lo = 0, hi = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i == 0 || es[i].key < lo) lo = es[i].key;
        if (i == 0 || es[i].key > hi) hi = es[i].key;
    }
    if (n && lo >= 0 && hi <= 8 * (int64_t)n + 65536) {
        /* Dense ids (as the profiler writes them, in any order): placed by id, a later
           entry of an id over an earlier one, then read in id order. */
        int32_t *at = malloc((hi + 1) * sizeof(int32_t));
        MetaEntry *by_id = malloc(n * sizeof(MetaEntry));
        if (!at || !by_id) {
            free(at);
            free(by_id);
            PyErr_NoMemory();
            goto done;
        }
        memset(at, 0xff, (hi + 1) * sizeof(int32_t));
        for (Py_ssize_t i = 0; i < n; i++) at[es[i].key] = (int32_t)i;
        for (int64_t k = 0; k <= hi; k++)
            if (at[k] >= 0) by_id[kept++] = es[at[k]];
        free(at);
        free(es);
        es = by_id;
    } else {
        qsort(es, n, sizeof(MetaEntry), cmp_entry);
        for (Py_ssize_t i = 0; i < n; i++) /* a later entry of the same id wins */
            if (i + 1 == n || es[i + 1].key != es[i].key) es[kept++] = es[i];
    }
    PyObject *ops = PyList_New(0), *others = PyList_New(0);
    int tf = 0, pjrt = 0;
    if (!ops || !others) goto fail;
    for (Py_ssize_t i = 0; i < kept; i++) {
        MetaEntry *e = &es[i];
        /* Names are UTF-8 as protobuf checks them: one that is not goes to the twin. */
        if (!utf8_ok(e->name, e->name_len) || !utf8_ok(e->display, e->display_len)) {
            Py_DECREF(ops);
            Py_DECREF(others);
            Py_INCREF(Py_None);
            out = Py_None;
            goto done;
        }
        tf = tf || has_prefix(e->name, e->name_len, prefixes);
        pjrt = pjrt || find(e->name, e->name_len, needle, needle_len);
        Py_ssize_t head_len, type_len;
        const uint8_t *type;
        PyObject *item;
        if (split_op(e, &head_len, &type, &type_len)) {
            PyObject *t = cached_display(cache, type, type_len);
            PyObject *h = t ? decode_name(e->name, head_len, 0) : NULL;
            if (!h) {
                Py_XDECREF(t);
                goto fail;
            }
            item = tuple_of(PyLong_FromLongLong(e->key), h, t);
            if (!item || PyList_Append(ops, item) < 0) {
                Py_XDECREF(item);
                goto fail;
            }
        } else {
            item = tuple_of(PyLong_FromLongLong(e->key), decode_name(e->name, e->name_len, 0),
                            NULL);
            if (!item || PyList_Append(others, item) < 0) {
                Py_XDECREF(item);
                goto fail;
            }
        }
        Py_DECREF(item);
    }
    out = Py_BuildValue("(NNOO)", ops, others, tf ? Py_True : Py_False, pjrt ? Py_True : Py_False);
    goto done;
fail:
    Py_XDECREF(ops);
    Py_XDECREF(others);
done:
    for (int i = 0; i < DISP_CACHE; i++) Py_XDECREF(cache[i].str);
    free(es);
    PyBuffer_Release(&view);
    return out;
}
