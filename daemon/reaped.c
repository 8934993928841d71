/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "reaped" events (reaped.h): a table of (process, topic) pairs with
 * their counts, each told as one event once two reaper passes have ended
 * since its first note. Looked up linearly: pairs come from deaths, and
 * are told within two passes (tens of milliseconds), so the table holds
 * the pairs of the processes that died in that time; it never holds more
 * than SBD_REAPED_MAX.
 */
#include "reaped.h"

#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "registry.h"
#include "util/vec.h"

struct reaped_pair {
    struct sbd_topic *t;
    uint32_t pid;
    uint32_t passes; /* pass ends since the first note */
    uint32_t n[SBD_REAPED_WHATS];
};

static struct {
    struct reaped_pair *v;
    uint32_t n;
    size_t cap;
} rp;

/* Tell pair @p p. */
static void reaped_tell(const struct reaped_pair *p)
{
    struct sbd_ev_field f[] = {
        SBD_EV_U("pid", p->pid),
        SBD_EV_S("topic", p->t->name),
        SBD_EV_U("slots", p->n[SBD_REAPED_SLOTS]),
        SBD_EV_U("publishers", p->n[SBD_REAPED_PUBLISHERS]),
        SBD_EV_U("claims_ended", p->n[SBD_REAPED_CLAIMS]),
        SBD_EV_U("returned", p->n[SBD_REAPED_RETURNED]),
    };

    sbd_event("reaped", f, sizeof(f) / sizeof(f[0]));
}

/* Tell and drop pair @p i; the last one takes its place. */
static void reaped_drop(uint32_t i)
{
    reaped_tell(&rp.v[i]);
    rp.v[i] = rp.v[--rp.n];
}

void sbd_reaped_note(struct sbd_topic *t, uint32_t pid, enum sbd_reaped_what what, uint32_t n)
{
    struct reaped_pair one = {.t = t, .pid = pid};
    uint32_t i = 0;

    while (i < rp.n && (rp.v[i].t != t || rp.v[i].pid != pid))
        i++;
    if (i < rp.n) {
        rp.v[i].n[what] += n;
        return;
    }
    /* Full (thousands of deaths within two passes): one pair is told
     * early to make room; its process may get a second event for that
     * topic, and no count is lost. */
    if (rp.n == SBD_REAPED_MAX)
        reaped_drop(0);
    if (SB_VEC_RESERVE(rp.v, rp.cap, rp.n, 1, 16) < 0) {
        /* No memory to wait: told alone, a process may get two events
         * for one topic; its counts are still all told. */
        one.n[what] = n;
        reaped_tell(&one);
        return;
    }
    one.n[what] = n;
    rp.v[rp.n++] = one;
}

void sbd_reaped_pass_end(void)
{
    for (uint32_t i = 0; i < rp.n;) {
        if (++rp.v[i].passes >= 2)
            reaped_drop(i); /* entry i is the last one now, not looked at yet */
        else
            i++;
    }
}

void sbd_reaped_flush(void)
{
    while (rp.n > 0)
        reaped_drop(rp.n - 1);
    free(rp.v);
    rp.v = NULL;
    rp.cap = 0;
}
