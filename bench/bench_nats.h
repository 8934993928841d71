/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shmbus-nats-bench's parts: its options, the link through which one side
 * sends and receives (two shmbus buses federated by their shmbusd through
 * NATS, or a plain cnats connection, core or JetStream), and the commands
 * built on it. bench_nats_link.c holds the links, bench_nats.c the options,
 * the commands and main().
 */
#ifndef SHMBUS_BENCH_BENCH_NATS_H
#define SHMBUS_BENCH_BENCH_NATS_H

#include <stdint.h>

#include <nats/nats.h>

#include "bench.h"

#define NB_NAME "shmbus-nats-bench"
/* The payload's header: send time, sequence number, tag (host order). */
#define NB_HEADER 24u
/* Largest --size: the bus's default max_msg_size, which imports create. */
#define NB_SIZE_MAX 1024u
/* Latency samples a run keeps (8 bytes each, shared). */
#define NB_SAMPLES_MAX (64ull << 20)
/* JetStream messages one pull request asks for, at most. */
#define NB_FETCH_MAX 4096u

/* What one link carries. */
enum nb_kind {
    NB_CORE,   /* lossy topics / core NATS subjects */
    NB_PERSIST /* reliable persisted topics / a JetStream stream */
};

struct nb_opts {
    int shm;               /* --via shmbus (else --via nats) */
    const char *url;       /* --nats URL: the baseline's server */
    const char *bus_a;     /* --bus-a: the sending side's bus */
    const char *bus_b;     /* --bus-b: the receiving side's bus */
    const char *stream_of; /* --stream-of: a subject of the daemons' stream */
    char stream_base[48];  /* the baseline's stream, a copy of that one ("": ours) */
    uint64_t count;
    uint64_t warmup;
    uint64_t size;
    uint64_t capacity;
    uint64_t window; /* baseline: JetStream publishes in flight */
    uint64_t batch;  /* baseline: messages per JetStream pull */
    uint64_t rate;   /* messages/s A sends; 0: as fast as it can */
    uint64_t timeout_ms;
    uint64_t idle_ms;
    uint64_t prime_ms;
    int64_t cpu_a; /* -1: not pinned */
    int64_t cpu_b;
    int send_asap; /* baseline: natsOptions_SetSendAsap */
    int json;
};

/* One side's way in and out. Zero-initialise; nb_link_close() accepts any state. */
struct nb_link {
    const struct nb_opts *o;
    enum nb_kind kind;
    /* --via shmbus */
    shmbus_bus *bus;
    struct bench_ep in;
    struct bench_ep out;
    /* --via nats */
    natsConnection *nc;
    natsSubscription *sub;
    jsCtx *js;
    char subj_out[64];
    natsMsgList fetched; /* JetStream: the last pull's messages */
    int next;            /* the first of them not handed out yet */
    /* counters of this side */
    uint64_t send_errors;
};

/* The names of the run: topics through shmbus, subjects through NATS. */
#define NB_TOPIC_PREFIX   "nb."
#define NB_SUBJECT_PREFIX "nbbase."
/* The baseline's JetStream stream: its name with no --stream to copy. */
#define NB_STREAM_BASE "NBBASE"

/**
 * Open the side of @p bus (shmbus) or of a new connection to o->url (nats):
 * subscribed to @p in (NULL: none) and publishing on @p out (NULL: none),
 * names without their prefix. @return 0, or -1 (message printed; closed).
 */
int nb_link_open(struct nb_link *l, const struct nb_opts *o, enum nb_kind kind, const char *bus,
                 const char *in, const char *out);
void nb_link_close(struct nb_link *l);

/** Send one message. @return 0; 1 when a lossy path dropped it; -1 on failure. */
int nb_send(struct nb_link *l, const void *buf, size_t len);

/** Wait for everything sent to be on its way (NATS flush, JetStream acks). */
int nb_flush(struct nb_link *l);

/**
 * Receive one message into @p buf, waiting up to @p timeout_ms.
 * @return its length; 0 when nothing came; -1 on failure (message printed).
 */
int nb_recv(struct nb_link *l, void *buf, size_t cap, uint64_t timeout_ms);

/** Messages the receiving side's client library dropped (cnats slow consumer). */
uint64_t nb_dropped(struct nb_link *l);

/** In the parent, --via nats, persisted: create the baseline's stream (a
 * copy of --stream-of's stream, whose name goes into o->stream_base). */
int nb_stream_prepare(struct nb_opts *o);

/** "cnats error text" of @p s, printed with @p what. @return -1. */
int nb_nats_fail(const char *what, natsStatus s);

#endif
