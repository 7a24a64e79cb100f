/* The host-line hot loop of tb-metal in C: the twin of hostline.twin_line.
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
 *
 * The module's two other functions have files of their own: op_metadata (_hostmeta.c,
 * the host plane's event metadata) and total (_slotsum.c, per-slot sums).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "_hostline.h"
#include "_wire.h"

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

static PyMethodDef module_methods[] = {
    {"op_metadata", hl_op_metadata, METH_VARARGS,
     "op_metadata(xplane_bytes, prefixes, needle): (ops, others, runtime, needle_seen) of the "
     "event metadata in id order, or None."},
    {"total", (PyCFunction)(void (*)(void))hl_total, METH_FASTCALL,
     "total(values, lo=0, hi=len): sum(values[lo:hi]), summed in C for integer arrays."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_hostline", "tb-metal's native host-line aggregation.", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__hostline(void) {
    if (PyType_Ready(&AggType) < 0) return NULL;
    if (hl_total_ready() < 0) return NULL;
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
