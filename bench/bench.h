/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench.h - helpers shared by the commands of shmbus-bench: the clock,
 * sample statistics, the closing key=value report, option parsing, child
 * processes and their shared mappings, the parent's list of topics and a
 * private shmbusd. Only the public API of libshmbus is used here and in
 * every bench file but bench_registry.c and bench_reaper.c, which drive the
 * daemon's registry and reaper (shmbusd_core) directly.
 */
#ifndef SHMBUS_BENCH_BENCH_H
#define SHMBUS_BENCH_BENCH_H

#include <getopt.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "shmbus/shmbus.h"

/* A cache line and its adjacent-line prefetch pair: fields written by
 * different processes are kept this far apart. */
#define BENCH_BLOCK 128u
/* Pairs in the closing report line. */
#define BENCH_KV_MAX 24u
/* Children of one run: fanout's subscribers plus its publisher. */
#define BENCH_PROCS_MAX 300u
/* Topics one run creates. */
#define BENCH_TOPICS_MAX 4u
/* Largest --size accepted by every command. */
#define BENCH_SIZE_MAX (1u << 20)
/* Most rounds a command alternates (and bench_stats_median() reads). */
#define BENCH_ROUNDS_MAX 1000u
/* Topic capacity used by every command. */
#define BENCH_CAPACITY 1024u
/* The clock costs ~20 ns: producers look at it once per this many messages. */
#define BENCH_CLOCK_EVERY 64u
/* Exit codes of a command. */
#define BENCH_EXIT_OK    0
#define BENCH_EXIT_FAIL  1
#define BENCH_EXIT_USAGE 2

/* ------------------------------------------------------------------ clock */

/** CLOCK_MONOTONIC in nanoseconds; the only clock of every run and baseline. */
uint64_t bench_now_ns(void);

/** Busy-wait until bench_now_ns() reaches @p when_ns. */
void bench_spin_until(uint64_t when_ns);

/** Tell the CPU we are spinning (pause / yield), as the library's spin does. */
static inline void bench_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* ------------------------------------------------------------- statistics */

/** Summary of a sorted array of per-sample nanoseconds. */
struct bench_stats {
    uint64_t n;
    uint64_t p50;
    uint64_t p99;
    uint64_t p999;
    uint64_t max;
};

/**
 * Copy @p n samples out of a shared array, sort them and read nearest-rank
 * percentiles. Call only after the child that wrote them was reaped.
 * @return 0, or -1 when out of memory (message printed).
 */
int bench_stats_compute(const _Atomic uint64_t *samples, size_t n, struct bench_stats *out);

/**
 * Summarise @p n rounds' summaries @p per (the first BENCH_ROUNDS_MAX of
 * them): the median of each percentile over the rounds (the upper one for
 * even @p n), the largest max, the total n; all zero for no rounds.
 */
void bench_stats_median(const struct bench_stats *per, size_t n, struct bench_stats *out);

/** Print one human-readable line for @p s, prefixed by @p label. */
void bench_stats_print(const char *label, const struct bench_stats *s);

/** Store 0 into every sample so that page faults happen before timing. */
void bench_samples_touch(_Atomic uint64_t *samples, size_t n);

/** Median of @p n values (@p n >= 1), sorting @p v in place. */
double bench_median(double *v, size_t n);

/** num / den, or 0 when den is 0. */
double bench_ratio(double num, double den);

/* ----------------------------------------------------------------- report */

enum bench_kind { BENCH_KIND_STR, BENCH_KIND_U64, BENCH_KIND_F64 };

struct bench_kv {
    const char *key;
    enum bench_kind kind;
    const char *s; /* static string, for BENCH_KIND_STR */
    uint64_t u;
    double f;
};

/** The closing line of a command; zero-initialise before use. */
struct bench_report {
    struct bench_kv kv[BENCH_KV_MAX];
    unsigned n;
};

void bench_report_str(struct bench_report *r, const char *key, const char *val);
void bench_report_u64(struct bench_report *r, const char *key, uint64_t val);
void bench_report_f64(struct bench_report *r, const char *key, double val);

/** Print the pairs as `k=v k=v`, or as one JSON object when @p json. */
void bench_report_emit(const struct bench_report *r, int json);

/* ---------------------------------------------------------------- options */

