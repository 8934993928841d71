/* SPDX-License-Identifier: Apache-2.0 */
/*
 * group: a work queue. Two acknowledging members of one consumer group
 * share the jobs of a reliable topic: each job goes to one member and stays
 * pending until acknowledged; a nacked job goes back to the group and is
 * delivered again (after max_deliveries, to the dead-letter topic
 * TOPIC.dlq). Here the first delivery of job 1 fails and is retried. In a
 * real pool each member is a process or thread of its own.
 *
 *   group [TOPIC]   (default example.jobs, made reliable)
 */
#include <shmbus/shmbus.h>
#include <stdio.h>
#include <string.h>

#define JOBS 3

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "example.jobs";
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE}; /* acknowledging groups need it */
    shmbus_sub_opts so = {.group_name = "workers", .flags = SHMBUS_SUB_ACK, .max_inflight = 1};
    shmbus_bus *bus = NULL;
    shmbus_topic *t = NULL;
    shmbus_pub *pub = NULL;
    shmbus_sub *member[2] = {NULL, NULL};
    int rc, done = 0;

    if ((rc = shmbus_connect(NULL, &bus)) < 0 || (rc = shmbus_open(bus, name, &o, 0, &t)) < 0 ||
        (rc = shmbus_sub_create(t, &so, &member[0])) < 0 ||
        (rc = shmbus_sub_create(t, &so, &member[1])) < 0 || (rc = shmbus_pub_create(t, &pub)) < 0)
        goto out;
    /* The group exists (its members do): the jobs are kept for it. */
    for (int i = 0; i < JOBS; i++) {
        char job[32];
        int n = snprintf(job, sizeof(job), "job %d", i);

        if ((rc = shmbus_publish(pub, job, (size_t)n, 1000000000)) < 0)
            goto out;
    }
    /* Members take turns; each holds at most max_inflight jobs pending. */
    for (int turn = 0; done < JOBS && turn < 4 * JOBS; turn++) {
        shmbus_sub *m = member[turn % 2];
        shmbus_msg info;
        char buf[64];

        rc = shmbus_recv(m, buf, sizeof(buf), &info, 1000000000);
        if (rc == SHMBUS_ERR_TIMEOUT)
            continue;
        if (rc < 0)
            goto out;
        printf("member %d: %.*s (seq %llu, delivery %u)", turn % 2, rc, buf,
               (unsigned long long)info.seq, info.deliveries);
        if (info.seq == 1 && info.deliveries == 1) {
            printf(": failed, given back\n");
            rc = shmbus_nack(m, info.seq, 0); /* redelivered at once, ahead of new jobs */
        } else {
            printf(": done\n");
            rc = shmbus_ack(m, info.seq);
            done++;
        }
        if (rc < 0)
            goto out;
    }
    if (done < JOBS)
        rc = SHMBUS_ERR_TIMEOUT;
out:
    if (rc < 0)
        fprintf(stderr, "group: %s\n", shmbus_strerror(rc));
    shmbus_pub_destroy(pub);
    shmbus_sub_destroy(member[0]);
    shmbus_sub_destroy(member[1]);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    return rc < 0;
}
