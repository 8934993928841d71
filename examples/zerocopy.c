/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zerocopy: publish by writing straight into a cell of the ring (claim,
 * write, commit) and read it in place with shmbus_poll(), one process.
 *
 *   zerocopy [TOPIC]   (default example.zerocopy, made reliable)
 */
#include <shmbus/shmbus.h>
#include <stdio.h>

/* Called by shmbus_poll() for each message: msg->data points into the ring
 * (a reliable topic) and is valid until this returns. */
static int print_msg(const shmbus_msg *msg, void *arg)
{
    (void)arg;
    printf("seq %llu: %.*s\n", (unsigned long long)msg->seq, (int)msg->len,
           (const char *)msg->data);
    return 0;
}

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "example.zerocopy";
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE}; /* zero fields: defaults */
    shmbus_bus *bus = NULL;
    shmbus_topic *t = NULL;
    shmbus_pub *pub = NULL;
    shmbus_sub *sub = NULL;
    shmbus_claim claim;
    int rc, len;

    if ((rc = shmbus_connect(NULL, &bus)) < 0 || (rc = shmbus_open(bus, name, &o, 0, &t)) < 0 ||
        (rc = shmbus_sub_create(t, NULL, &sub)) < 0 || (rc = shmbus_pub_create(t, &pub)) < 0)
        goto out;

    /* The claim is a cell of claim.capacity bytes (the topic's max_msg_size);
     * readers wait at it until commit or abort, so keep it short. */
    if ((rc = shmbus_pub_claim(pub, &claim, 1000000000)) < 0)
        goto out;
    len = snprintf(claim.data, claim.capacity, "written in place as seq %llu",
                   (unsigned long long)claim.seq);
    if (len < 0 || (unsigned)len >= claim.capacity) {
        shmbus_pub_abort(pub, &claim); /* readers count it as one lost message */
        rc = SHMBUS_ERR_TOO_BIG;
        goto out;
    }
    if ((rc = shmbus_pub_commit(pub, &claim, (size_t)len)) < 0)
        goto out;

    rc = shmbus_poll(sub, print_msg, NULL, 16); /* what is ready, no waiting */
out:
    if (rc < 0)
        fprintf(stderr, "zerocopy: %s\n", shmbus_strerror(rc));
    shmbus_pub_destroy(pub);
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    return rc < 0;
}
