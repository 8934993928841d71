/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `shmbus journal`: list the journals of a directory (shmbus/journal.h),
 * one row per topic: first and last seq and publish time, records, gaps,
 * bytes and files, from the files' headers and indexes. With --verify it
 * reads every record of each topic instead, names each damaged one (file,
 * offset, the last good seq, what is wrong) and exits 1 if it found any.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "shmbus/journal.h"
#include "util/name.h"
#include "util/timefmt.h"
#include "util/vec.h"

typedef char jl_name[SHMBUS_TOPIC_NAME_MAX + 1];

struct jl_args {
    const char *dir;
    char **topics; /* borrowed from argv; n_topics 0: every journal in dir */
    int n_topics;
    int verify;
};

void cli_journal_usage(FILE *f)
{
    fprintf(f, "usage: shmbus journal --dir DIR [--verify] [TOPIC...]\n"
               "List the journals in DIR (all, or those of the TOPICs named), one line\n"
               "each: first and last seq, first and last publish time (RFC 3339, UTC),\n"
               "messages recorded, gap records (and the messages they stand for),\n"
               "bytes and files. Times and seqs are '-' for a journal with no message.\n"
               "\n"
               "  --dir DIR   directory of the journals (as given to `shmbus record`)\n"
               "  --verify    read every record and check it; name each damaged one\n"
               "              (file, offset, the last good seq before it, what is\n"
               "              wrong) on stderr\n"
               "  --help      this text\n"
               "Exit status: 0 listed (or verified, nothing damaged), 1 a damaged record,\n"
               "a missing directory, no journal, or another failure (named), 2 bad usage.\n");
}

enum { OPT_DIR = 256, OPT_VERIFY, OPT_HELP };

static const struct option jl_opts[] = {{"dir", required_argument, NULL, OPT_DIR},
                                        {"verify", no_argument, NULL, OPT_VERIFY},
                                        {"help", no_argument, NULL, OPT_HELP},
                                        {NULL, 0, NULL, 0}};

/* @return 0, CLI_HELP, or CLI_EXIT_USAGE (reported). */
static int jl_parse(int argc, char **argv, struct jl_args *a)
{
    int opt;

    while ((opt = getopt_long(argc, argv, "", jl_opts, NULL)) != -1) {
        if (opt == OPT_DIR)
            a->dir = optarg;
        else if (opt == OPT_VERIFY)
            a->verify = 1;
        else if (opt == OPT_HELP)
            return CLI_HELP;
        else
            return cli_usage_hint(argv[0]); /* getopt printed what was wrong */
    }
    if (a->dir == NULL)
        return cli_usage_err(argv[0], "no --dir given");
    a->topics = argv + optind;
    a->n_topics = argc - optind;
    for (int i = 0; i < a->n_topics; i++) {
        if (!sb_name_valid(a->topics[i], SHMBUS_TOPIC_NAME_MAX))
            return cli_usage_err(argv[0], "bad topic name '%s': " SB_NAME_TOPIC_RULE, a->topics[i]);
    }
    return 0;
}

/* Report a directory or journal that cannot be read, in the user's words. */
static void jl_err(const char *dir, const char *topic, int rc)
{
    const char *why = rc == -ENOENT
                          ? (topic ? " (no journal of that topic)" : " (no such directory)")
                      : rc == -ENOTDIR ? " (not a directory)"
                      : rc == -ELOOP   ? " (a symbolic link there: a journal never follows one)"
                      : rc == SHMBUS_ERR_BAD_MAGIC ? " (a file there is not a journal file)"
                      : rc == SHMBUS_ERR_VERSION   ? " (a journal of another format version)"
                                                   : "";

    cli_err("cannot read %s%s%s: %s%s", dir, topic ? "/" : "", topic ? topic : "",
            shmbus_strerror(rc), why);
}

/*
 * The names of every journal in @p dir, sorted, into *out (the caller
 * frees it). @return how many (0: none); -1 (reported).
 */
static int jl_list(const char *dir, jl_name **out)
{
    jl_name *names = NULL;
    size_t cap = 0;
    int n = 0;

    /* The listing says how many there are: grow until they fit. Directories
     * come and go meanwhile, so try again while it grew. */
    for (;;) {
        n = shmbus_journal_list(dir, names, (unsigned)cap);
        if (n < 0 || (size_t)n <= cap)
            break;
        if (SB_VEC_RESERVE(names, cap, 0, (size_t)n, 16) < 0) {
            n = -ENOMEM;
            break;
        }
    }
    if (n < 0) {
        jl_err(dir, NULL, n);
        free(names);
        return -1;
    }
    *out = names;
    return n;
}

/* A seq or time cell: '-' for an empty journal. */
static const char *jl_seq(uint64_t seq, int empty, char *buf, size_t len)
{
    if (empty)
        return "-";
    snprintf(buf, len, "%llu", (unsigned long long)seq);
    return buf;
}

static void jl_header(void)
{
    printf("%-24s %12s %12s %-30s %-30s %12s %8s %12s %14s %6s\n", "TOPIC", "FIRST_SEQ", "LAST_SEQ",
           "FIRST_TIME", "LAST_TIME", "RECORDS", "GAPS", "GAP_MSGS", "BYTES", "FILES");
}

