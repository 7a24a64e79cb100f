/* The host-line hot loop of tb-metal in C: the twin of events._Collector.host_line.
 *
 * One call reads one XLine (an XLineLite as far as protobuf goes) from the trace file,
 * a window at a time (a line of megabytes is never held whole), and adds its op events
 * to the per-op, per-step-slot arrays of the OpRecords (count, self and total time, with
 * the nesting stack), applying the same value checks as validate.Checks. It also does
 * the per-event work the twin does around that loop: the first step's op sequence, each
 * op's first start (written into the first_start dict as the twin writes it) and the
 * kinds of line each op ran on (a bit mask per op, read once at the end). Event stats
 * are skipped without being parsed; events whose metadata id is not an op cost one
 * varint decode each, so lines without op events (Eigen thread pools) pass quickly.
 *
 * Anything this scanner does not accept exactly as protobuf would (a wire type it does
 * not expect, a group, a varint or length out of bounds, a name that is not UTF-8)
 * or a read that comes back short, returns None before any figure is touched, and the
 * caller runs the Python twin on that line: so both paths always agree, and the twin
 * decides every odd case (and raises the reader's error for a file that shrank).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#ifndef __SIZEOF_INT128__
#error "needs a compiler with 128-bit integers (absolute times exceed 64 bits)"
#endif

typedef __int128 i128;

/* The bounds of validate.py (kept equal by tests/test_native.py). */
#define MAX_SPAN_PS ((int64_t)1 << 55)
#define MAX_TOTAL_PS ((int64_t)1 << 62)
#define MAX_EVENTS ((int64_t)2147483647)
/* Bytes of a line read at a time (more when one event is bigger). */
#define WINDOW ((Py_ssize_t)1 << 16)

typedef struct {
    int64_t off, dur;
    int32_t op;
} OpEvent;

typedef struct {
    int64_t end;
    int32_t op, slot;
} Open;

typedef struct {
    PyObject_HEAD
    /* metadata id -> op index: a direct table when ids are dense, else sorted + bsearch */
    int32_t *table;
    int64_t table_len;
    int64_t *ids;
    int32_t *ids_op;
    Py_ssize_t nids;
    /* per op: the OpRecord's arrays, written in place */
    Py_ssize_t nops;
    Py_buffer *bufs; /* 3 * nops: count, self, total */
    int nbufs;
    int32_t **count;
    int64_t **self_ps, **total_ps;
    uint32_t *stamp;
    uint32_t line_no;
    /* per op: its OpRecord and key (new references), the kinds of line its events were
       on (bit i: kind index i from kind_of), whether it may still want its stats */
    PyObject **recs, **keys;
    uint8_t *kinds, *wants;
    PyObject *first_start; /* dict: op key -> first start (ps) in the first step */
    PyObject *kind_of;     /* line name -> kind index 0..7 */
    /* the read window, reused across lines */
    uint8_t *win;
    Py_ssize_t win_cap, window;
    uint8_t *name;
    Py_ssize_t name_cap;
    /* steps: absolute picoseconds */
    Py_ssize_t nsteps;
    i128 *starts, *ends;
    /* the Checks budget, carried across lines */
    long long total_acc, events_acc;
    /* scratch, reused across lines */
    OpEvent *evs;
    Py_ssize_t ev_cap;
    Open *stack;
    Py_ssize_t stack_cap;
} Agg;

/* OpRecord attribute names, made once (a C string would make a str per lookup). */
static PyObject *S_key, *S_wants_stats, *S_count, *S_self_ps, *S_total_ps;

/* ---- wire format ---------------------------------------------------------------- */

/* Decode a varint of at most 10 bytes (bits past 64 dropped, as upb does); 0 on failure. */
static inline int rd_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
    const uint8_t *q = *p;
    if (q < end && *q < 0x80) { /* one byte: keys, small ids and lengths */
        *out = *q;
        *p = q + 1;
        return 1;
    }
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (q >= end) return 0;
        uint8_t b = *q++;
        v |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *p = q;
            *out = v;
            return 1;
        }
    }
    return 0;
}

/* A field key: at most 5 bytes, fits 32 bits, field number >= 1. */
static inline int rd_key(const uint8_t **p, const uint8_t *end, uint32_t *num, int *wt) {
    const uint8_t *start = *p;
    uint64_t k;
    if (!rd_varint(p, end, &k) || *p - start > 5 || k > 0xFFFFFFFFu) return 0;
    *num = (uint32_t)(k >> 3);
    *wt = (int)(k & 7);
    return *num != 0;
}

