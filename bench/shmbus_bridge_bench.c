/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shmbus-bridge-bench: shmbusd's TCP bridge (daemon/bridge/) against
 * redis-server, measured with one hiredis client program for both. Every
 * command connects to --host:--port, whichever server listens there, and
 * speaks nothing but Redis pub/sub (PUBLISH, SUBSCRIBE, CLIENT REPLY, PING).
 * Each payload starts with its send time (CLOCK_MONOTONIC ns: clients and
 * server share the host) and its sequence number, so subscribers measure
 * one-way latency and count gaps themselves. As in shmbus-bench, the parent
 * forks the measuring sides into children that share an anonymous mapping
 * with it, reaps them and prints their figures; the last line of every
 * command is key=value pairs (or, with --json, one JSON object).
 * bench/bridge.sh runs each command against a private shmbusd and a private
 * redis-server in turn.
 */
#include <getopt.h>
#include <stddef.h>
#include <string.h>

#include "bench_bridge.h"

/* ----------------------------------------------------------------- options */

enum {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_CHANNEL,
    OPT_LABEL,
    OPT_COUNT,
    OPT_WARMUP,
    OPT_WINDOW,
    OPT_BATCH,
    OPT_RATE,
    OPT_SIZE,
    OPT_SUBS,
    OPT_CONNS,
    OPT_SETTLE,
    OPT_IDLE,
    OPT_PID,
    OPT_REPLY_OFF,
    OPT_PREFORMATTED,
    OPT_JSON,
    OPT_HELP
};

static const struct option bb_long_opts[] = {{"host", required_argument, NULL, OPT_HOST},
                                             {"port", required_argument, NULL, OPT_PORT},
                                             {"channel", required_argument, NULL, OPT_CHANNEL},
                                             {"label", required_argument, NULL, OPT_LABEL},
                                             {"count", required_argument, NULL, OPT_COUNT},
                                             {"warmup", required_argument, NULL, OPT_WARMUP},
                                             {"window", required_argument, NULL, OPT_WINDOW},
                                             {"batch", required_argument, NULL, OPT_BATCH},
                                             {"rate", required_argument, NULL, OPT_RATE},
                                             {"size", required_argument, NULL, OPT_SIZE},
                                             {"subscribers", required_argument, NULL, OPT_SUBS},
                                             {"conns", required_argument, NULL, OPT_CONNS},
                                             {"settle-ms", required_argument, NULL, OPT_SETTLE},
                                             {"idle-ms", required_argument, NULL, OPT_IDLE},
                                             {"server-pid", required_argument, NULL, OPT_PID},
                                             {"reply-off", no_argument, NULL, OPT_REPLY_OFF},
                                             {"preformatted", no_argument, NULL, OPT_PREFORMATTED},
                                             {"json", no_argument, NULL, OPT_JSON},
                                             {"help", no_argument, NULL, OPT_HELP},
                                             {NULL, 0, NULL, 0}};

/* The numeric options: their limits and their fields. */
static const struct bench_num bb_nums[] = {
    {OPT_PORT, 1, 65535, offsetof(struct bb_opts, port)},
    {OPT_COUNT, 1, 1ull << 32, offsetof(struct bb_opts, count)},
    {OPT_WARMUP, 0, 1ull << 32, offsetof(struct bb_opts, warmup)},
    {OPT_WINDOW, 1, 1u << 20, offsetof(struct bb_opts, window)},
    {OPT_BATCH, 1, 4096, offsetof(struct bb_opts, batch)},
    {OPT_RATE, 0, 100000000, offsetof(struct bb_opts, rate)},
    {OPT_SIZE, BB_HEADER, BB_SIZE_MAX, offsetof(struct bb_opts, size)},
    {OPT_SUBS, 1, BB_SUBS_MAX, offsetof(struct bb_opts, subs)},
    {OPT_CONNS, 1, 1000000, offsetof(struct bb_opts, conns)},
    {OPT_SETTLE, 0, 600000, offsetof(struct bb_opts, settle_ms)},
    {OPT_IDLE, 1, 600000, offsetof(struct bb_opts, idle_ms)},
    {OPT_PID, 1, 1u << 30, offsetof(struct bb_opts, server_pid)},
};