/** Parse a decimal integer in [min, max]. @return 0, or -1 (message printed). */
int bench_parse_u64(const char *arg, const char *opt, uint64_t min, uint64_t max, uint64_t *out);

/** A numeric option of a command line: getopt_long()'s value for it, its
 *  limits, and the offset of its uint64_t field in the options struct. */
struct bench_num {
    int opt;
    uint64_t min, max;
    size_t off;
};

/**
 * If @p opt is one of the @p n numeric options @p nums, parse @p arg into
 * its field of @p dst. @p names is the long options table, whose entry
 * opt - @p first names it in messages.
 * @return 0 parsed, -1 refused (message printed), 1 not a numeric option.
 */
int bench_num_option(const struct bench_num *nums, size_t n, const struct option *names, int first,
                     int opt, const char *arg, void *dst);

/** Parse a decimal number in [min, max]. @return 0, or -1 (message printed). */
int bench_parse_f64(const char *arg, const char *opt, double min, double max, double *out);

/** Parse "lossy" or "reliable" into SHMBUS_LOSSY / SHMBUS_RELIABLE. */
int bench_parse_mode(const char *arg, uint32_t *mode);

/** "lossy" or "reliable". */
const char *bench_mode_name(uint32_t mode);

/** calloc(1, @p len + 1) (never 0 bytes), or NULL with a message printed. */
void *bench_calloc(size_t len);

/** Print "shmbus-bench: <what>: <shmbus_strerror(rc)> (rc)" to stderr. @return -1. */
int bench_fail(const char *what, int rc);

/* -------------------------------------------------------------- processes */

typedef int (*bench_child_fn)(void *arg);

/** Children of one run. Zero-initialise before the first bench_spawn(). */
struct bench_procs {
    pid_t pid[BENCH_PROCS_MAX]; /* 0 once reaped */
    unsigned n;
    unsigned live;
    int stopping; /* the rest were killed: their deaths are expected */
};

/** Make SIGINT and SIGTERM interrupt the parent's waits (children reset them). */
void bench_signals_install(void);

/** Has SIGINT or SIGTERM arrived since bench_signals_install()? For long loops. */
int bench_interrupted(void);

/**
 * Raise the soft RLIMIT_NOFILE to at least @p need descriptors.
 * @return 0, or -1 when the hard limit is lower (message printed).
 */
int bench_nofile_raise(uint64_t need);

/**
 * Fork a child that runs @p fn(@p arg) and leaves with _exit(0) on 0, else
 * _exit(1). On failure the children already started are killed (they may be
 * waiting for a peer that will never come); bench_reap() must still follow.
 * @return 0, or -1 (message printed).
 */
int bench_spawn(struct bench_procs *ps, bench_child_fn fn, void *arg);

/**
 * Wait for every child. When one fails (or the parent is interrupted) the
 * others are killed, then reaped. @return 0 if all exited with status 0.
 */
int bench_reap(struct bench_procs *ps);

/** Decide whether to pin (wanted, and CPUs 0 and 1 usable); prints the choice. */
int bench_pin_plan(int want);

/** In a child: pin the calling process to @p cpu when @p pin is set. */
void bench_pin_cpu(int pin, int cpu);

/** An anonymous MAP_SHARED mapping of @p len zeroed bytes, or NULL (message printed). */
void *bench_shared_alloc(size_t len);

/** Unmap what bench_shared_alloc() returned. Accepts NULL. */
void bench_shared_free(void *p, size_t len);

/* A readiness pipe: the side that must be ready first writes one byte. */
struct bench_pipe {
    int rd;
    int wr;
};
#define BENCH_PIPE_INIT                                                                            \
    {                                                                                              \
        -1, -1                                                                                     \
    }

int bench_pipe_open(struct bench_pipe *p);
void bench_pipe_close(struct bench_pipe *p);
/** Close @p fd if open and set it to -1. */
void bench_fd_close(int *fd);
/** Write one readiness byte. @return 0, or -1 (message printed). */
int bench_ready_post(int fd);
/** Read @p count readiness bytes; fails on EOF. @return 0, or -1 (message printed). */
int bench_ready_wait(int fd, unsigned count);

/* ----------------------------------------------------------------- topics */