/* Skip an unknown field's value; groups and reserved wire types are not accepted. */
static inline int skip_value(const uint8_t **p, const uint8_t *end, int wt) {
    uint64_t v;
    switch (wt) {
    case 0:
        return rd_varint(p, end, &v);
    case 1:
        if (end - *p < 8) return 0;
        *p += 8;
        return 1;
    case 5:
        if (end - *p < 4) return 0;
        *p += 4;
        return 1;
    case 2:
        if (!rd_varint(p, end, &v) || v > (uint64_t)(end - *p) || v > 0x7FFFFFFF) return 0;
        *p += v;
        return 1;
    default:
        return 0;
    }
}

static inline int rd_len(const uint8_t **p, const uint8_t *end, const uint8_t **s,
                         const uint8_t **e) {
    uint64_t n;
    if (!rd_varint(p, end, &n) || n > (uint64_t)(end - *p) || n > 0x7FFFFFFF) return 0;
    *s = *p;
    *e = *p + n;
    *p = *e;
    return 1;
}

static inline int32_t op_of(const Agg *a, int64_t mid) {
    if (a->table) return (mid >= 0 && mid < a->table_len) ? a->table[mid] : -1;
    Py_ssize_t lo = 0, hi = a->nids;
    while (lo < hi) {
        Py_ssize_t m = (lo + hi) / 2;
        if (a->ids[m] < mid)
            lo = m + 1;
        else
            hi = m;
    }
    return (lo < a->nids && a->ids[lo] == mid) ? a->ids_op[lo] : -1;
}

static int grow_events(Agg *a) {
    Py_ssize_t cap = a->ev_cap ? 2 * a->ev_cap : 1024;
    OpEvent *e = realloc(a->evs, cap * sizeof(OpEvent));
    if (!e) return 0;
    a->evs = e;
    a->ev_cap = cap;
    return 1;
}

/* The nesting stack grows with the nesting depth (a few levels), not with the line. */
static int grow_stack(Agg *a) {
    Py_ssize_t cap = a->stack_cap ? 2 * a->stack_cap : 64;
    Open *s = realloc(a->stack, cap * sizeof(Open));
    if (!s) return 0;
    a->stack = s;
    a->stack_cap = cap;
    return 1;
}

/* Parse one event; keep it when its metadata id is an op. 1 ok, 0 not accepted, -1 memory */
static int parse_event(Agg *a, const uint8_t *p, const uint8_t *end, Py_ssize_t *n) {
    uint64_t mid = 0, off = 0, dur = 0, v;
    while (p < end) {
        uint32_t num;
        int wt;
        if (!rd_key(&p, end, &num, &wt)) return 0;
        if (num <= 3) {
            if (wt != 0 || !rd_varint(&p, end, &v)) return 0;
            if (num == 1)
                mid = v;
            else if (num == 2)
                off = v;
            else
                dur = v;
        } else if (!skip_value(&p, end, wt)) {
            return 0; /* stats (4) and the rest: skipped unparsed */
        }
    }
    int32_t op = op_of(a, (int64_t)mid);
    if (op < 0) return 1;
    if (*n >= a->ev_cap && !grow_events(a)) return -1;
    a->evs[*n].off = (int64_t)off;
    a->evs[*n].dur = (int64_t)dur;
    a->evs[*n].op = op;
    (*n)++;
    return 1;
}

/* Stable merge sort by offset: equal starts keep file order, parents first. */
static void sort_events(OpEvent *v, OpEvent *tmp, Py_ssize_t n) {
    for (Py_ssize_t w = 1; w < n; w *= 2) {
        for (Py_ssize_t lo = 0; lo < n; lo += 2 * w) {
            Py_ssize_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            Py_ssize_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = (v[j].off < v[i].off) ? v[j++] : v[i++];
            while (i < mid) tmp[k++] = v[i++];
            while (j < hi) tmp[k++] = v[j++];
        }
        memcpy(v, tmp, n * sizeof(OpEvent));
    }
}

/* ---- reading a line a window at a time ------------------------------------------- */

/* The line's bytes file[start:stop) seen through a window: [p, end) are the bytes at hand,
   `pos` the file offset of the next byte not yet read. */
typedef struct {
    const uint8_t *p, *end;
    int fd;
    int64_t pos, stop;
} Src;

