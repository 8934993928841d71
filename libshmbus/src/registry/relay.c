/* Relaying topics (relay.h), on the ring's quiet publishers and waits. */
#include "registry/relay.h"

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
