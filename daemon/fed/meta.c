/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Federation's names and metadata (meta.h): subjects, the prefix and
 * origin rules, and the Shmbus-* headers. Pure; every input is bounded
 * by its length.
 */
#include "fed/meta.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/name.h"

static int word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

int sbd_fed_prefix_ok(const char *s)
{
    size_t n = 0;
    int token = 0; /* characters in the current token */

    if (s == NULL)
        return 0;
    for (; s[n] != '\0'; n++) {
        if (n >= SBD_NATS_NAME_MAX)
            return 0;
        if (s[n] == '.') {
            if (token == 0)
                return 0;
            token = 0;
        } else if (word_char(s[n])) {
            token++;
        } else {
            return 0;
        }
    }
    return token > 0;
}

int sbd_fed_origin_ok(const char *s)
{
    size_t n = 0;

    if (s == NULL || s[0] == '\0')
        return 0;
    for (; s[n] != '\0'; n++)
        if (n >= SBD_NATS_NAME_MAX || !word_char(s[n]))
            return 0;
    return 1;
}

void sbd_fed_default_origin(const char *host, const char *bus, char out[SBD_NATS_NAME_MAX + 1])
{
    size_t blen = strnlen(bus, SBD_NATS_NAME_MAX - 1), room = SBD_NATS_NAME_MAX - 1 - blen, n = 0;

    for (; host[n] != '\0' && host[n] != '.' && n < room; n++)
        out[n] = word_char(host[n]) ? host[n] : '_';
    if (n == 0) {
        size_t h = strlen("host") < room ? strlen("host") : room;

        memcpy(out, "host", h);
        n = h;
    }
    out[n++] = '_';
    memcpy(out + n, bus, blen);
    out[n + blen] = '\0';
}

/* 1 if topic name @p s (@p len bytes, a valid topic name) has no empty
 * token: no ".." and no '.' at its end (it never starts with one). */
static int subject_able(const char *s, size_t len)
{
    if (len == 0 || s[len - 1] == '.')
        return 0;
    for (size_t i = 1; i < len; i++)
        if (s[i] == '.' && s[i - 1] == '.')
            return 0;
    return 1;
}

int sbf_meta_subject(const char *prefix, const char *topic, char out[SBF_SUBJECT_MAX + 1])
{
    size_t tl = strnlen(topic, SHMBUS_TOPIC_NAME_MAX + 1);

    if (!sb_name_valid(topic, SHMBUS_TOPIC_NAME_MAX) || !subject_able(topic, tl) ||
        !sbd_fed_prefix_ok(prefix))
        return -EINVAL;
    snprintf(out, SBF_SUBJECT_MAX + 1, "%s.%s", prefix, topic);
    return 0;
}

int sbf_meta_topic(const char *prefix, const char *subj, size_t len,
                   char out[SHMBUS_TOPIC_NAME_MAX + 1])
{
    size_t pl = strlen(prefix), tl;

    if (len <= pl + 1 || memcmp(subj, prefix, pl) != 0 || subj[pl] != '.')
        return -EINVAL;
    tl = len - pl - 1;
    if (tl > SHMBUS_TOPIC_NAME_MAX || memchr(subj + pl + 1, '\0', tl) != NULL)
        return -EINVAL;
    memcpy(out, subj + pl + 1, tl);
    out[tl] = '\0';
    if (!sb_name_valid(out, SHMBUS_TOPIC_NAME_MAX) || !subject_able(out, tl))
        return -EINVAL;
    return 0;
}

int sbf_meta_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;

    if (s == NULL || len == 0 || len > SBF_U64_DIGITS)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        uint64_t d = (uint64_t)(s[i] - '0');

        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

void sbf_meta_encode(const struct sbf_meta *m, const char *topic, struct sbf_meta_text *out)
{
    snprintf(out->epoch, sizeof(out->epoch), "%llu", (unsigned long long)m->epoch);
    snprintf(out->seq, sizeof(out->seq), "%llu", (unsigned long long)m->seq);
    if (m->has_prev)
        snprintf(out->prev, sizeof(out->prev), "%llu", (unsigned long long)m->prev);
    else
        out->prev[0] = '\0';
    if (m->has_count)
        snprintf(out->count, sizeof(out->count), "%llu", (unsigned long long)m->count);
    else
        out->count[0] = '\0';
    snprintf(out->time, sizeof(out->time), "%llu", (unsigned long long)m->time_ns);
    snprintf(out->pid, sizeof(out->pid), "%u", m->pid);
    snprintf(out->msg_id, sizeof(out->msg_id), "%.*s/%.*s/%llu/%llu", SBD_NATS_NAME_MAX, m->origin,
             SHMBUS_TOPIC_NAME_MAX, topic, (unsigned long long)m->epoch,
             (unsigned long long)m->seq);
}