static inline int64_t src_left(const Src *s) { return (int64_t)(s->end - s->p) + (s->stop - s->pos); }

/* Make at least min(n, bytes left in the line) bytes available at s->p. 0: a read error or
   a short read (the file changed), -1: no memory. Fewer than n bytes at hand then means
   the line ends there: a varint or field cut there is cut in the line itself, so every
   bounds check below decides as it would on the whole line. */
static int ensure_slow(Agg *a, Src *s, int64_t n) {
    int64_t have = s->end - s->p;
    if (n > s->stop - s->pos + have) n = s->stop - s->pos + have;
    Py_ssize_t want = a->window > n ? a->window : (Py_ssize_t)n;
    if (want > a->win_cap) {
        uint8_t *w = malloc(want);
        if (!w) return -1;
        if (have) memcpy(w, s->p, have);
        free(a->win);
        a->win = w;
        a->win_cap = want;
    } else if (have) {
        memmove(a->win, s->p, have);
    }
    /* Fill the window as far as the line goes (at least n bytes, since cap >= n). */
    Py_ssize_t fill = have;
    int64_t room = a->win_cap - have, left = s->stop - s->pos;
    int64_t goal = have + (room < left ? room : left);
    while (fill < goal) {
        ssize_t got = pread(s->fd, a->win + fill, (size_t)(goal - fill), (off_t)s->pos);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return 0;
        fill += got;
        s->pos += got;
    }
    s->p = a->win;
    s->end = a->win + fill;
    return 1;
}

static inline int ensure(Agg *a, Src *s, int64_t n) {
    if (s->end - s->p >= n || s->pos >= s->stop) return 1; /* at hand, or the line's end */
    return ensure_slow(a, s, n);
}

/* Move past n bytes of the line (n <= src_left): those not at hand are never read. */
static inline void src_skip(Src *s, int64_t n) {
    int64_t have = s->end - s->p;
    if (n <= have) {
        s->p += n;
    } else {
        s->pos += n - have;
        s->p = s->end;
    }
}

/* A length-delimited value at s->p (its length varint read): its bounds, all of it at hand.
   1 ok, 0 not accepted or a short read, -1 no memory. */
static int src_value(Agg *a, Src *s, const uint8_t **vs, const uint8_t **ve) {
    uint64_t n;
    if (!rd_varint(&s->p, s->end, &n) || (int64_t)n > src_left(s) || n > 0x7FFFFFFF) return 0;
    int r = ensure(a, s, (int64_t)n);
    if (r <= 0) return r;
    *vs = s->p;
    *ve = s->p + n;
    s->p += n;
    return 1;
}

static PyObject *long_of_i128(i128 v) {
#if PY_VERSION_HEX >= 0x030D0000
    return PyLong_FromNativeBytes(&v, sizeof v, Py_ASNATIVEBYTES_LITTLE_ENDIAN);
#else
    return _PyLong_FromByteArray((const unsigned char *)&v, sizeof v, 1, 1);
#endif
}

/* first_start[key] = t unless it holds an earlier start: the twin's
   `if t < first.get(key, t + 1): first[key] = t`. */
static int note_first(Agg *a, int32_t op, i128 t) {
    PyObject *tv = long_of_i128(t);
    if (!tv) return -1;
    PyObject *cur = PyDict_GetItemWithError(a->first_start, a->keys[op]);
    int rc = 0;
    if (cur) {
        Py_INCREF(cur);
        int lt = PyObject_RichCompareBool(tv, cur, Py_LT);
        Py_DECREF(cur);
        if (lt < 0) rc = -1;
        else if (lt) rc = PyDict_SetItem(a->first_start, a->keys[op], tv);
    } else if (!PyErr_Occurred()) {
        rc = PyDict_SetItem(a->first_start, a->keys[op], tv);
    } else {
        rc = -1;
    }
    Py_DECREF(tv);
    return rc;
}

/* ---- Agg.read ------------------------------------------------------------------- */

/* Agg.read(fd, start, stop) -> None, or (name, timestamp_ns, events, op events kept or None
   when the line's timestamp is refused, first start, last end, dropped for their span,
   for the budget, overlaps, the first step's records in order, stats wanted). */
