/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shmbus-bench: latency and throughput benchmarks of libshmbus, each next to
 * a baseline measured in the same run (the floor: bench_ring.c's one-line
 * ring between two processes, spinning or sleeping on futexes; for the path
 * through the daemon, the direct one), and the daemon's footprint. `shmbus-bench <command> --help`
 * describes a command. Every command prints human-readable lines and, last,
 * one line of key=value pairs (or, with --json, the same pairs as one JSON
 * object).
 */
#include <string.h>

#include "bench.h"

struct main_cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct main_cmd main_cmds[] = {
    {"pingpong", bench_cmd_pingpong, "round-trip/2 latency between two processes, vs a floor"},
    {"throughput", bench_cmd_throughput,
     "messages/s from one publisher to one subscriber, vs a floor"},
    {"fanout", bench_cmd_fanout, "publish cost with N sleeping (or lazy) subscribers, vs 1"},
    {"ack", bench_cmd_ack, "group throughput with acknowledgements, vs without"},
    {"pubonly", bench_cmd_pubonly, "publish with no subscriber (run under strace -c -f)"},
    {"registry", bench_cmd_registry, "shmbusd's memory with many topics and clients; lookups"},
    {"reaper", bench_cmd_reaper, "shmbusd's scan passes over a large bus; longest slice"},
    {"journal", bench_cmd_journal, "recording and replay throughput, publish latency recorded"},
#ifdef SHMBUS_BENCH_URING
    {"journal-io", bench_cmd_journal_io, "journal writes: write() + fdatasync vs io_uring"},
#endif
};

static void main_usage(FILE *f)
{
    fputs("usage: shmbus-bench <command> [options]\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < sizeof(main_cmds) / sizeof(main_cmds[0]); i++)
        fprintf(f, "  %-12s %s\n", main_cmds[i].name, main_cmds[i].summary);
    fputs("run `shmbus-bench <command> --help` for its options\n", f);
}

int main(int argc, char **argv)
{
    /* No command: say how to use us. */
    if (argc < 2) {
        main_usage(stderr);
        return BENCH_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        main_usage(stdout);
        return BENCH_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(main_cmds) / sizeof(main_cmds[0]); i++) {
        if (strcmp(argv[1], main_cmds[i].name) != 0)
            continue;
        bench_signals_install();
        /* The command sees itself as argv[0], so getopt starts at its options. */
        return main_cmds[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "shmbus-bench: unknown command '%s'\n", argv[1]);
    main_usage(stderr);
    return BENCH_EXIT_USAGE;
}