static void bb_usage(FILE *f)
{
    fputs("usage: " BB_NAME " COMMAND --port P [options]\n"
          "One hiredis client against any server of Redis pub/sub on HOST:PORT\n"
          "(shmbusd --bridge, redis-server). Payloads carry their CLOCK_MONOTONIC\n"
          "send time and a sequence number; latency is one-way, sender to reader.\n"
          "commands:\n"
          "  pubsub    one publisher, one subscriber: messages/s at the subscriber\n"
          "            (first to last received), loss, latency under that load.\n"
          "            Pipelined PUBLISH with at most --window replies outstanding,\n"
          "            --batch commands per write; or --reply-off (CLIENT REPLY OFF);\n"
          "            or --rate R messages/s, one write each (paced latency)\n"
          "  pingpong  publish one message, wait until the subscriber has it, repeat\n"
          "            (both connections in one process): unloaded latency\n"
          "  fanout    one publisher (as pubsub), --subscribers connections read by\n"
          "            one process (epoll, hiredis readers): deliveries/s, latency\n"
          "  idle      open --conns idle connections (each answers one PING), wait\n"
          "            --settle-ms, report the growth of --server-pid's VmRSS\n"
          "options (defaults in brackets):\n"
          "  --host H [127.0.0.1]  --port P  --channel NAME [bb.<command>]\n"
          "  --label NAME [server]  name of the server in the report\n"
          "  --count N [pubsub 1000000, pingpong 20000, fanout 20000]  --warmup N [1000]\n"
          "  --window W [1000]  --batch B [16]  --rate R [0]  --reply-off\n"
          "  --preformatted     format PUBLISH once (redisFormatCommand) and append a\n"
          "                     restamped copy per message (redisAppendFormattedCommand)\n"
          "                     instead of redisAppendCommand: a lighter publisher\n"
          "  --size BYTES [64]  --subscribers S [100]  --conns N [10000]\n"
          "  --settle-ms MS [1000]  --idle-ms MS [3000]: silence that ends a subscriber\n"
          "  --server-pid PID   report the server's CPU time (and, for idle, memory)\n"
          "  --json             last line as JSON\n",
          f);
}

static void bb_defaults(struct bb_opts *o, const char *cmd)
{
    memset(o, 0, sizeof(*o));
    o->host = "127.0.0.1";
    o->label = "server";
    o->count = strcmp(cmd, "pubsub") == 0 ? 1000000 : 20000;
    o->warmup = 1000;
    o->window = 1000;
    o->batch = 16;
    o->size = 64;
    o->subs = 100;
    o->conns = 10000;
    o->settle_ms = 1000;
    o->idle_ms = 3000;
}

/* One option. @return 0, 1 for --help, -1 (message printed). The numeric
 * options' names come from bb_long_opts, which lists them in enum order. */
static int bb_option(struct bb_opts *o, int opt, const char *arg)
{
    int rc = bench_num_option(bb_nums, sizeof(bb_nums) / sizeof(bb_nums[0]), bb_long_opts, OPT_HOST,
                              opt, arg, o);

    if (rc <= 0)
        return rc;
    switch (opt) {
    case OPT_HOST:
        o->host = arg;
        return 0;
    case OPT_CHANNEL:
        o->channel = arg;
        return 0;
    case OPT_LABEL:
        o->label = arg;
        return 0;
    case OPT_REPLY_OFF:
        o->reply_off = 1;
        return 0;
    case OPT_PREFORMATTED:
        o->preformatted = 1;
        return 0;
    case OPT_JSON:
        o->json = 1;
        return 0;
    case OPT_HELP:
        return 1;
    default:
        return -1; /* getopt said what was wrong */
    }
}

/* The options of @p argv (argv[0] is the command). @return 0, 1 (--help), -1. */
static int bb_parse(int argc, char **argv, struct bb_opts *o, char *chan, size_t chan_cap)
{
    int opt, rc;

    bb_defaults(o, argv[0]);
    while ((opt = getopt_long(argc, argv, "", bb_long_opts, NULL)) != -1) {
        rc = bb_option(o, opt, optarg);
        if (rc != 0)
            return rc;
    }
    if (optind != argc || o->port == 0) {
        fprintf(stderr, BB_NAME ": %s\n", o->port == 0 ? "--port is required" : "stray argument");
        return -1;
    }
    if (o->window < o->batch) {
        fprintf(stderr, BB_NAME ": --window must be at least --batch\n");
        return -1;
    }
    if (o->channel == NULL) {
        snprintf(chan, chan_cap, "bb.%s", argv[0]);
        o->channel = chan;
    }
    return 0;
}

/* -------------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    char chan[64];
    struct bb_opts o;
    int rc;

    /* No command: say how to use us. */
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        bb_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? BENCH_EXIT_USAGE : BENCH_EXIT_OK;
    }
    rc = bb_parse(argc - 1, argv + 1, &o, chan, sizeof(chan));
    if (rc != 0) {
        bb_usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? BENCH_EXIT_OK : BENCH_EXIT_USAGE;
    }
    bench_signals_install();
    if (strcmp(argv[1], "pubsub") == 0)
        return bb_cmd_pubsub(&o);
    if (strcmp(argv[1], "fanout") == 0)
        return bb_cmd_fanout(&o);
    if (strcmp(argv[1], "pingpong") == 0)
        return bb_cmd_pingpong(&o);
    if (strcmp(argv[1], "idle") == 0)
        return bb_cmd_idle(&o);
    fprintf(stderr, BB_NAME ": unknown command '%s'\n", argv[1]);
    bb_usage(stderr);
    return BENCH_EXIT_USAGE;
}