static PyObject *Agg_read(Agg *a, PyObject *args) {
    int fd;
    long long start, stop;
    if (!PyArg_ParseTuple(args, "iLL", &fd, &start, &stop)) return NULL;
    if (!a->recs) {
        PyErr_SetString(PyExc_ValueError, "Agg is closed");
        return NULL;
    }
    if (start < 0 || stop < start) {
        PyErr_SetString(PyExc_ValueError, "bad line span");
        return NULL;
    }
    Src src = {a->win, a->win, fd, start, stop};
    Src *s = &src;
    Py_ssize_t name_len = 0;
    uint64_t ts = 0, v;
    Py_ssize_t nevents = 0, n = 0;
    int ok = 1;
    /* Parse the whole line first: nothing is touched unless all of it is accepted. */
    while (ok && src_left(s) > 0) {
        uint32_t num;
        int wt;
        /* A key and a length: at most 20 bytes. */
        int r = ensure(a, s, 20);
        if (r < 0) return PyErr_NoMemory();
        if (!r || !rd_key(&s->p, s->end, &num, &wt)) {
            ok = 0;
            break;
        }
        if (num == 4 || num == 2) { /* events, name */
            const uint8_t *vs, *ve;
            r = wt == 2 ? src_value(a, s, &vs, &ve) : 0;
            if (r < 0) return PyErr_NoMemory();
            if (!r) {
                ok = 0;
                break;
            }
            if (num == 4) {
                nevents++;
                r = parse_event(a, vs, ve, &n);
                if (r < 0) return PyErr_NoMemory();
                ok = r;
            } else {
                name_len = ve - vs;
                if (name_len > a->name_cap) {
                    uint8_t *nm = realloc(a->name, name_len);
                    if (!nm) return PyErr_NoMemory();
                    a->name = nm;
                    a->name_cap = name_len;
                }
                if (name_len) memcpy(a->name, vs, name_len);
            }
        } else if (num == 1 || num == 3) { /* id, timestamp_ns */
            if (wt != 0 || !rd_varint(&s->p, s->end, &v))
                ok = 0;
            else if (num == 3)
                ts = v;
        } else if (wt == 2) { /* an unknown field: passed over, not read */
            uint64_t len;
            if (!rd_varint(&s->p, s->end, &len) || (int64_t)len > src_left(s) || len > 0x7FFFFFFF)
                ok = 0;
            else
                src_skip(s, (int64_t)len);
        } else if (!skip_value(&s->p, s->end, wt)) {
            ok = 0;
        }
    }
    PyObject *name_str = NULL;
    if (ok) {
        name_str = PyUnicode_DecodeUTF8((const char *)a->name, name_len, "strict");
        if (!name_str) {
            PyErr_Clear();
            ok = 0;
        }
    }
    if (!ok) Py_RETURN_NONE; /* the Python twin reads this line */

    int64_t ts_ns = (int64_t)ts;
    if (ts_ns < 0) /* Checks.line_timestamp: the line is skipped, nothing counted */
        return Py_BuildValue("(NLnOLLnnnOO)", name_str, (long long)ts_ns, nevents, Py_None, 0LL,
                             0LL, (Py_ssize_t)0, (Py_ssize_t)0, (Py_ssize_t)0, Py_None, Py_False);

    /* Checks.event on each op event, in file order. */
    Py_ssize_t bad_span = 0, bad_budget = 0, overlap = 0, m = 0;
    int ordered = 1;
    int64_t last_off = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t off = a->evs[i].off, dur = a->evs[i].dur;
        if (off < 0 || dur < 0 || off > MAX_SPAN_PS || dur > MAX_SPAN_PS - off) {
            bad_span++;
            continue;
        }
        if (a->total_acc + dur > MAX_TOTAL_PS || a->events_acc >= MAX_EVENTS) {
            bad_budget++;
            continue;
        }
        a->total_acc += dur;
        a->events_acc += 1;
        if (off < last_off) ordered = 0;
        last_off = off;
        a->evs[m++] = a->evs[i];
    }
    /* The first step's op records in start order: attribution reads an op's neighbours
       on its thread there (the twin keeps the same list). */
    PyObject *seq = PyList_New(0);
    if (!seq) {
        Py_DECREF(name_str);
        return NULL;
    }
    if (m == 0)
        return Py_BuildValue("(NLnnLLnnnNO)", name_str, (long long)ts_ns, nevents, m, 0LL, 0LL,
                             bad_span, bad_budget, overlap, seq, Py_False);
    int kind = 0;
    {
        PyObject *k = PyObject_CallOneArg(a->kind_of, name_str);
        long kv = k ? PyLong_AsLong(k) : -1;
        Py_XDECREF(k);
        if (kv < 0 || kv > 7) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "kind_of: not 0..7");
            goto fail;
        }
        kind = (int)kv;
    }
    if (!ordered) {
        /* Scratch for the merge sort only when a line is out of order (rare). */
        OpEvent *tmp = malloc(m * sizeof(OpEvent));
        if (!tmp) {
            PyErr_NoMemory();
            goto fail;
        }
        sort_events(a->evs, tmp, m);
        free(tmp);
    }

    /* The nesting stack, step slots and sums: as in the twin. */
    i128 base = (i128)ts_ns * 1000;
    Py_ssize_t nsteps = a->nsteps, si = 0, depth = 0;
    int64_t last = 0;
    int need_stats = 0;
    a->line_no++;
    for (Py_ssize_t i = 0; i < m; i++) {
        int64_t off = a->evs[i].off, dur = a->evs[i].dur;
        int32_t op = a->evs[i].op;
        i128 t = base + off;
        while (si < nsteps && t >= a->ends[si]) si++;
        int32_t slot = (int32_t)((si < nsteps && t >= a->starts[si]) ? si : nsteps);
        while (depth && a->stack[depth - 1].end <= off) depth--;
        if (depth) {
            Open *par = &a->stack[depth - 1];
            int64_t inside = par->end - off, lost = dur;
            if (dur > inside) {
                overlap++;
                lost = inside > 0 ? inside : 0;
            }
            a->self_ps[par->op][par->slot] -= lost;
        }
        if (depth == a->stack_cap && !grow_stack(a)) {
            PyErr_NoMemory();
            goto fail;
        }
        if (slot == 0) {
            if (PyList_Append(seq, a->recs[op]) < 0 || note_first(a, op, t) < 0) goto fail;
        }
        a->count[op][slot] += 1;
        a->total_ps[op][slot] += dur;
        a->self_ps[op][slot] += dur;
        int64_t e = off + dur;
        a->stack[depth].end = e;
        a->stack[depth].op = op;
        a->stack[depth].slot = slot;
        depth++;
        if (e > last) last = e;
        if (a->stamp[op] != a->line_no) { /* the op's first event on this line */
            a->stamp[op] = a->line_no;
            a->kinds[op] |= (uint8_t)(1u << kind);
            if (a->wants[op]) {
                /* Copy ops want their stats until the caller has read them once. */
                PyObject *wv = PyObject_GetAttr(a->recs[op], S_wants_stats);
                int w = wv ? PyObject_IsTrue(wv) : -1;
                Py_XDECREF(wv);
                if (w < 0) goto fail;
                a->wants[op] = (uint8_t)w;
                need_stats |= w;
            }
        }
    }
    return Py_BuildValue("(NLnnLLnnnNO)", name_str, (long long)ts_ns, nevents, m,
                         (long long)a->evs[0].off, (long long)last, bad_span, bad_budget,
                         overlap, seq, need_stats ? Py_True : Py_False);
