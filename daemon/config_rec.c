/* SPDX-License-Identifier: Apache-2.0 */
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
            SB_UNITS_SYNC_MAX_MS);
}

/* Say what option @p opt (one of SBD_OPT_RECORD..JSYNC) wants, and that
 * @p arg is not it. */
static void rec_bad_value(int opt, const char *arg)
{
    switch (opt) {
    case SBD_OPT_RECORD:
        fprintf(stderr, "shmbusd: --record wants a pattern of 1 to %d bytes, not '%s'\n",
                SHMBUS_TOPIC_NAME_MAX, arg);
        break;
    case SBD_OPT_JDIR:
        fprintf(stderr, "shmbusd: --journal-dir wants a path of 1 to %d bytes, not '%s'\n",
                SBD_PATH_MAX, arg);
        break;
    case SBD_OPT_JSEG:
        fprintf(stderr,
                "shmbusd: --journal-segment-size wants a size from 64K to 1024G, not '%s'\n", arg);
        break;
    case SBD_OPT_JRETAIN:
        fprintf(stderr, "shmbusd: --journal-retain wants " SB_UNITS_RETAIN_WANTS ", not '%s'\n",
                arg);
        break;
    default: /* SBD_OPT_JSYNC */
        fprintf(stderr, "shmbusd: --journal-sync wants " SB_UNITS_SYNC_WANTS ", not '%s'\n", arg);
        break;
    }
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
        bad = sb_units_size(arg, &c->journal_segment_size) ||
              c->journal_segment_size < SB_UNITS_SEGMENT_MIN ||
              c->journal_segment_size > SB_UNITS_SEGMENT_MAX;
        break;
    case SBD_OPT_JRETAIN:
        bad = sb_units_retain(arg, &c->journal_retain_bytes, &c->journal_retain_ns);
        break;
    default: /* SBD_OPT_JSYNC */
        bad = sb_units_sync(arg, &c->journal_sync, &c->journal_sync_ms);
        break;
    }
    if (bad)
        rec_bad_value(opt, arg);
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
