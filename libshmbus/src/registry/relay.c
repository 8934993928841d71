/* SPDX-License-Identifier: Apache-2.0 */
/* Relaying topics (relay.h), on the ring's quiet publishers, waits, imported
 * messages and held subscribers (ring/hold.c). */
#include "registry/relay.h"

#include "ring/hold.h"
#include "ring/read.h"
#include "ring/ring.h"
#include "ring/wait.h"
#include "shm/layout.h"
#include "util/futex.h"

static_assert(SB_RELAY_WEIGHT > SB_SUBS_MAX, "a relay outweighs every slot's sleeper");

void sb_relay_pub_quiet(shmbus_pub *pub)
{
    sb_pub_quiet(pub, SB_RELAY_WEIGHT);
}

int sb_relay_sub_ready(shmbus_sub *sub, memory_order order)
{
    return sb_sub_ready_order(sub, order);
}

int sb_relay_wait(shmbus_topic *const *topics, unsigned n, sb_relay_ready_fn ready, void *arg,
                  uint64_t deadline, _Atomic uint32_t *bell, uint32_t seen)
{
    if (n > SB_RELAY_TOPICS_MAX)
        return SHMBUS_ERR_INVALID; /* more futex words than one call takes */
    if (n == 0 && bell == NULL)
        return SHMBUS_ERR_INVALID; /* no futex word at all: futex_waitv refuses it */
    return sb_wait_topics(topics, n, SB_RELAY_WEIGHT, ready, arg, deadline, bell, seen);
}

uint32_t sb_relay_bell_seen(_Atomic uint32_t *bell)
{
    /* acquire: pairs with the release in sb_relay_bell_ring(); what the
     * ringer did before is visible once we see its value. */
    return atomic_load_explicit(bell, memory_order_acquire);
}

void sb_relay_bell_ring(_Atomic uint32_t *bell)
{
    /* release: what the ringer did before the new value (pairs with
     * sb_relay_bell_seen()); the futex call is made after it, so a relay
     * that read the old value has its wait fail or is woken. */
    atomic_fetch_add_explicit(bell, 1, memory_order_release);
    sb_futex_wake(bell, 1);
}

int sb_relay_publish_imported(shmbus_pub *pub, const void *data, size_t len,
                              const struct sb_relay_origin *o, int64_t timeout_ns)
{
    if (o == NULL)
        return SHMBUS_ERR_INVALID; /* an import without its origin is a local message */
    return sb_pub_publish_as(pub, data, len, timeout_ns, o->timestamp_ns, o->pid, o->seq);
}

/* Is the cell of @p seq the committed message of origin @p o? Its header
 * is read between two looks at the stamp (a seqlock read, as read.c's
 * copy readers): a writer that took the cell meanwhile changed the stamp
 * first (pub.c cell_take(): BUSY, then a release fence). */
static int cell_is_origin(const struct sb_segment *seg, uint64_t seq,
                          const struct sb_relay_origin *o)
{
    const struct sb_shm_cell *c = sb_cell(seg, seq);
    /* acquire: pairs with the seq_cst commit CAS (pub.c cell_finish()):
     * the header of a COMMITTED cell is visible. */
    uint64_t v = atomic_load_explicit(&c->stamp, memory_order_acquire);
    uint64_t origin, ts;
    uint32_t pid;

    if (v != SB_STAMP(seq, SB_ST_COMMITTED))
        return 0; /* skipped, being written, or lapped since the tail was read */
    /* volatile: each field once; a writer may be changing them (see
     * sb_word_unchanged() after). */
    origin = *(const volatile uint64_t *)&c->origin;
    ts = *(const volatile uint64_t *)&c->timestamp_ns;
    pid = *(const volatile uint32_t *)&c->writer_pid;
    if (!sb_word_unchanged(&c->stamp, v))
        return 0; /* rewritten while we read: not the message we saw */
    return origin == o->seq + 1 && ts == o->timestamp_ns && pid == o->pid;
}

int sb_relay_imported_held(shmbus_topic *t, const struct sb_relay_origin *o)
{
    const struct sb_segment *seg;
    uint64_t tail, oldest;

    if (t == NULL || o == NULL || o->seq == UINT64_MAX)
        return 0; /* no such message can be in a cell */
    seg = &t->seg;
    /* acquire: a recent tail; every cell below it that is committed shows
     * its stamp to the acquire loads in cell_is_origin(). */
    tail = atomic_load_explicit(&seg->hdr->tail, memory_order_acquire);
    oldest = tail > seg->g.capacity ? tail - seg->g.capacity : 0;
    for (uint64_t s = tail; s > oldest; s--)
        if (cell_is_origin(seg, s - 1, o))
            return 1;
    return 0;
}

int sb_relay_sub_hold(shmbus_sub *sub)
{
    return sb_sub_hold(sub);
}

uint64_t sb_relay_sub_held(const shmbus_sub *sub)
{
    return sb_sub_held(sub);
}

int sb_relay_sub_release(shmbus_sub *sub, uint64_t seq)
{
    return sb_sub_release(sub, seq);
}

int sb_relay_sub_rewind(shmbus_sub *sub, uint64_t seq)
{
    return sb_sub_rewind(sub, seq);
}

int sb_relay_sub_keep(shmbus_sub *sub)
{
    return sb_sub_keep(sub);
}

int sb_relay_sub_adopt(shmbus_topic *t, shmbus_sub **out)
{
    return sb_sub_adopt(t, out);
}