fail:
    Py_DECREF(seq);
    Py_DECREF(name_str);
    return NULL;
}

static PyObject *Agg_kinds(Agg *a, PyObject *unused) {
    return PyBytes_FromStringAndSize((const char *)a->kinds, a->kinds ? a->nops : 0);
}

/* ---- construction --------------------------------------------------------------- */

static void Agg_release(Agg *a) {
    for (int i = 0; i < a->nbufs; i++) PyBuffer_Release(&a->bufs[i]);
    a->nbufs = 0;
    for (Py_ssize_t i = 0; a->recs && i < a->nops; i++) {
        Py_XDECREF(a->recs[i]);
        Py_XDECREF(a->keys[i]);
    }
    free(a->recs);
    free(a->keys);
    free(a->kinds);
    free(a->wants);
    free(a->win);
    free(a->name);
    Py_CLEAR(a->first_start);
    Py_CLEAR(a->kind_of);
    a->recs = a->keys = NULL;
    a->kinds = a->wants = NULL;
    a->win = a->name = NULL;
    a->win_cap = a->name_cap = 0;
    free(a->bufs);
    free(a->count);
    free(a->self_ps);
    free(a->total_ps);
    free(a->stamp);
    free(a->table);
    free(a->ids);
    free(a->ids_op);
    free(a->starts);
    free(a->ends);
    free(a->evs);
    free(a->stack);
    a->bufs = NULL;
    a->count = NULL;
    a->self_ps = a->total_ps = NULL;
    a->stamp = NULL;
    a->table = NULL;
    a->ids = NULL;
    a->ids_op = NULL;
    a->starts = a->ends = NULL;
    a->evs = NULL;
    a->stack = NULL;
    a->ev_cap = a->stack_cap = 0;
    a->nops = a->nids = a->nsteps = 0;
}

