/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stall timeouts (stall.h). For every gate of a reliable topic (a plain
 * subscriber's position, a group member's hold, a group's cursor) and
 * every live publisher's claim, the daemon remembers where it stood and
 * since when. A gate that stays at one seq while the ring is full against
 * it (tail == gate + capacity: publishers cannot claim) for the timeout is
 * a stalled reader: its slot is evicted (for a group's cursor, every
 * member). An acknowledged group's lowest pending message is a gate too:
 * held by a member, that member is the stalled reader (evicted, which
 * gives its messages back); held in the name of a slot that is no member
 * of the group, it is given back to the group; waiting for redelivery
 * (nobody takes it, or its nack delay runs past the timeout), it is
 * dead-lettered, reason
 * STALLED (the dead-letter pass moves it, deadletter.h); one being
 * dead-lettered is the dead-letter pass's to retry, never dropped. A
 * claim that stays on one seq for the timeout is ended. The
 * marks live here, in the daemon; a restarted daemon starts counting
 * afresh.
 */
#include "stall.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "log.h"
#include "registry/admin.h"

/* Where a gate or claim stood (UINT64_MAX: nowhere), and since when. */
struct stall_mark {
    uint64_t at;
    int64_t since_ms;
};

/* Where an acknowledged group's lowest pending message stood: which
 * entry, its seq and who held it (0: nobody, waiting for redelivery). A
 * change of any starts the count afresh: a message just given back by an
 * evicted member gets the whole timeout to be taken again. */
struct ack_mark {
    struct stall_mark m; /* at: the seq */
    uint32_t entry, owner;
};

struct sbd_stall {
    struct stall_mark *slots, *groups, *pubs;
    struct ack_mark *acks; /* per group */
};

void sbd_stall_free(struct sbd_stall *s)
{
    if (s == NULL)
        return;
    free(s->slots);
    free(s->groups);
    free(s->pubs);
    free(s->acks);
    free(s);
}

static void marks_clear(struct stall_mark *m, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        m[i].at = UINT64_MAX;
}

/* The topic's marks, made on first use. @return NULL out of memory. */
static struct sbd_stall *stall_of(struct sbd_topic *t)
{
    struct sbd_stall *s = t->stall;

    if (s != NULL)
        return s;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->slots = calloc(t->info.max_subscribers, sizeof(*s->slots));
    s->groups = calloc(t->info.max_groups, sizeof(*s->groups));
    s->pubs = calloc(t->info.max_publishers, sizeof(*s->pubs));
    s->acks = calloc(t->info.max_groups, sizeof(*s->acks));
    if (s->slots == NULL || (s->groups == NULL && t->info.max_groups > 0) || s->pubs == NULL ||
        (s->acks == NULL && t->info.max_groups > 0)) {
        sbd_stall_free(s);
        return NULL;
    }
    marks_clear(s->slots, t->info.max_subscribers);
    marks_clear(s->groups, t->info.max_groups);
    marks_clear(s->pubs, t->info.max_publishers);
    for (uint32_t g = 0; g < t->info.max_groups; g++)
        s->acks[g].m.at = UINT64_MAX;
    t->stall = s;
    return s;
}

/* Move mark @p m to @p at (held: still standing there) at @p now.
 * @return how long it has stood at @p at, 0 if it just moved or is not
 * held. */
static int64_t mark_held(struct stall_mark *m, int held, uint64_t at, int64_t now)
{
    if (!held || m->at != at) {
        m->at = held ? at : UINT64_MAX;
        m->since_ms = now;
        return 0;
    }
    return now - m->since_ms;
}

/* The name of the group slot @p i of @p t is a member of into @p out
 * ("" for none, an unnamed group, or no memory to look): the slots up to
 * @p i, read as monitors read them. Evictions are rare. */
static void slot_group_name(const struct sbd_topic *t, uint32_t i,
                            char out[SHMBUS_GROUP_NAME_MAX + 1])
{
    shmbus_slot_info *v = calloc((size_t)i + 1, sizeof(*v));
    int n;

    out[0] = '\0';
    if (v == NULL)
        return;
    n = shmbus_topic_slots_get(t->t, v, i + 1);
    for (int k = 0; k < n && k <= (int)i; k++)
        if (v[k].index == i)
            memcpy(out, v[k].group_name, SHMBUS_GROUP_NAME_MAX + 1);
    free(v);
}

/* Tell that slot @p i of @p t (owner @p pid) was evicted after @p held ms. */
static void evict_event(const struct sbd_topic *t, uint32_t i, uint32_t pid, int64_t held)
{
    char group[SHMBUS_GROUP_NAME_MAX + 1];
    struct sbd_ev_field f[5] = {
        SBD_EV_S("topic", t->name),
        SBD_EV_U("slot", i),
        SBD_EV_U("pid", pid),
        SBD_EV_U("held_ms", held),
    };

    slot_group_name(t, i, group);
    f[4] = SBD_EV_S("group", group);
    sbd_event("evicted", f, group[0] != '\0' ? 5 : 4);
}

/* @return 1 evicted, 0 not (it left meanwhile). */
static uint32_t evict_slot(struct sbd_topic *t, uint32_t i, uint64_t at, int64_t held)
{
    uint32_t pid = 0;
    uint64_t start;

    sb_admin_owner(t->t, SB_ADMIN_SLOT, i, &pid, &start);
    if (!sb_admin_slot_evict(t->t, i))
        return 0;
    sbd_log(SBD_WARN,
            "topic %s: subscriber slot %u (pid %u) held publishers back at seq %llu for "
            "%lld ms: evicted",
            t->name, i, pid, (unsigned long long)at, (long long)held);
    evict_event(t, i, pid, held);
    return 1;
}

/* The topic's marks, or NULL (out of memory: said once per topic; once
 * made, the marks stay until the topic goes, so there is no later
 * failure to say). */
static struct sbd_stall *stall_get(struct sbd_topic *t)
{
    struct sbd_stall *s = stall_of(t);

    if (s == NULL && !t->stall_nomem) {
        t->stall_nomem = 1;
        sbd_log(SBD_WARN, "topic %s: out of memory: stall timeout not enforced now", t->name);
    }
    return s;
}

int sbd_stall_gates(const struct sbd_topic *t)
{
    return t->info.stall_timeout_ms != 0 && t->info.mode == SHMBUS_RELIABLE;
}

int sbd_stall_claims(const struct sbd_topic *t)
{
    /* An exclusive topic's holder is the only writer of its cells: its
     * claim is never taken while it lives. */
    return t->info.stall_timeout_ms != 0 && !(t->info.flags & SHMBUS_TOPIC_EXCLUSIVE);
}

void sbd_stall_slot(struct sbd_topic *t, uint32_t i, uint64_t tail, int64_t now)
{
    struct sbd_stall *s = stall_get(t);
    uint64_t at = 0;
    int held;
    int64_t ms;

    if (s == NULL)
        return; /* said in stall_get() */
    /* A kept slot (a persisted topic's exporter, registry/relay.h) gates
     * until JetStream acknowledged: evicting it would lose what it has not
     * sent yet. Publishers wait instead, as for any subscriber of a topic
     * without a stall timeout. */
    held = !sb_admin_slot_kept(t->t, i) && sb_admin_slot_gate(t->t, i, tail, &at);
    ms = mark_held(&s->slots[i], held, at, now);
    if (held && ms >= (int64_t)t->info.stall_timeout_ms)
        evict_slot(t, i, at, ms);
}

void sbd_stall_group(struct sbd_topic *t, uint32_t g, uint64_t tail, int64_t now)
{
    struct sbd_stall *s = stall_get(t);
    uint64_t at = 0;
    uint32_t evicted = 0;
    int held;
    int64_t ms;

    if (s == NULL)
        return; /* said in stall_get() */
    held = sb_admin_group_gate(t->t, g, tail, &at);
    ms = mark_held(&s->groups[g], held, at, now);
    if (!held || ms < (int64_t)t->info.stall_timeout_ms)
        return;
    /* At most SBD_STALL_EVICT_MAX members per look, each eviction costing
     * a look at every slot: a cursor word scribbled to claim members
     * stays held, and the next pass evicts the next ones. */
    for (uint32_t i = 0; i < t->info.max_subscribers && evicted < SBD_STALL_EVICT_MAX; i++)
        if (sb_admin_slot_member_of(t->t, i, g))
            evicted += evict_slot(t, i, at, ms);
}

void sbd_stall_acks(struct sbd_topic *t, uint32_t g, uint64_t tail, int64_t now)
{
    char group[SHMBUS_GROUP_NAME_MAX + 1];
    struct sbd_stall *s = stall_get(t);
    uint64_t seq = 0;
    uint32_t entry = 0, owner = 0;
    int held;
    int64_t ms;

    if (s == NULL)
        return; /* said in stall_get() */
    /* Full against it: publishers are a capacity ahead and cannot claim. */
    held = sb_admin_ack_gate(t->t, g, &seq, &entry, &owner) && tail >= seq &&
           tail - seq >= t->info.capacity;
    if (s->acks[g].entry != entry || s->acks[g].owner != owner) {
        s->acks[g].entry = entry;
        s->acks[g].owner = owner;
        s->acks[g].m.at = UINT64_MAX; /* another message, or another holder */
    }
    ms = mark_held(&s->acks[g].m, held, seq, now);
    if (!held || ms < (int64_t)t->info.stall_timeout_ms)
        return;
    if (owner != 0 && sb_admin_ack_unowned(t->t, g, entry, owner)) {
        /* Held in the name of no member: nobody to evict, given back. */
        sb_admin_group_name(t->t, g, group);
        sbd_log(SBD_WARN,
                "topic %s: group %s: seq %llu held back publishers for %lld ms, held by slot "
                "%u, which is no member of the group: given back",
                t->name, group[0] ? group : "?", (unsigned long long)seq, (long long)ms, owner - 1);
        return;
    }
    if (owner != 0) {
        /* Held by a member: it stalls, as any reader would. */
        if (owner <= t->info.max_subscribers)
            evict_slot(t, owner - 1, seq, ms);
        return;
    }
    /* Waiting for redelivery (a DEAD one, being dead-lettered, is not
     * moved: sb_admin_ack_stalled() says 0). */
    if (sb_admin_ack_stalled(t->t, g, entry) != 1)
        return;
    sb_admin_group_name(t->t, g, group); /* "" if the segment has none */
    sbd_log(SBD_WARN,
            "topic %s: group %s: seq %llu waited for redelivery while holding publishers back "
            "for %lld ms: to its dead-letter topic",
            t->name, group[0] ? group : "?", (unsigned long long)seq, (long long)ms);
}

/* Hand on what record @p i's last ended claim left on its cell, if
 * anything (admin.h sb_admin_pub_unblock(), resumed): the record keeps
 * that claim, so a look after a lost race, or by a daemon that replaced
 * the one that ended it, finishes the job. One stamp load when done.
 * @return 0, or -EAGAIN while another writer is in flight on the cell. */
static int claim_finish(struct sbd_topic *t, uint32_t i)
{
    uint64_t seq;

    if (!sb_admin_pub_ended(t->t, i, &seq))
        return 0;
    return sb_admin_pub_unblock(t->t, i, seq, 1) == -EAGAIN ? -EAGAIN : 0;
}

void sbd_stall_claim(struct sbd_topic *t, uint32_t i, int64_t now)
{
    struct sbd_stall *s = stall_get(t);
    uint64_t seq = 0, start;
    uint32_t pid = 0;
    int held, rest;
    int64_t ms;

    if (s == NULL)
        return; /* said in stall_get() */
    held = sb_admin_pub_claim(t->t, i, &seq);
    ms = mark_held(&s->pubs[i], held, seq, now);
    /* Not a new end while the last one is unfinished: its record's ended
     * is all that remembers it. */
    if (claim_finish(t, i) < 0)
        return;
    if (!held || ms < (int64_t)t->info.stall_timeout_ms)
        return;
    rest = sb_admin_pub_end_rest(t->t, i, seq);
    if (rest > 0)
        sbd_log(SBD_WARN,
                "topic %s: publisher stalled %lld ms inside a batch at seq %llu: its %d "
                "unwritten seqs after it ended, readers count them lost",
                t->name, (long long)ms, (unsigned long long)seq, rest);
    if (sb_admin_pub_unblock(t->t, i, seq, 0) != 1)
        return;
    sb_admin_owner(t->t, SB_ADMIN_PUB, i, &pid, &start);
    sbd_log(SBD_WARN,
            "topic %s: publisher (pid %u) kept its claim on seq %llu open %lld ms: "
            "ended, readers count it lost",
            t->name, pid, (unsigned long long)seq, (long long)ms);
    sbd_event("unblocked",
              (struct sbd_ev_field[]){SBD_EV_S("topic", t->name), SBD_EV_U("pid", pid),
                                      SBD_EV_U("seq", seq), SBD_EV_S("why", "stalled")},
              4);
}
