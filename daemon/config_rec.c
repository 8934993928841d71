/*
 * shmbusd's recording options (--record, --journal-*): parsed and checked
 * for config.c (config_int.h), with their part of the usage text. The
 * journal directory is checked at start (it exists, is a directory, and
 * the daemon may write there), so that a wrong one stops the daemon with
 * a clear message instead of every topic failing to record later.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_int.h"
#include "shmbus/journal.h"

/* --journal-segment-size's bounds (journal.h shmbus_journal_opts). */
#define REC_SEGMENT_MIN (64ull << 10)
#define REC_SEGMENT_MAX (1ull << 40)

void sbd_config_rec_usage(FILE *f)
{
    fprintf(f,
            "Recording topics to disk (off unless --record is given; docs/journal.md):\n"
            "  --record PATTERN    record the topics PATTERN (a Redis glob) matches, those\n"
            "                      created later included, each from its first message\n"
            "                      (repeatable; needs --journal-dir)\n"
            "  --journal-dir DIR   where the journals go, one directory per topic; DIR\n"
            "                      must exist and be writable when the daemon starts\n"
            "  --journal-segment-size SIZE  start a new file at this size (default 64M;\n"
            "                      64K to 1024G)\n"
            "  --journal-retain SIZE|AGE|SIZE,AGE  delete a topic's oldest files while its\n"
            "                      files hold more than SIZE bytes (K, M, G), or when their\n"
            "                      newest record is older than AGE (a number and s, m, h or\n"
            "                      d, lower case: 10m is ten minutes, 10M ten MiB); its\n"
            "                      set-aside journals (TOPIC.old-NS) count, and go first\n"
            "                      (default: keep everything)\n"
            "  --journal-sync none|batch|MS  when what is written is made durable with\n"
            "                      fdatasync: never (the kernel's write-back), after\n"
            "                      every batch, or every MS ms (1 to %u). A reliable\n"
            "                      topic keeps in its ring what is not durable yet\n"
            "                      (default batch)\n",
            SBD_REC_SYNC_MAX_MS);
}