static void Agg_dealloc(Agg *a) {
    Agg_release(a);
    Py_TYPE(a)->tp_free((PyObject *)a);
}

static int cmp_pair(const void *x, const void *y) {
    int64_t a = ((const int64_t *)x)[0], b = ((const int64_t *)y)[0];
    return (a > b) - (a < b);
}

/* An int that may exceed 64 bits, from (high, low 62 bits). */
static int to_i128(PyObject *pair, i128 *out) {
    long long hi, lo;
    if (!PyArg_ParseTuple(pair, "LL", &hi, &lo)) return 0;
    *out = (i128)hi * ((i128)1 << 62) + lo;
    return 1;
}

static int take_array(Agg *a, PyObject *arr, Py_ssize_t itemsize, Py_ssize_t slots, void **out) {
    Py_buffer *b = &a->bufs[a->nbufs];
    if (PyObject_GetBuffer(arr, b, PyBUF_WRITABLE | PyBUF_FORMAT) < 0) return 0;
    a->nbufs++;
    if (b->itemsize != itemsize || b->len < slots * itemsize) {
        PyErr_SetString(PyExc_ValueError, "per-slot array of the wrong type or length");
        return 0;
    }
    *out = b->buf;
    return 1;
}

/* An OpRecord's per-slot array `attr`, held for writing. */
static int take_attr(Agg *a, PyObject *rec, PyObject *attr, Py_ssize_t itemsize,
                     Py_ssize_t slots, void **out) {
    PyObject *arr = PyObject_GetAttr(rec, attr);
    if (!arr) return 0;
    int ok = take_array(a, arr, itemsize, slots, out);
    Py_DECREF(arr); /* the record holds it, and our buffer export keeps it from resizing */
    return ok;
}

/* Agg(recs, ids, ops_of_ids, steps, slots, first_start, kind_of): recs are the OpRecords
   (their count, self_ps and total_ps arrays are written in place), ops_of_ids[i] the index
   in recs of metadata id ids[i], steps ((hi, lo), (hi, lo)) bounds in ps, first_start the
   dict of first starts to keep, kind_of(line name) the line's kind index (0..7). */