/* Topics a parent created; bench_topics_cleanup() unmaps and unlinks them. */
struct bench_topics {
    char name[BENCH_TOPICS_MAX][SHMBUS_NAME_MAX + 1];
    shmbus_topic *topic[BENCH_TOPICS_MAX];
    unsigned n;
};

/** Create "shmbus-bench.<pid>.<suffix>". @return 0, or -1 (message printed). */
int bench_topics_add(struct bench_topics *t, const char *suffix, const shmbus_topic_opts *opts);

/** Destroy the handles and unlink every created segment. */
void bench_topics_cleanup(struct bench_topics *t);

/* One process's view of a topic: its own mapping, and a publisher and/or a
 * subscriber on it. Zero-initialise; bench_ep_close() accepts any state. */
struct bench_ep {
    shmbus_topic *topic;
    shmbus_pub *pub;
    shmbus_sub *sub;
};

/**
 * Attach to topic @p name, then create a subscriber (when @p sub_opts is
 * not NULL) and a publisher (when @p want_pub).
 * @return 0, or -1 (message printed; @p ep is closed).
 */
int bench_ep_open(struct bench_ep *ep, const char *name, int want_pub,
                  const shmbus_sub_opts *sub_opts);

/**
 * As bench_ep_open(), but open topic @p name through the daemon connection
 * @p bus (shmbus_open(), creating it with @p opts on first use). @p bus must
 * outlive the endpoint.
 */
int bench_ep_open_bus(struct bench_ep *ep, shmbus_bus *bus, const char *name,
                      const shmbus_topic_opts *opts, int want_pub, const shmbus_sub_opts *sub_opts);
void bench_ep_close(struct bench_ep *ep);

/* ------------------------------------------------------------------ daemon */

/* A private shmbusd (bench_daemon.c). Zero-initialise, or start it. */
struct bench_daemon {
    pid_t pid;                         /* 0: not running */
    char bus[SHMBUS_BUS_NAME_MAX + 1]; /* "bench-<our pid>" */
    char dir[64];                      /* its XDG_RUNTIME_DIR, "" when none */
    char *saved_xdg;                   /* the caller's XDG_RUNTIME_DIR (malloc), or NULL */
    int xdg_set;                       /* XDG_RUNTIME_DIR points at dir */
};

/** The shmbusd to run: @p opt if not NULL, else $SHMBUS_BENCH_SHMBUSD if set,
 * else the one built with us (SHMBUSD_PATH). */
const char *bench_daemon_path(const char *opt);

/**
 * Run shmbusd @p path in the foreground on a bus of its own, in a new
 * private directory that becomes XDG_RUNTIME_DIR for this process and the
 * children it forks from now on, with the extra arguments @p args
 * (NULL-terminated, or NULL); return once shmbus_connect() to it succeeds.
 * @return 0, or -1 (message printed; everything started is stopped again).
 */
int bench_daemon_start(struct bench_daemon *d, const char *path, const char *const *args);

/**
 * Stop the daemon (SIGTERM, waitpid), remove the segments of its bus it
 * left behind, the directory, and restore XDG_RUNTIME_DIR. Accepts any
 * state from zero to started. @return 0 if it exited cleanly and left nothing.
 */
int bench_daemon_stop(struct bench_daemon *d);

/* ------------------------------------------------ throughput control block */

/* Shared by a producer, a consumer and the parent, for the shmbus run and
 * the SPSC baseline alike. The producer's line, the consumer's results and
 * the producer's results sit in separate blocks. */
struct bench_tp_shared {
    _Alignas(BENCH_BLOCK) _Atomic uint64_t start_ns;  /* producer: when it began */
    _Atomic uint32_t done;                            /* producer: 1 after its last message */
    _Alignas(BENCH_BLOCK) _Atomic uint64_t delivered; /* consumer results */
    _Atomic uint64_t lost;
    _Atomic uint64_t end_ns;
    _Atomic uint64_t checksum;
    _Alignas(BENCH_BLOCK) _Atomic uint64_t sent; /* producer results */
    _Atomic uint64_t overruns;
};

/* Rates of one throughput run, read by the parent after the reap. */
struct bench_rate {
    uint64_t delivered;
    uint64_t lost;
    uint64_t sent;
    uint64_t overruns;
    uint64_t elapsed_ns; /* producer start to consumer drained */
};

