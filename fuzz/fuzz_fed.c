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
 *      encode back (sbf_meta_encode()) to the values it read.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data + 1;

    if (size == 0)
        return 0;
    switch (data[0] % 3) {
    case 0:
        fuzz_subject(s, size - 1);
        break;
    case 1:
        fuzz_u64(s, size - 1);
        break;
    default:
        fuzz_headers(s, size - 1);
        break;
    }
    return 0;
}
