/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The dead-letter envelope (deadletter.h): the daemon's builder and the
 * public reader, shmbus_dead_letter_parse(), and the names of its reasons
 * (shmbus_dead_letter_reason()). The reader checks every
 * length against what it was given before it copies a byte, and every
 * name against util/name.h, so that a dead-letter topic anyone may
 * publish into cannot make it read out of bounds or hand out a bad name.
 */
#include "registry/deadletter.h"

#include <assert.h>
#include <string.h>

#include "util/name.h"

/* Offsets of the fixed fields (deadletter.h). */
enum {
    DL_MAGIC = 0,
    DL_VERSION = 4,
    DL_HDRLEN = 6,
    DL_SEQ = 8,
    DL_TIMESTAMP = 16,
    DL_DEAD = 24,
    DL_PID = 32,
    DL_DELIVERIES = 36,
    DL_REASON = 40,
    DL_TOPIC_LEN = 44,
    DL_GROUP_LEN = 46
};
static_assert(DL_GROUP_LEN + 2 == SB_DL_FIXED, "the names follow the fixed fields");
static_assert(SB_DL_ROOM <= UINT16_MAX, "a header length fits its u16");

static void put16(uint8_t *b, size_t off, uint16_t v)
{
    memcpy(b + off, &v, sizeof(v));
}

static void put32(uint8_t *b, size_t off, uint32_t v)
{
    memcpy(b + off, &v, sizeof(v));
}

static void put64(uint8_t *b, size_t off, uint64_t v)
{
    memcpy(b + off, &v, sizeof(v));
}

int sb_dl_header_put(void *buf, size_t cap, const struct sb_dl_meta *m)
{
    uint8_t *b = buf;
    size_t tl, gl, hl;

    /* A name out of the rules would make an envelope no reader accepts. */
    if (!sb_name_valid(m->topic, SHMBUS_TOPIC_NAME_MAX) ||
        !sb_name_valid(m->group, SHMBUS_GROUP_NAME_MAX))
        return SHMBUS_ERR_BAD_NAME;
    tl = strlen(m->topic);
    gl = strlen(m->group);
    hl = SB_DL_FIXED + tl + gl;
    if (hl > cap)
        return SHMBUS_ERR_TOO_BIG;
    put32(b, DL_MAGIC, SB_DL_MAGIC);
    put16(b, DL_VERSION, SB_DL_VERSION);
    put16(b, DL_HDRLEN, (uint16_t)hl);
    put64(b, DL_SEQ, m->seq);
    put64(b, DL_TIMESTAMP, m->timestamp_ns);
    put64(b, DL_DEAD, m->dead_ns);
    put32(b, DL_PID, m->publisher_pid);
    put32(b, DL_DELIVERIES, m->deliveries);
    put32(b, DL_REASON, m->reason);
    put16(b, DL_TOPIC_LEN, (uint16_t)tl);
    put16(b, DL_GROUP_LEN, (uint16_t)gl);
    memcpy(b + SB_DL_FIXED, m->topic, tl);
    memcpy(b + SB_DL_FIXED + tl, m->group, gl);
    return (int)hl;
}

static uint16_t get16(const uint8_t *b, size_t off)
{
    uint16_t v;

    memcpy(&v, b + off, sizeof(v));
    return v;
}

static uint32_t get32(const uint8_t *b, size_t off)
{
    uint32_t v;

    memcpy(&v, b + off, sizeof(v));
    return v;
}

static uint64_t get64(const uint8_t *b, size_t off)
{
    uint64_t v;

    memcpy(&v, b + off, sizeof(v));
    return v;
}

/* Copy the name of @p n bytes at @p src into @p dst (@p max + 1 bytes)
 * and check it. @return 0, or SHMBUS_ERR_CORRUPT. */
static int dl_name(char *dst, const uint8_t *src, size_t n, size_t max)
{
    /* An empty or over-long name is no name (and would not fit dst). */
    if (n == 0 || n > max)
        return SHMBUS_ERR_CORRUPT;
    memcpy(dst, src, n);
    dst[n] = '\0';
    /* sb_name_valid() stops at a NUL: one inside the bytes is refused by
     * the length check that follows. */
    return sb_name_valid(dst, max) && strlen(dst) == n ? 0 : SHMBUS_ERR_CORRUPT;
}

int shmbus_dead_letter_parse(const void *data, size_t len, shmbus_dead_letter *out)
{
    const uint8_t *b = data;
    size_t tl, gl, hl;

    if (data == NULL || out == NULL)
        return SHMBUS_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    /* Shorter than the fixed fields, or not an envelope of this version. */
    if (len < SB_DL_FIXED || get32(b, DL_MAGIC) != SB_DL_MAGIC ||
        get16(b, DL_VERSION) != SB_DL_VERSION)
        return SHMBUS_ERR_CORRUPT;
    hl = get16(b, DL_HDRLEN);
    tl = get16(b, DL_TOPIC_LEN);
    gl = get16(b, DL_GROUP_LEN);
    /* The names inside the header, the header inside the message, the
     * payload's length inside its field. */
    if (SB_DL_FIXED + tl + gl > hl || hl > len || len - hl > UINT32_MAX)
        return SHMBUS_ERR_CORRUPT;
    if (dl_name(out->topic, b + SB_DL_FIXED, tl, SHMBUS_TOPIC_NAME_MAX) < 0 ||
        dl_name(out->group, b + SB_DL_FIXED + tl, gl, SHMBUS_GROUP_NAME_MAX) < 0) {
        memset(out, 0, sizeof(*out));
        return SHMBUS_ERR_CORRUPT;
    }
    out->seq = get64(b, DL_SEQ);
    out->timestamp_ns = get64(b, DL_TIMESTAMP);
    out->dead_ns = get64(b, DL_DEAD);
    out->publisher_pid = get32(b, DL_PID);
    out->deliveries = get32(b, DL_DELIVERIES);
    out->reason = get32(b, DL_REASON);
    out->data = b + hl;
    out->len = (uint32_t)(len - hl);
    return 0;
}

const char *shmbus_dead_letter_reason(uint32_t reason)
{
    switch (reason) {
    case SHMBUS_DL_NACKED:
        return "nacked";
    case SHMBUS_DL_DIED:
        return "died";
    case SHMBUS_DL_EVICTED:
        return "evicted";
    case SHMBUS_DL_STALLED:
        return "stalled";
    case SHMBUS_DL_LEFT:
        return "left";
    default:
        return "unknown";
    }
}