/* One topic's row. @return 0; -1 (reported). */
static int jl_row(const char *dir, const char *topic)
{
    char first[24], last[24], t0[SB_TIME_STR_LEN], t1[SB_TIME_STR_LEN];
    shmbus_journal_summary s;
    int rc = shmbus_journal_summary_get(dir, topic, &s), empty;

    if (rc < 0) {
        jl_err(dir, topic, rc);
        return -1;
    }
    empty = s.records == 0;
    printf("%-24s %12s %12s %-30s %-30s %12llu %8llu %12llu %14llu %6u\n", topic,
           jl_seq(s.first_seq, empty, first, sizeof(first)),
           jl_seq(s.last_seq, empty, last, sizeof(last)),
           empty ? "-" : sb_time_format(s.first_time_ns, t0),
           empty ? "-" : sb_time_format(s.last_time_ns, t1), (unsigned long long)s.records,
           (unsigned long long)s.gaps, (unsigned long long)s.gap_messages,
           (unsigned long long)s.bytes, s.files);
    return 0;
}

/* Name the damaged record @p r skipped last. */
static void jl_damage(const char *dir, const char *topic, const shmbus_journal_reader *r)
{
    shmbus_journal_damage d;
    char seq[24];

    if (shmbus_journal_reader_damage(r, &d) < 0)
        return; /* the reader keeps none: nothing more to say */
    d.file[sizeof(d.file) - 1] = '\0';
    d.what[sizeof(d.what) - 1] = '\0';
    if (d.seq == UINT64_MAX)
        snprintf(seq, sizeof(seq), "none");
    else
        snprintf(seq, sizeof(seq), "%llu", (unsigned long long)d.seq);
    cli_err("%s/%s/%s: damaged record at offset %llu (last good seq %s): %s; %llu bytes skipped",
            dir, topic, d.file, (unsigned long long)d.offset, seq, d.what,
            (unsigned long long)d.skipped);
}

/* Read every record of @p topic. @return damaged records; -1 (reported). */
static int64_t jl_verify(const char *dir, const char *topic)
{
    shmbus_journal_reader *r;
    shmbus_journal_record rec;
    uint64_t records = 0, gaps = 0, damaged = 0;
    int rc = shmbus_journal_reader_open(dir, topic, &r);

    if (rc < 0) {
        jl_err(dir, topic, rc);
        return -1;
    }
    while ((rc = shmbus_journal_next(r, &rec)) != 0) {
        if (rc == SHMBUS_ERR_CORRUPT) {
            damaged++;
            jl_damage(dir, topic, r);
        } else if (rc < 0) {
            jl_err(dir, topic, rc);
            break;
        } else if (rec.flags & SHMBUS_JOURNAL_GAP) {
            gaps++;
        } else {
            records++;
        }
    }
    shmbus_journal_reader_close(r);
    printf("%s: %llu records, %llu gaps, %llu damaged%s\n", topic, (unsigned long long)records,
           (unsigned long long)gaps, (unsigned long long)damaged,
           rc < 0 ? " (stopped at an error)" : "");
    return rc < 0 ? -1 : (int64_t)damaged;
}

/* List or verify @p n topics. @return an exit status. */
static int jl_topics(const struct jl_args *a, const char *const *topics, int n)
{
    int status = CLI_EXIT_OK;

    if (!a->verify)
        jl_header();
    for (int i = 0; i < n; i++) {
        if (a->verify ? jl_verify(a->dir, topics[i]) != 0 : jl_row(a->dir, topics[i]) < 0)
            status = CLI_EXIT_FAIL;
    }
    return status;
}

static int jl_run(const struct jl_args *a)
{
    const char **topics;
    jl_name *names = NULL;
    int n, rc;

    n = jl_list(a->dir, &names);
    /* The directory is missing, not one, or unreadable. */
    if (n < 0)
        return CLI_EXIT_FAIL;
    /* Topics named: those, in the order given. */
    if (a->n_topics > 0) {
        free(names);
        return jl_topics(a, (const char *const *)a->topics, a->n_topics);
    }
    if (n == 0) {
        cli_err("%s holds no journal", a->dir);
        free(names);
        return CLI_EXIT_FAIL;
    }
    topics = calloc((size_t)n, sizeof(*topics));
    if (topics == NULL) {
        cli_err("out of memory");
        free(names);
        return CLI_EXIT_FAIL;
    }
    for (int i = 0; i < n; i++)
        topics[i] = names[i];
    rc = jl_topics(a, topics, n);
    free(topics);
    free(names);
    return rc;
}

int cli_journal_main(const char *bus, int argc, char **argv)
{
    struct jl_args a = {0};
    int rc = jl_parse(argc, argv, &a);

    (void)bus; /* journals are files: no bus */
    /* --help, or a usage error already reported. */
    if (rc == CLI_HELP)
        cli_journal_usage(stdout);
    if (rc != 0)
        return rc == CLI_HELP ? CLI_EXIT_OK : rc;
    rc = jl_run(&a);
    return cli_flush() < 0 ? CLI_EXIT_FAIL : rc;
}