/* An AGE: a positive number and s, m, h or d. @return 0 or -1. */
static int rec_age(const char *s, uint64_t *ns)
{
    static const struct {
        char unit;
        uint64_t s;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
    size_t len = strlen(s);
    uint32_t v;
    char num[16];

    if (len < 2 || len - 1 >= sizeof(num))
        return -1;
    memcpy(num, s, len - 1);
    num[len - 1] = '\0';
    if (sbd_config_u32(num, &v) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (s[len - 1] != units[i].unit)
            continue;
        if ((uint64_t)v * units[i].s > SBD_REC_AGE_MAX_S)
            return -1; /* its ns would not fit 64 bits */
        *ns = (uint64_t)v * units[i].s * 1000000000ull;
        return 0;
    }
    return -1;
}

/* One part of --journal-retain: an AGE if it ends in a lower-case s, m,
 * h or d, else a SIZE. Each kind at most once. @return 0 or -1. */
static int rec_retain_part(struct sbd_config *c, const char *s, int *ages, int *sizes)
{
    size_t len = strlen(s);

    if (len > 0 && strchr("smhd", s[len - 1]) != NULL) {
        (*ages)++;
        return *ages > 1 ? -1 : rec_age(s, &c->journal_retain_ns);
    }
    (*sizes)++;
    return *sizes > 1 ? -1 : sbd_config_size(s, &c->journal_retain_bytes);
}

/* --journal-retain SIZE|AGE|SIZE,AGE (either order). @return 0 or -1. */
static int rec_retain(struct sbd_config *c, const char *s)
{
    const char *comma = strchr(s, ',');
    int ages = 0, sizes = 0;
    char first[32];

    c->journal_retain_bytes = 0;
    c->journal_retain_ns = 0;
    if (comma == NULL)
        return rec_retain_part(c, s, &ages, &sizes);
    if ((size_t)(comma - s) >= sizeof(first) || strchr(comma + 1, ',') != NULL)
        return -1;
    memcpy(first, s, (size_t)(comma - s));
    first[comma - s] = '\0';
    if (rec_retain_part(c, first, &ages, &sizes) < 0)
        return -1;
    return rec_retain_part(c, comma + 1, &ages, &sizes);
}

/* --journal-sync none|batch|MS. @return 0 or -1. */
static int rec_sync(struct sbd_config *c, const char *s)
{
    uint32_t ms;

    c->journal_sync_ms = 0;
    if (strcmp(s, "none") == 0) {
        c->journal_sync = SHMBUS_JOURNAL_SYNC_NONE;
        return 0;
    }
    if (strcmp(s, "batch") == 0) {
        c->journal_sync = SHMBUS_JOURNAL_SYNC_BATCH;
        return 0;
    }
    if (sbd_config_u32(s, &ms) < 0 || ms > SBD_REC_SYNC_MAX_MS)
        return -1;
    c->journal_sync = SHMBUS_JOURNAL_SYNC_INTERVAL;
    c->journal_sync_ms = ms;
    return 0;
}

int sbd_config_rec_option(struct sbd_config *c, int opt, const char *arg)
{
    size_t len = strlen(arg);
    int bad = 0;

    switch (opt) {
    case SBD_OPT_RECORD:
        if (c->n_rec == SBD_REC_PATTERNS_MAX) {
            fprintf(stderr, "shmbusd: at most %d --record patterns\n", SBD_REC_PATTERNS_MAX);
            return -1;
        }
        bad = len == 0 || len > SHMBUS_TOPIC_NAME_MAX;
        if (!bad)
            memcpy(c->rec_glob[c->n_rec++], arg, len + 1);
        break;
    case SBD_OPT_JDIR:
        bad = len == 0 || len > SBD_PATH_MAX;
        if (!bad)
            memcpy(c->journal_dir, arg, len + 1);
        break;
    case SBD_OPT_JSEG:
        bad = sbd_config_size(arg, &c->journal_segment_size) ||
              c->journal_segment_size < REC_SEGMENT_MIN ||
              c->journal_segment_size > REC_SEGMENT_MAX;
        break;
    case SBD_OPT_JRETAIN:
        bad = rec_retain(c, arg);
        break;
    default: /* SBD_OPT_JSYNC */
        bad = rec_sync(c, arg);
        break;
    }
    if (bad)
        fprintf(stderr, "shmbusd: bad value '%s' (see --help)\n", arg);
    return bad ? -1 : 0;
}

/* The journal directory: made absolute (clients are told it, from their
 * own working directories), a directory the daemon may create in. */
static int rec_dir_check(struct sbd_config *c)
{
    char abs[PATH_MAX];
    struct stat st;

    if (realpath(c->journal_dir, abs) == NULL) {
        fprintf(stderr, "shmbusd: --journal-dir %s: %s\n", c->journal_dir, strerror(errno));
        return -1;
    }
    if (stat(abs, &st) < 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "shmbusd: --journal-dir %s: not a directory\n", c->journal_dir);
        return -1;
    }
    if (faccessat(AT_FDCWD, abs, W_OK | X_OK, AT_EACCESS) < 0) {
        fprintf(stderr, "shmbusd: --journal-dir %s: cannot write there: %s\n", c->journal_dir,
                strerror(errno));
        return -1;
    }
    if (strlen(abs) > SBD_PATH_MAX) {
        fprintf(stderr, "shmbusd: --journal-dir %s: its absolute path is over %d bytes\n",
                c->journal_dir, SBD_PATH_MAX);
        return -1;
    }
    memcpy(c->journal_dir, abs, strlen(abs) + 1);
    return 0;
}

int sbd_config_rec_finish(struct sbd_config *c)
{
    if (c->n_rec == 0) {
        /* Any recording option that changed a value needs --record. */
        if (c->journal_dir[0] != '\0' || c->journal_segment_size != 0 ||
            c->journal_retain_bytes != 0 || c->journal_retain_ns != 0 ||
            c->journal_sync != SBD_REC_SYNC_DEFAULT || c->journal_sync_ms != 0) {
            fprintf(stderr, "shmbusd: --journal-dir and the --journal-* options need "
                            "--record PATTERN\n");
            return -1;
        }
        return 0;
    }
    if (c->journal_dir[0] == '\0') {
        fprintf(stderr, "shmbusd: --record needs --journal-dir DIR\n");
        return -1;
    }
    return rec_dir_check(c);
}
