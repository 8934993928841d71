/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ackwork: an acknowledging member for tests/test_cli.sh, which checks what
 * `shmbus stat` shows of a work queue; the shmbus command has no such
 * member of its own to drive step by step.
 *
 *   ackwork BUS TOPIC GROUP MAX_DELIVERIES
 *     opens TOPIC (reliable, created if missing), joins GROUP as an
 *     acknowledging member (SHMBUS_SUB_ACK, MAX_DELIVERIES, the default
 *     dead-letter topic TOPIC.dlq), then
 *      - publishes "ok" and "poison", acknowledges "ok", and nacks "poison"
 *        (delay 0) at each of its MAX_DELIVERIES deliveries: the group
 *        redelivers it MAX_DELIVERIES - 1 times, then the daemon
 *        dead-letters it;
 *      - publishes "later", which comes next (the poison is no longer
 *        given to members), and nacks it for an hour: it stays pending.
 *     Every delivery is checked (seq, payload, delivery count). It leaves
 *     holding nothing.
 *
 * Exit status: 0 done; 1 an operation failed or a delivery was not the one
 * expected (said on stderr); 2 bad usage.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmbus/shmbus.h"

#define AW_WAIT_NS (10ll * 1000000000ll) /* longest wait for one delivery */

/* Receive the next delivery; check its seq, payload and delivery count.
 * @return 0, or 1 (said on stderr). */
static int aw_expect(shmbus_sub *sub, uint64_t seq, const char *data, uint32_t deliveries)
{
    char buf[64];
    shmbus_msg m;
    int n = shmbus_recv(sub, buf, sizeof(buf) - 1, &m, AW_WAIT_NS);

    if (n < 0) {
        fprintf(stderr, "ackwork: recv (want seq %" PRIu64 "): %s\n", seq, shmbus_strerror(n));
        return 1;
    }
    buf[n] = '\0';
    if (m.seq != seq || strcmp(buf, data) != 0 || m.deliveries != deliveries) {
        fprintf(stderr,
                "ackwork: got seq %" PRIu64 " '%s' delivery %u, want seq %" PRIu64
                " '%s' delivery %u\n",
                m.seq, buf, m.deliveries, seq, data, deliveries);
        return 1;
    }
    return 0;
}

/* @return 0, or 1 when @p rc is an error (said on stderr, with @p what). */
static int aw_ok(int rc, const char *what)
{
    if (rc >= 0)
        return 0;
    fprintf(stderr, "ackwork: %s: %s\n", what, shmbus_strerror(rc));
    return 1;
}

/* The work described at the top, on an open topic. @return an exit status. */
static int aw_run(shmbus_topic *t, const char *group, uint32_t max_deliveries)
{
    shmbus_sub_opts so = {
        .group_name = group, .flags = SHMBUS_SUB_ACK, .max_deliveries = max_deliveries};
    shmbus_sub *sub = NULL;
    shmbus_pub *pub = NULL;
    int bad = aw_ok(shmbus_sub_create(t, &so, &sub), "join the group") ||
              aw_ok(shmbus_pub_create(t, &pub), "create a publisher");

    bad = bad || aw_ok(shmbus_publish(pub, "ok", 2, AW_WAIT_NS), "publish") ||
          aw_ok(shmbus_publish(pub, "poison", 6, AW_WAIT_NS), "publish") ||
          aw_expect(sub, 0, "ok", 1) || aw_ok(shmbus_ack(sub, 0), "ack");
    for (uint32_t d = 1; !bad && d <= max_deliveries; d++)
        bad = aw_expect(sub, 1, "poison", d) || aw_ok(shmbus_nack(sub, 1, 0), "nack");
    bad = bad || aw_ok(shmbus_publish(pub, "later", 5, AW_WAIT_NS), "publish") ||
          aw_expect(sub, 2, "later", 1) ||
          aw_ok(shmbus_nack(sub, 2, SHMBUS_NACK_DELAY_MAX), "nack for an hour");
    shmbus_pub_destroy(pub);
    shmbus_sub_destroy(sub);
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    shmbus_topic_opts to = {.mode = SHMBUS_RELIABLE, .capacity = 16};
    shmbus_topic *t = NULL;
    shmbus_bus *bus = NULL;
    char *end = NULL;
    unsigned long maxd;
    int rc;

    if (argc != 5 || (maxd = strtoul(argv[4], &end, 10)) == 0 || *end != '\0' ||
        maxd > SHMBUS_MAX_DELIVERIES_MAX) {
        fprintf(stderr, "usage: ackwork BUS TOPIC GROUP MAX_DELIVERIES (1..%d)\n",
                SHMBUS_MAX_DELIVERIES_MAX);
        return 2;
    }
    if (aw_ok(shmbus_connect(argv[1], &bus), "connect"))
        return 1;
    rc = aw_ok(shmbus_open(bus, argv[2], &to, 0, &t), "open the topic");
    if (rc == 0)
        rc = aw_run(t, argv[3], (uint32_t)maxd);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    return rc;
}
