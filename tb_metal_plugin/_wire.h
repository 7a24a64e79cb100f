/* Protobuf wire format, read in place: the helpers tb-metal's C scanners share.
 *
 * Each returns 0 for anything it does not accept exactly as protobuf (upb) would read it,
 * and the caller then hands the whole message to the Python twin.
 */
#ifndef TB_METAL_WIRE_H
#define TB_METAL_WIRE_H

#include <stdint.h>

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

#endif