/* Decimal header @p key through @p get into *@p out. */
static int get_u64(sbf_meta_get_fn get, void *arg, const char *key, uint64_t *out)
{
    size_t len = 0;
    const char *v = get(arg, key, &len);

    return v == NULL ? -EINVAL : sbf_meta_u64(v, len, out);
}

int sbf_meta_decode(sbf_meta_get_fn get, void *arg, struct sbf_meta *m, const char **bad)
{
    size_t len = 0;
    const char *v = get(arg, SBF_HDR_ORIGIN, &len);
    uint64_t pid;

    memset(m, 0, sizeof(*m));
    *bad = SBF_HDR_ORIGIN;
    if (v == NULL || len == 0 || len > SBD_NATS_NAME_MAX || memchr(v, '\0', len) != NULL)
        return -EINVAL;
    memcpy(m->origin, v, len);
    m->origin[len] = '\0';
    if (!sbd_fed_origin_ok(m->origin))
        return -EINVAL;
    *bad = SBF_HDR_EPOCH;
    if (get_u64(get, arg, SBF_HDR_EPOCH, &m->epoch) < 0)
        return -EINVAL;
    /* A ring marks an imported message with 1 + its origin seq: the
     * largest seq cannot be carried, and is refused before it could take
     * a place in its origin's order. */
    *bad = SBF_HDR_SEQ;
    if (get_u64(get, arg, SBF_HDR_SEQ, &m->seq) < 0 || m->seq == UINT64_MAX)
        return -EINVAL;
    *bad = SBF_HDR_TIME;
    if (get_u64(get, arg, SBF_HDR_TIME, &m->time_ns) < 0)
        return -EINVAL;
    *bad = SBF_HDR_PID;
    if (get_u64(get, arg, SBF_HDR_PID, &pid) < 0 || pid > UINT32_MAX)
        return -EINVAL;
    m->pid = (uint32_t)pid;
    *bad = SBF_HDR_PREV;
    if (get(arg, SBF_HDR_PREV, &len) != NULL) {
        /* The message an exporter sent before came before this one. */
        if (get_u64(get, arg, SBF_HDR_PREV, &m->prev) < 0 || m->prev >= m->seq)
            return -EINVAL;
        m->has_prev = 1;
    }
    *bad = SBF_HDR_COUNT;
    if (get(arg, SBF_HDR_COUNT, &len) != NULL) {
        if (get_u64(get, arg, SBF_HDR_COUNT, &m->count) < 0 || m->count == 0)
            return -EINVAL;
        m->has_count = 1;
    }
    *bad = NULL;
    return 0;
}

int sbf_meta_order(struct sbf_origins *t, const struct sbf_meta *m, uint64_t heard, uint64_t *lost)
{
    struct sbf_origin *o = NULL;

    *lost = 0;
    for (unsigned i = 0; i < t->n && o == NULL; i++)
        if (strcmp(t->o[i].name, m->origin) == 0)
            o = &t->o[i];
    if (o == NULL || o->epoch != m->epoch) {
        if (o == NULL && t->n < SBF_ORIGINS_MAX) {
            o = &t->o[t->n++];
        } else if (o == NULL) { /* the least recently heard one is forgotten */
            o = &t->o[0];
            for (unsigned i = 1; i < t->n; i++)
                if (t->o[i].heard < o->heard)
                    o = &t->o[i];
        }
        snprintf(o->name, sizeof(o->name), "%s", m->origin);
        o->epoch = m->epoch;
        o->last = m->seq;
        o->count = m->has_count ? m->count : 0;
        o->heard = heard;
        return 1;
    }
    o->heard = heard;
    if (m->seq <= o->last)
        return 0;
    if (m->has_count && o->count != 0)
        *lost = m->count > o->count ? m->count - o->count - 1 : m->count - 1;
    o->last = m->seq;
    o->count = m->has_count ? m->count : 0;
    return 1;
}
