/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for federation's parsers of NATS input
 * (daemon/fed/meta.c): the first byte picks one.
 *   0: the input is a subject: sbf_meta_topic() under the prefixes
 *      "shmbus" and "a.b" must end, and a topic it accepts must be a valid
 *      topic name that sbf_meta_subject() turns back into the same bytes;
 *   1: the input is a decimal: sbf_meta_u64() must agree with a reference
 *      (digits only, at most 20, the value without overflow);
 *   2: the input is headers, "key\nvalue\n" pairs: sbf_meta_decode()
 *      must end, name a header when it refuses, and what it accepts must
 *      encode back (sbf_meta_encode()) to the values it read;
 *   3: the input is a stream of messages, 10 bytes each (origin, epoch,
 *      seq, count, flags), for sbf_meta_order() on one topic's origins:
 *      the table stays within SBF_ORIGINS_MAX, a repeat is never taken,
 *      and a loss is never counted beyond what the count skipped.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fed/meta.h"
#include "fuzz_check.h"
#include "util/name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_subject(const char *s, size_t len)
{
    static const char *const prefixes[] = {"shmbus", "a.b"};

    for (unsigned i = 0; i < 2; i++) {
        char t[SHMBUS_TOPIC_NAME_MAX + 1], back[SBF_SUBJECT_MAX + 1];

        if (sbf_meta_topic(prefixes[i], s, len, t) < 0)
            continue;
        CHECK(sb_name_valid(t, SHMBUS_TOPIC_NAME_MAX));
        CHECK(sbf_meta_subject(prefixes[i], t, back) == 0);
        CHECK(strlen(back) == len && memcmp(back, s, len) == 0);
    }
}

static void fuzz_u64(const char *s, size_t len)
{
    uint64_t v = 0, ref = 0;
    int ok = len > 0 && len <= SBF_U64_DIGITS;

    for (size_t i = 0; i < len && ok; i++) {
        if (s[i] < '0' || s[i] > '9' || ref > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
            ok = 0;
        else
            ref = ref * 10 + (uint64_t)(s[i] - '0');
    }
    CHECK((sbf_meta_u64(s, len, &v) == 0) == ok);
    CHECK(!ok || v == ref);
}

#define FIELDS 16
struct fields {
    const char *p[FIELDS];
    size_t len[FIELDS];
    unsigned n;
};

static const char *get(void *arg, const char *key, size_t *len)
{
    struct fields *f = arg;

    for (unsigned i = 0; i + 1 < f->n; i += 2) {
        if (f->len[i] == strlen(key) && memcmp(f->p[i], key, f->len[i]) == 0) {
            *len = f->len[i + 1];
            return f->p[i + 1];
        }
    }
    return NULL;
}

static void fuzz_headers(const char *s, size_t len)
{
    struct fields f = {.n = 0};
    struct sbf_meta m;
    struct sbf_meta_text x;
    const char *bad = NULL;
    size_t at = 0, vlen;

    while (at <= len && f.n < FIELDS) {
        const char *nl = memchr(s + at, '\n', len - at);
        size_t end = nl != NULL ? (size_t)(nl - s) : len;

        f.p[f.n] = s + at;
        f.len[f.n++] = end - at;
        at = end + 1;
    }
    if (sbf_meta_decode(get, &f, &m, &bad) < 0) {
        CHECK(bad != NULL);
        return;
    }
    CHECK(bad == NULL && sbd_fed_origin_ok(m.origin));
    sbf_meta_encode(&m, "t", &x);
    /* Each value read is the text of the number it gave, but for leading zeros. */
    const char *v = get(&f, SBF_HDR_SEQ, &vlen);
    CHECK(v != NULL);
    while (vlen > 1 && v[0] == '0') {
        v++;
        vlen--;
    }
    CHECK(strlen(x.seq) == vlen && memcmp(x.seq, v, vlen) == 0);
    CHECK(m.has_prev == (get(&f, SBF_HDR_PREV, &vlen) != NULL));
}

static void fuzz_order(const uint8_t *d, size_t len)
{
    static struct sbf_origins t;
    uint64_t clock = 0;

    memset(&t, 0, sizeof(t));
    for (size_t at = 0; at + 10 <= len; at += 10) {
        struct sbf_meta m = {.epoch = d[at + 1] % 3,
                             .seq = (uint64_t)d[at + 2] << 8 | d[at + 3],
                             .count = (uint64_t)d[at + 4] << 8 | d[at + 5],
                             .has_count = d[at + 6] & 1};
        uint64_t lost = 0, last = 0;
        int known = 0, taken;

        /* Up to 40 origins: more than the table holds. */
        snprintf(m.origin, sizeof(m.origin), "o%u", d[at] % 40u);
        if (m.has_count && m.count == 0)
            m.count = 1; /* the decoder refuses 0 */
        for (unsigned i = 0; i < t.n; i++) {
            if (strcmp(t.o[i].name, m.origin) == 0 && t.o[i].epoch == m.epoch) {
                known = 1;
                last = t.o[i].last;
            }
        }
        taken = sbf_meta_order(&t, &m, ++clock, &lost);
        CHECK(t.n <= SBF_ORIGINS_MAX);
        CHECK(!(known && m.seq <= last) || taken == 0);
        CHECK(taken == 1 || lost == 0);
        CHECK(lost < (m.has_count ? m.count : 1));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data + 1;

    if (size == 0)
        return 0;
    switch (data[0] % 4) {
    case 0:
        fuzz_subject(s, size - 1);
        break;
    case 1:
        fuzz_u64(s, size - 1);
        break;
    case 2:
        fuzz_headers(s, size - 1);
        break;
    default:
        fuzz_order(data + 1, size - 1);
        break;
    }
    return 0;
}
