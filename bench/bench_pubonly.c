/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pubonly: publish on a lossy topic that nobody subscribes to, in one
 * process, and print the cost per message. Meant to run under
 * `strace -c -f`: every system call (segment creation, mapping, clock
 * set-up) happens before or after the timed loop, so any call counted
 * per message would come from shmbus_publish() itself.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

struct po_opts {
    uint64_t count;
    uint64_t size;
    int json;
};

/* The timed loop. @return elapsed ns, or 0 after a failed publish. */
static uint64_t po_loop(const struct po_opts *o, shmbus_pub *pub, const uint8_t *buf)
{
    uint64_t t0 = bench_now_ns();

    for (uint64_t i = 0; i < o->count; i++) {
        int rc = shmbus_publish(pub, buf, o->size, 0);
        if (rc < 0) {
            bench_fail("pubonly: shmbus_publish", rc);
            return 0;
        }
    }
    return bench_now_ns() - t0;
}

static void po_print(const struct po_opts *o, uint64_t elapsed)
{
    struct bench_report r = {0};
    double per = bench_ratio((double)elapsed, (double)o->count);

    printf("pubonly: %" PRIu64 " messages of %" PRIu64 " bytes in %.3f ms: %.1f ns/msg, "
           "%.0f msgs/s\n",
           o->count, o->size, (double)elapsed / 1e6, per, bench_per_s(o->count, elapsed));
    bench_report_str(&r, "cmd", "pubonly");
    bench_report_u64(&r, "size", o->size);
    bench_report_u64(&r, "count", o->count);
    bench_report_f64(&r, "ns_per_msg", per);
    bench_report_u64(&r, "msgs_per_s", (uint64_t)(bench_per_s(o->count, elapsed) + 0.5));
    bench_report_emit(&r, o->json);
}

static int po_run(const struct po_opts *o)
{
    shmbus_topic_opts to = {
        .mode = SHMBUS_LOSSY, .capacity = BENCH_CAPACITY, .max_msg_size = (uint32_t)o->size};
    struct bench_topics tp = {0};
    shmbus_pub *pub = NULL;
    uint8_t *buf = bench_calloc(o->size);
    uint64_t elapsed = 0;
    int rc;

    if (buf == NULL || bench_topics_add(&tp, "pubonly", &to) < 0)
        goto out;
    rc = shmbus_pub_create(tp.topic[0], &pub);
    if (rc < 0) {
        bench_fail("shmbus_pub_create", rc);
        goto out;
    }
    /* One clock read outside the loop first: the vDSO is set up by now. */
    bench_now_ns();
    elapsed = po_loop(o, pub, buf);
out:
    shmbus_pub_destroy(pub);
    bench_topics_cleanup(&tp);
    free(buf);
    if (elapsed == 0)
        return -1;
    po_print(o, elapsed);
    return 0;
}

static void po_usage(FILE *f)
{
    fputs("usage: shmbus-bench pubonly [options]\n"
          "  Publish on a lossy topic with no subscriber; prints ns per message.\n"
          "  Run under `strace -c -f` to see that publishing makes no system call.\n"
          "  --count N           messages (default 1000000)\n"
          "  --size BYTES        payload size (default 64)\n"
          "  --json              print the last line as a JSON object\n"
          "  --help              this text\n",
          f);
}

enum { PO_OPT_COUNT = 256, PO_OPT_SIZE, PO_OPT_JSON };

static const struct option po_longopts[] = {
    {"count", required_argument, NULL, PO_OPT_COUNT},
    {"size", required_argument, NULL, PO_OPT_SIZE},
    {"json", no_argument, NULL, PO_OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* @return 0 to run, 1 after --help, -1 on a bad option. */
static int po_parse(int argc, char **argv, struct po_opts *o)
{
    int opt, rc = 0;

    *o = (struct po_opts){.count = 1000000, .size = 64};
    while (rc == 0 && (opt = getopt_long(argc, argv, "h", po_longopts, NULL)) != -1) {
        switch (opt) {
        case PO_OPT_COUNT:
            rc = bench_parse_u64(optarg, "--count", 1, UINT64_MAX / 2, &o->count);
            break;
        case PO_OPT_SIZE:
            rc = bench_parse_u64(optarg, "--size", 0, BENCH_SIZE_MAX, &o->size);
            break;
        case PO_OPT_JSON:
            o->json = 1;
            break;
        case 'h':
            po_usage(stdout);
            return 1;
        default:
            return -1;
        }
    }
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "shmbus-bench: pubonly: unexpected argument '%s'\n", argv[optind]);
        rc = -1;
    }
    return rc;
}

int bench_cmd_pubonly(int argc, char **argv)
{
    struct po_opts o;
    int rc = po_parse(argc, argv, &o);

    if (rc != 0)
        return rc > 0 ? BENCH_EXIT_OK : BENCH_EXIT_USAGE;
    return po_run(&o) == 0 ? BENCH_EXIT_OK : BENCH_EXIT_FAIL;
}
