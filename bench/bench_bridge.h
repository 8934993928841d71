/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge benchmark's parts (shmbus-bridge-bench): its options, the run
 * of a publisher process and a subscriber process against one server, with
 * what they share and report (bench_bridge.c), and the commands built on it
 * (bench_bridge_cmd.c); shmbus_bridge_bench.c parses the options and picks
 * the command.
 */
#ifndef SHMBUS_BENCH_BENCH_BRIDGE_H
#define SHMBUS_BENCH_BENCH_BRIDGE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "bench.h"

#define BB_NAME "shmbus-bridge-bench"
/* The payload's header: send time, then sequence number (host order). */
#define BB_HEADER 16u
/* Largest --size. */
#define BB_SIZE_MAX 65536u
/* Connections one subscriber process of `fanout` reads. */
#define BB_SUBS_MAX 1000u
/* Latency samples a run keeps (8 bytes each, shared). */
#define BB_SAMPLES_MAX (64ull << 20)
/* `idle` opens this many connections, then waits for all their PONGs. */
#define BB_IDLE_BATCH 256u
/* Bytes one read() of a fan-out connection takes. */
#define BB_READ_CHUNK 65536u

struct bb_opts {
    const char *host;
    const char *channel;
    const char *label; /* the server's name in the report */
    uint64_t port;
    uint64_t count;
    uint64_t warmup;
    uint64_t window; /* PUBLISH replies outstanding at most */
    uint64_t batch;  /* commands per write */
    uint64_t rate;   /* messages/s; 0: as fast as possible */
    uint64_t size;
    uint64_t subs;
    uint64_t conns;
    uint64_t settle_ms;
    uint64_t idle_ms; /* a subscriber's silence that ends the run */
    uint64_t server_pid;
    int reply_off;    /* publish under CLIENT REPLY OFF */
    int preformatted; /* format PUBLISH once, restamp the copy */
    int json;
};

/* What one subscriber connection saw. */
struct bb_seq {
    uint64_t next; /* the sequence number expected */
    uint64_t received, skipped, reordered, bad;
    uint64_t first_ns, last_ns;
    int ended; /* reached --count, or stopped (silence, hang-up) */
    int hung_up;
};

/* One subscriber connection's results, written once by its process. */
struct bb_subres {
    _Atomic uint64_t received, skipped, reordered, bad, first_ns, last_ns, hung_up;
};

/* The publisher's results, written once by it. */
struct bb_pubres {
    _Atomic uint64_t sent, replies, errors, start_ns, end_ns;
};

/* One pubsub or fanout run: its options, what its children share, and
 * what the parent measured around them. */
struct bb_run {
    const struct bb_opts *o;
    unsigned nsubs;
    struct bench_pipe ready; /* subscriber process -> publisher: one byte */
    /* Shared: */
    struct bb_pubres *pub;
    struct bb_subres *sub;     /* nsubs entries */
    _Atomic uint64_t *samples; /* nsubs * count: connection i's from i * count */
    size_t shared_len;
    /* The parent's: */
    uint64_t wall_ns, server_cpu_ns, client_cpu_ns;
};

/* Totals over the subscriber connections, read after the reap. */
struct bb_total {
    uint64_t received, skipped, reordered, bad, hung_up;
    uint64_t first_ns, last_ns;
    uint64_t sent, errors, pub_ns;
};

/* ------------------------------------------- the server and connections */

uint64_t bb_server_cpu_ns(const struct bb_opts *o);
int bb_status_kib(uint64_t pid, const char *key, uint64_t *kib);
redisContext *bb_connect(const struct bb_opts *o);
int bb_ctx_fail(const redisContext *c, const char *what);
int bb_subscribe(redisContext *c, const char *channel);
int bb_flush(redisContext *c);

/* --------------------------------------------------------------- messages */

void bb_stamp(uint8_t *buf, uint64_t ts, uint64_t seq);
int bb_message(const redisReply *r, uint64_t size, uint64_t *ts, uint64_t *seq);

/* ----------------------------------------------------------------- a run */

int bb_run_alloc(struct bb_run *run, const struct bb_opts *o, unsigned nsubs);
void bb_run_free(struct bb_run *run);
int bb_sub_main(void *arg);
int bb_fan_main(void *arg);
int bb_run_procs(struct bb_run *run, bench_child_fn sub_fn);
uint64_t bb_load(_Atomic uint64_t *v);
void bb_total_read(struct bb_run *run, struct bb_total *t);
uint64_t bb_samples_pack(struct bb_run *run);
void bb_report_common(struct bench_report *rep, const struct bb_run *run, const struct bb_total *t,
                      uint64_t expected);
void bb_report_lat(struct bench_report *rep, const struct bench_stats *st);
const char *bb_pub_mode(const struct bb_opts *o);

/* -------------------------------------------------------------- commands */

int bb_cmd_pubsub(const struct bb_opts *o);
int bb_cmd_fanout(const struct bb_opts *o);
int bb_cmd_pingpong(const struct bb_opts *o);
int bb_cmd_idle(const struct bb_opts *o);

#endif