static int Agg_init(Agg *a, PyObject *args, PyObject *kw) {
    PyObject *recs, *ids, *ops_of, *steps, *first_start, *kind_of;
    Py_ssize_t slots;
    if (!PyArg_ParseTuple(args, "OOOOnO!O", &recs, &ids, &ops_of, &steps, &slots, &PyDict_Type,
                          &first_start, &kind_of))
        return -1;
    Agg_release(a);
    PyObject *seqs[4] = {recs, ids, ops_of, steps};
    for (int i = 0; i < 4; i++)
        if (!PyList_Check(seqs[i])) {
            PyErr_SetString(PyExc_TypeError, "Agg takes lists");
            return -1;
        }
    if (!PyCallable_Check(kind_of)) {
        PyErr_SetString(PyExc_TypeError, "kind_of must be callable");
        return -1;
    }
    Py_ssize_t nids = PyList_GET_SIZE(ids), nops = PyList_GET_SIZE(recs);
    Py_ssize_t nsteps = PyList_GET_SIZE(steps);
    if (PyList_GET_SIZE(ops_of) != nids || nsteps + 1 != slots || nops > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "Agg: inconsistent lengths");
        return -1;
    }
    a->bufs = calloc(3 * nops + 1, sizeof(Py_buffer));
    a->count = calloc(nops + 1, sizeof(int32_t *));
    a->self_ps = calloc(nops + 1, sizeof(int64_t *));
    a->total_ps = calloc(nops + 1, sizeof(int64_t *));
    a->stamp = calloc(nops + 1, sizeof(uint32_t));
    a->recs = calloc(nops + 1, sizeof(PyObject *));
    a->keys = calloc(nops + 1, sizeof(PyObject *));
    a->kinds = calloc(nops + 1, 1);
    a->wants = calloc(nops + 1, 1);
    a->starts = calloc(nsteps + 1, sizeof(i128));
    a->ends = calloc(nsteps + 1, sizeof(i128));
    int64_t *pairs = malloc((nids + 1) * 2 * sizeof(int64_t));
    if (!a->bufs || !a->count || !a->self_ps || !a->total_ps || !a->stamp || !a->recs ||
        !a->keys || !a->kinds || !a->wants || !a->starts || !a->ends || !pairs) {
        free(pairs);
        Agg_release(a);
        PyErr_NoMemory();
        return -1;
    }
    a->nops = nops;
    Py_INCREF(first_start);
    a->first_start = first_start;
    Py_INCREF(kind_of);
    a->kind_of = kind_of;
    for (Py_ssize_t i = 0; i < nops; i++) {
        PyObject *rec = PyList_GET_ITEM(recs, i);
        Py_INCREF(rec);
        a->recs[i] = rec;
        a->keys[i] = PyObject_GetAttr(rec, S_key);
        PyObject *wv = a->keys[i] ? PyObject_GetAttr(rec, S_wants_stats) : NULL;
        int w = wv ? PyObject_IsTrue(wv) : -1;
        Py_XDECREF(wv);
        if (w < 0 || !take_attr(a, rec, S_count, 4, slots, (void **)&a->count[i]) ||
            !take_attr(a, rec, S_self_ps, 8, slots, (void **)&a->self_ps[i]) ||
            !take_attr(a, rec, S_total_ps, 8, slots, (void **)&a->total_ps[i])) {
            free(pairs);
            return -1;
        }
        a->wants[i] = (uint8_t)w;
    }
    for (Py_ssize_t i = 0; i < nsteps; i++) {
        PyObject *st = PyList_GET_ITEM(steps, i);
        if (!PyTuple_Check(st) || PyTuple_GET_SIZE(st) != 2 ||
            !to_i128(PyTuple_GET_ITEM(st, 0), &a->starts[i]) ||
            !to_i128(PyTuple_GET_ITEM(st, 1), &a->ends[i])) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "steps: ((hi, lo), (hi, lo))");
            free(pairs);
            return -1;
        }
    }
    a->nsteps = nsteps;
    int64_t lo_id = 0, hi_id = -1;
    for (Py_ssize_t i = 0; i < nids; i++) {
        long long id = PyLong_AsLongLong(PyList_GET_ITEM(ids, i));
        long op = PyLong_AsLong(PyList_GET_ITEM(ops_of, i));
        if (PyErr_Occurred()) {
            free(pairs);
            return -1;
        }
        if (op < 0 || op >= nops) {
            PyErr_SetString(PyExc_ValueError, "op index out of range");
            free(pairs);
            return -1;
        }
        pairs[2 * i] = id;
        pairs[2 * i + 1] = op;
        if (i == 0 || id < lo_id) lo_id = id;
        if (i == 0 || id > hi_id) hi_id = id;
    }
    a->nids = nids;
    if (nids && lo_id >= 0 && hi_id <= 8 * (int64_t)nids + 65536) {
        a->table_len = hi_id + 1;
        a->table = malloc(a->table_len * sizeof(int32_t));
        if (!a->table) {
            free(pairs);
            PyErr_NoMemory();
            return -1;
        }
        for (int64_t i = 0; i < a->table_len; i++) a->table[i] = -1;
        for (Py_ssize_t i = 0; i < nids; i++) a->table[pairs[2 * i]] = (int32_t)pairs[2 * i + 1];
    } else {
        /* Duplicate ids cannot occur (they come from a dict); sort for bsearch. */
        qsort(pairs, nids, 2 * sizeof(int64_t), cmp_pair);
        a->ids = malloc((nids + 1) * sizeof(int64_t));
        a->ids_op = malloc((nids + 1) * sizeof(int32_t));
        if (!a->ids || !a->ids_op) {
            free(pairs);
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < nids; i++) {
            a->ids[i] = pairs[2 * i];
            a->ids_op[i] = (int32_t)pairs[2 * i + 1];
        }
    }
    free(pairs);
    a->window = WINDOW;
    return grow_events(a) && grow_stack(a) ? 0 : (PyErr_NoMemory(), -1);
}

static PyObject *Agg_close(Agg *a, PyObject *unused) {
    Agg_release(a);
    Py_RETURN_NONE;
}

static PyObject *Agg_get_budget(Agg *a, void *unused) {
    return Py_BuildValue("(LL)", a->total_acc, a->events_acc);
}

