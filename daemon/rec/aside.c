/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Set-aside journals (state.h sbr_aside_*): a journal that an earlier
 * topic of a name left (a topic removed at a daemon's stop and created
 * again from seq 0) is moved to DIR/NAME.old-NS rather than continued,
 * and stays part of its topic's history for --journal-retain: its files
 * count toward the size limit and go first (they are older than the
 * topic's journal), by age as any file, the newest included; a set-aside
 * journal left with no file is removed. Without retention everything is
 * kept, as for any journal.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rec/state.h"
#include "util/vec.h"

#define MS 1000000ull

/* One set-aside journal of a topic: its directory's name, and when it was
 * set aside (the NS of its name). */
struct aside {
    char name[SHMBUS_TOPIC_NAME_MAX + 1];
    uint64_t ns;
};

int sbr_aside_make(struct sbr_topic *rt, uint64_t last, uint64_t published)
{
    const struct sbd_rec *r = rt->rec;
    char aside[SHMBUS_TOPIC_NAME_MAX + 1];
    int rc;

    shmbus_journal_close(rt->j);
    rt->j = NULL;
    rc = shmbus_journal_set_aside(r->cfg->journal_dir, rt->t->name, aside, sizeof(aside));
    if (rc < 0)
        return rc;
    rt->asides = 1;
    sbd_log(SBD_WARN,
            "journal: topic %s: its journal ends at seq %llu but the topic had published only "
            "%llu messages when its recorder was made: it is an earlier topic's of that name, "
            "moved to %s/%s",
            rt->t->name, (unsigned long long)last, (unsigned long long)published,
            r->cfg->journal_dir, aside);
    return shmbus_journal_open(r->cfg->journal_dir, rt->t->name, &r->jopts, &rt->j);
}

/* Is @p name a set-aside journal of topic @p topic, as
 * shmbus_journal_set_aside() names them (docs/journal.md "Set-aside")?
 * Into *@p ns its time. A name cut to fit may be another long topic's:
 * shmbus_journal_retain() checks the files' topic. */
static int aside_of(const char *name, const char *topic, uint64_t *ns)
{
    const char *mark = strstr(name, SHMBUS_JOURNAL_ASIDE_MARK), *p;
    size_t plen, tlen = strlen(topic);
    uint64_t v = 0;

    if (mark == NULL)
        return 0;
    while ((p = strstr(mark + 1, SHMBUS_JOURNAL_ASIDE_MARK)) != NULL) /* the last one */
        mark = p;
    plen = (size_t)(mark - name);
    p = mark + strlen(SHMBUS_JOURNAL_ASIDE_MARK);
    if (*p == '\0' || strlen(p) > 20)
        return 0;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return 0;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (memcmp(name, topic, plen < tlen ? plen : tlen) != 0 || plen > tlen ||
        (plen < tlen && strlen(name) != SHMBUS_TOPIC_NAME_MAX))
        return 0;
    *ns = v;
    return 1;
}

static int aside_cmp(const void *a, const void *b)
{
    const struct aside *x = a, *y = b;

    return x->ns < y->ns ? 1 : x->ns > y->ns ? -1 : strcmp(x->name, y->name);
}

/* @p rt's set-aside journals, newest first, into a malloc'd *@p v.
 * @return how many, or -errno. */
static int aside_list(const struct sbr_topic *rt, struct aside **v)
{
    size_t n = 0, cap = 0;
    struct dirent *de;
    DIR *d = opendir(rt->rec->cfg->journal_dir);
    uint64_t ns;

    *v = NULL;
    if (d == NULL)
        return -errno;
    while ((de = readdir(d)) != NULL) {
        if (strlen(de->d_name) > SHMBUS_TOPIC_NAME_MAX || !aside_of(de->d_name, rt->t->name, &ns))
            continue;
        if (n >= 1u << 20 || SB_VEC_RESERVE(*v, cap, n, 1, 8) < 0) {
            closedir(d);
            free(*v);
            *v = NULL;
            return -ENOMEM;
        }
        memcpy((*v)[n].name, de->d_name, strlen(de->d_name) + 1);
        (*v)[n++].ns = ns;
    }
    closedir(d);
    if (n > 1)
        qsort(*v, n, sizeof(**v), aside_cmp);
    return (int)n;
}

/* Apply retention to set-aside journal @p a of @p rt with @p *budget
 * bytes to keep (UINT64_MAX: no limit), lowered by what it keeps (to 0
 * once it had to delete: older ones keep nothing more, oldest first).
 * @return 1 if it is still there. */
static int aside_retain(struct sbr_topic *rt, const struct aside *a, uint64_t *budget)
{
    const struct sbd_rec *r = rt->rec;
    uint64_t kept = 0;
    int rc = shmbus_journal_retain(r->cfg->journal_dir, a->name, rt->t->name, *budget,
                                   r->jopts.retain_ns, &kept);

    /* Not this topic's (a cut name of another long one), or gone. */
    if (rc == SHMBUS_ERR_BAD_MAGIC || rc == -ENOENT)
        return 0;
    if (rc < 0) {
        /* Once per error, not once a second. */
        if (rc != rt->aside_err)
            sbd_log(SBD_WARN, "journal: topic %s: retention of its set-aside journal %s/%s: %s",
                    rt->t->name, r->cfg->journal_dir, a->name, shmbus_strerror(rc));
        rt->aside_err = rc;
        return 1;
    }
    rt->aside_err = 0;
    if (*budget != UINT64_MAX)
        *budget = rc > 0 ? 0 : *budget - (kept < *budget ? kept : *budget);
    if (rc > 0) {
        sbr_count(&rt->count.aside_files, (uint64_t)rc);
        sbd_log(SBD_INFO,
                "journal: topic %s: retention deleted %d file%s of its set-aside "
                "journal %s/%s%s",
                rt->t->name, rc, rc == 1 ? "" : "s", r->cfg->journal_dir, a->name,
                kept == 0 ? ", now gone" : "");
    }
    return kept != 0;
}

void sbr_aside_retain(struct sbr_topic *rt, uint64_t now)
{
    const struct sbd_rec *r = rt->rec;
    uint64_t budget = UINT64_MAX;
    shmbus_journal_summary s;
    struct aside *v;
    int n, left = 0;

    /* No retention: everything is kept. None left: nothing to look at. */
    if ((r->jopts.retain_bytes == 0 && r->jopts.retain_ns == 0) || !rt->asides ||
        now - rt->aside_ns < SBR_RETAIN_MS * MS)
        return;
    rt->aside_ns = now;
    n = aside_list(rt, &v);
    if (n < 0) {
        sbd_log(SBD_WARN, "journal: topic %s: cannot list %s for set-aside journals: %s",
                rt->t->name, r->cfg->journal_dir, shmbus_strerror(n));
        return;
    }
    /* The topic's journal is the newest part of its history: its bytes
     * come off the limit first. */
    if (r->jopts.retain_bytes != 0) {
        budget = 0;
        if (shmbus_journal_summary_get(r->cfg->journal_dir, rt->t->name, &s) != 0)
            s.bytes = 0;
        if (s.bytes < r->jopts.retain_bytes)
            budget = r->jopts.retain_bytes - s.bytes;
    }
    for (int i = 0; i < n; i++)
        left += aside_retain(rt, &v[i], &budget);
    free(v);
    rt->asides = left > 0;
}
