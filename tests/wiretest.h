/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control-protocol tests' helpers (test_wire.c, test_wire_io.c):
 * building a message as a peer would send it, and running the decoders on
 * exact-size heap copies so that ASan catches any read past the message.
 */
#ifndef SHMBUS_TESTS_WIRETEST_H
#define SHMBUS_TESTS_WIRETEST_H

#include "testutil.h"

#include "registry/wire.h"

/* Header plus body, as a peer would send them. @return the message size. */
static inline size_t msg_build(uint8_t *buf, uint16_t type, uint32_t req, const void *body,
                               uint32_t len)
{
    struct sb_wire_hdr h = {SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION, type, len, req};

    memcpy(buf, &h, sizeof(h));
    if (len > 0)
        memcpy(buf + sizeof(h), body, len);
    return sizeof(h) + len;
}

/* The header of a built message, to damage it. */
static inline struct sb_wire_hdr *msg_hdr(uint8_t *buf)
{
    return (struct sb_wire_hdr *)(void *)buf;
}

/* decode_req on an exact-size heap copy; checks that a failure names a reason. */
static inline int decode_req(const uint8_t *buf, size_t n, struct sb_wire_req *out)
{
    uint8_t *copy = malloc(n ? n : 1);
    const char *why = NULL;
    int rc;

    assert_non_null(copy);
    memcpy(copy, buf, n);
    rc = sb_wire_decode_req(copy, n, out, &why);
    free(copy);
    if (rc < 0) {
        assert_non_null(why);
        assert_true(why[0] != '\0');
    }
    return rc;
}

/* decode_reply on an exact-size heap copy (the body pointer is not kept). */
static inline int decode_reply(const uint8_t *buf, size_t n, uint32_t req)
{
    uint8_t *copy = malloc(n ? n : 1);
    const void *body = NULL;
    int rc;

    assert_non_null(copy);
    memcpy(copy, buf, n);
    rc = sb_wire_decode_reply(copy, n, req, &body);
    if (rc >= 0)
        assert_ptr_equal(body, copy + sizeof(struct sb_wire_hdr));
    free(copy);
    return rc;
}

static inline struct sb_wire_open open_body(const char *name)
{
    struct sb_wire_open o = {.mode = SHMBUS_RELIABLE, .capacity = 8, .max_msg_size = 64};

    assert_shmbus_ok(sb_wire_put_name(o.name, sizeof(o.name), name));
    return o;
}

/* decode_req of an OPEN request with body @p o. */
static inline int decode_open(const struct sb_wire_open *o)
{
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_req q;
    size_t n = msg_build(buf, SB_MSG_OPEN, 1, o, sizeof(*o));

    return decode_req(buf, n, &q);
}

#endif