/** Producer: note the start. @return the deadline, @p seconds from now. */
uint64_t bench_tp_begin(struct bench_tp_shared *t, double seconds);
/** Producer: store its counts, then raise done. */
void bench_tp_finish(struct bench_tp_shared *t, uint64_t sent, uint64_t overruns);
/** Consumer: has the producer finished? Everything it sent is then visible. */
int bench_tp_done(struct bench_tp_shared *t);
/** Consumer: store its results and the end time. */
void bench_tp_report(struct bench_tp_shared *t, uint64_t delivered, uint64_t lost,
                     uint64_t checksum);
/** Parent, after the reap: read the results. */
void bench_tp_read(struct bench_tp_shared *t, struct bench_rate *out);
/** Messages per second of @p n over @p elapsed_ns. */
double bench_per_s(uint64_t n, uint64_t elapsed_ns);

/* -------------------------------------------------------------- baselines */

/* A cache line: the floor ring moves each message as one. */
#define BENCH_LINE 64u
/* Lines of the floor ring (a power of two). */
#define BENCH_RING_SLOTS 1024u
/* Payload of one floor message: the line less its stamp word. */
#define BENCH_RING_PAYLOAD 56u

/* The one-line SPSC ring of every floor (bench_ring.c), in a shared mapping. */
struct bench_ring;

/* One side's private view of a ring. Zero-initialise, then set r and sleep. */
struct bench_ring_end {
    struct bench_ring *r;
    uint64_t pos;   /* producer: next message to write; consumer: next to read */
    uint64_t cache; /* producer: the consumer's count when last read */
    int sleep;      /* 0: spin while waiting; 1: raise a flag and FUTEX_WAIT */
};

/** An empty ring in a fresh shared mapping, or NULL (message printed). */
struct bench_ring *bench_ring_alloc(void);
/** Unmap a ring. Accepts NULL. */
void bench_ring_free(struct bench_ring *r);
/**
 * Producer: copy BENCH_RING_PAYLOAD bytes of @p src into the next line,
 * marked last when @p last, waiting for room (spinning or sleeping).
 * @return 0, or -1 when a futex call failed (message printed).
 */
int bench_ring_put(struct bench_ring_end *p, const void *src, int last);
/**
 * Consumer: wait for the next line (spinning or sleeping) and copy its
 * BENCH_RING_PAYLOAD bytes into @p dst.
 * @return 1 when it was marked last, 0 otherwise, -1 on a futex failure.
 */
int bench_ring_get(struct bench_ring_end *c, void *dst);

struct bench_floor_args {
    uint64_t count;
    uint64_t warmup;
    int pin;
    int same_cpu;              /* both sides on CPU 0 (when pinning) */
    _Atomic uint64_t *samples; /* count entries, shared */
};

/** The CPU of side B (subscriber, echoer): 1, or 0 with @p same_cpu. */
static inline int bench_cpu_b(int same_cpu)
{
    return same_cpu ? 0 : 1;
}

/** Spin ping-pong over two one-line rings, one each way; samples are RTT/2. */
int bench_floor_spin(const struct bench_floor_args *a);
/** The same over the rings' sleeping variant (futex); samples are RTT/2. */
int bench_floor_futex(const struct bench_floor_args *a);

/* How a throughput floor runs: spinning or sleeping sides, and where. */
struct bench_spsc_args {
    double seconds;
    int pin;
    int same_cpu; /* both sides on CPU 0 (when pinning) */
    int sleep;    /* the ring's sleeping variant */
};

/** The one-line ring between two processes for a->seconds. */
int bench_spsc_run(const struct bench_spsc_args *a, struct bench_rate *out);

/* --------------------------------------------------------------- commands */

int bench_cmd_pingpong(int argc, char **argv);
int bench_cmd_throughput(int argc, char **argv);
int bench_cmd_fanout(int argc, char **argv);
int bench_cmd_ack(int argc, char **argv);
int bench_cmd_pubonly(int argc, char **argv);
int bench_cmd_registry(int argc, char **argv);
int bench_cmd_reaper(int argc, char **argv);
int bench_cmd_journal(int argc, char **argv);
#ifdef SHMBUS_BENCH_URING
int bench_cmd_journal_io(int argc, char **argv);
#endif

#endif /* SHMBUS_BENCH_BENCH_H */