static int Agg_set_budget(Agg *a, PyObject *value, void *unused) {
    if (!value) {
        PyErr_SetString(PyExc_TypeError, "cannot delete budget");
        return -1;
    }
    return PyArg_ParseTuple(value, "LL", &a->total_acc, &a->events_acc) ? 0 : -1;
}

static PyMethodDef Agg_methods[] = {
    {"read", (PyCFunction)Agg_read, METH_VARARGS,
     "read(fd, start, stop): add the op events of the XLine at file bytes start..stop; "
     "None when the Python twin must read it."},
    {"kinds", (PyCFunction)Agg_kinds, METH_NOARGS,
     "Per op, a bit mask of the kind indices of the lines its events were on."},
    {"close", (PyCFunction)Agg_close, METH_NOARGS, "Release the OpRecords' arrays."},
    {NULL, NULL, 0, NULL},
};

static PyObject *Agg_get_window(Agg *a, void *unused) { return PyLong_FromSsize_t(a->window); }

static int Agg_set_window(Agg *a, PyObject *value, void *unused) {
    Py_ssize_t w = value ? PyLong_AsSsize_t(value) : -1;
    if (w < 1) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "window: at least 1 byte");
        return -1;
    }
    a->window = w;
    return 0;
}

static PyGetSetDef Agg_getset[] = {
    {"window", (getter)Agg_get_window, (setter)Agg_set_window,
     "bytes of a line read at a time (tests set it small to cut events across reads)", NULL},
    {"budget", (getter)Agg_get_budget, (setter)Agg_set_budget,
     "(total ps, events) accepted so far: Checks.total_ps and Checks.events", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject AggType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tb_metal_plugin._hostline.Agg",
    .tp_basicsize = sizeof(Agg),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Per-plane host-line aggregation into OpRecord arrays.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Agg_init,
    .tp_dealloc = (destructor)Agg_dealloc,
    .tp_methods = Agg_methods,
    .tp_getset = Agg_getset,
};

/* ---- op_metadata(data, prefixes, needle) ---------------------------------------- */

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
static PyObject *op_metadata(PyObject *self, PyObject *args) {
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

/* ---- total(values, lo=0, hi=len) ------------------------------------------------ */

static PyObject *builtin_sum;

/* The slots lo..hi of an integer array summed in C, with no Python int per slot (the
   rows of thousands of ops sum several per-slot arrays each). Anything that is not a
   one-dimensional array of C integers, or a sum past 64 bits, is summed by the builtin
   sum, so the result is always sum(values[lo:hi]). */
static PyObject *total(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
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

static PyMethodDef module_methods[] = {
    {"op_metadata", op_metadata, METH_VARARGS,
     "op_metadata(xplane_bytes, prefixes, needle): (ops, others, runtime, needle_seen) of the "
     "event metadata in id order, or None."},
    {"total", (PyCFunction)(void (*)(void))total, METH_FASTCALL,
     "total(values, lo=0, hi=len): sum(values[lo:hi]), summed in C for integer arrays."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_hostline", "tb-metal's native host-line aggregation.", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__hostline(void) {
    if (PyType_Ready(&AggType) < 0) return NULL;
    PyObject *builtins = PyEval_GetBuiltins(); /* borrowed */
    builtin_sum = builtins ? PyDict_GetItemString(builtins, "sum") : NULL;
    if (!builtin_sum) {
        PyErr_SetString(PyExc_ImportError, "no builtin sum");
        return NULL;
    }
    Py_INCREF(builtin_sum);
    S_key = PyUnicode_InternFromString("key");
    S_wants_stats = PyUnicode_InternFromString("wants_stats");
    S_count = PyUnicode_InternFromString("count");
    S_self_ps = PyUnicode_InternFromString("self_ps");
    S_total_ps = PyUnicode_InternFromString("total_ps");
    if (!S_key || !S_wants_stats || !S_count || !S_self_ps || !S_total_ps) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&AggType);
    if (PyModule_AddObject(m, "Agg", (PyObject *)&AggType) < 0) {
        Py_DECREF(&AggType);
        Py_DECREF(m);
        return NULL;
    }
    PyModule_AddIntConstant(m, "MAX_SPAN_LOG2", 55);
    PyModule_AddIntConstant(m, "MAX_TOTAL_LOG2", 62);
    PyModule_AddIntConstant(m, "MAX_EVENTS", (long)MAX_EVENTS);
    return m;
}
