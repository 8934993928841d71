/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Model of two races between a live or dying client and the daemon,
 * checked with spin (`make model`, with the wake-up model):
 *
 * 1. A sleeper killed asleep (wait.c sleeper_in/sleeper_out, admin.c
 *    sleeper_take_back): the sleeper adds its weight to data_waiters,
 *    then names it in its slot; on waking it clears the slot, then
 *    subtracts. The daemon, once the sleeper is dead, subtracts what the
 *    slot names. The count must never go below zero (an underflow would
 *    make every publish wake nobody, for good), and at most one weight
 *    may leak (a death between the two adjacent steps).
 *    -DNAME_FIRST names the weight before adding it (and subtracts before
 *    clearing): spin then finds the daemon taking back a weight that was
 *    never added.
 *
 * 2. A group member leaving while the daemon evicts it (sub.c
 *    sub_leave_group, admin.c sb_admin_slot_evict and
 *    sb_admin_groups_reconcile): the member moves its slot ACTIVE ->
 *    LEAVING with a CAS and only then decrements the member count; the
 *    daemon evicts with a CAS ACTIVE -> EVICTED (then takes the member's
 *    own count out, only if it named it: not modelled, the member here
 *    never does), and reconciles (a count with no slot ACTIVE or LEAVING
 *    behind it is reset to zero, by a CAS on the count read before the
 *    slot scan). The
 *    count must never be decremented below zero.
 *    -DNO_LEAVING has the member read the state and decrement unless it
 *    is EVICTED, without a CAS and without LEAVING: spin finds the
 *    reconcile zeroing the count under the member's decrement.
 *
 * 3. Two processes adopting one kept slot whose owner died (ring/hold.c
 *    adopt_claim, adopt_take): each reads the kept word and the owner,
 *    judges the owner dead, claims the slot by a CAS on the kept word
 *    from KEPT to ADOPTING (its own), checks the owner is still the one
 *    it judged, writes itself in as the owner and stores KEPT back.
 *    Adopters here live on, so the slot must be won exactly once.
 *    -DNO_RECHECK leaves out the check after the CAS: spin finds the
 *    ABA of a loser that read KEPT and the dead owner before the winner's
 *    CAS, and CASes after the winner stored KEPT back: two winners.
 *    The winner may then destroy its subscriber (the kept word NONE, the
 *    slot free), and a plain subscriber that keeps nothing take the slot
 *    (kept NONE at its join): a loser gives the word back by a CAS from
 *    its own ADOPTING to KEPT, never a plain store, or its stale KEPT
 *    would land on the joiner's slot (kept past its owner's death, never
 *    evicted). -DNO_GIVE_BACK_CAS stores it: spin finds that.
 *
 * Promela interleaves whole statements; each models one seq_cst access
 * (or a CAS). Death is a flag the killer sets between any two steps.
 */

#define ACTIVE  3
#define EVICTED 4
#define LEAVING 6
#define INIT    1

/* ------------------------------------------------ 1. sleeper take-back */

byte waiters = 0; /* data_waiters, counted with weight 1 */
byte named = 0;   /* the slot's sleep field */
bool alive = true;
bool done = false; /* the sleeper finished (woke and left the count) */

#define STEP(s) if :: alive -> s :: else -> goto dead fi

proctype sleeper()
{
#ifdef NAME_FIRST
    STEP(named = 1);
    STEP(waiters++);
    STEP(skip); /* asleep */
    STEP(assert(waiters > 0); waiters--);
    STEP(named = 0);
#else
    STEP(waiters++);
    STEP(named = 1);
    STEP(skip); /* asleep */
    STEP(named = 0);
    STEP(assert(waiters > 0); waiters--);
#endif
    done = true;
dead:
    skip
}

proctype killer()
{
    if
    :: alive = false
    :: done -> skip
    fi
}

/* The daemon's reaper: once the sleeper is dead, take back what its slot
 * names (never below zero is asserted, not saturated, to find the bug). */
proctype reaper()
{
    (!alive || done);
    if
    :: !alive && named > 0 ->
        atomic { assert(waiters >= named); waiters = waiters - named; named = 0 }
    :: else -> skip
    fi;
    /* At most the one weight a death between two adjacent steps leaks. */
    assert(waiters <= 1)
}

/* ------------------------------------------- 2. leave against eviction */

byte state = ACTIVE; /* the member's slot */
byte members = 1;    /* the group's member count */

proctype member()
{
#ifdef NO_LEAVING
    byte st;
    st = state;
    if
    :: st != EVICTED -> assert(members > 0); members--
    :: else -> skip
    fi;
#else
    bool mine = false;
    atomic {
        if
        :: state == ACTIVE -> state = LEAVING; mine = true
        :: else -> skip
        fi
    }
    if
    :: mine -> assert(members > 0); members--
    :: else -> skip
    fi;
#endif
    atomic {
        if
        :: state != EVICTED -> state = INIT
        :: else -> skip
        fi
    }
}

proctype daemon()
{
    byte w;
    bool used;

    /* evict */
    atomic {
        if
        :: state == ACTIVE -> state = EVICTED
        :: else -> skip
        fi
    }
    /* reconcile: the count, then the slots, then a CAS on the count */
    w = members;
    used = (state == ACTIVE || state == LEAVING);
    atomic {
        if
        :: members == w && w > 0 && !used -> members = 0
        :: else -> skip
        fi
    }
}

/* ------------------------------------------ 3. adopters of a kept slot */

#define NONE   0
#define KEPT   1
#define FREE   8 /* owner: the slot is free */
#define JOINER 9 /* owner: a plain subscriber that keeps nothing */
byte kept = KEPT; /* NONE, KEPT, or 1 + i while adopter i adopts */
byte owner = 0;   /* 0: the dead owner; i: adopter i (alive); FREE; JOINER */
byte winners = 0;
byte finished = 0; /* adopters and the joiner that have ended */

proctype adopter(byte me)
{
    byte k, o;

    k = kept;
    o = owner; /* acquire loads: the owner the kept word comes with */
    if
    :: k == KEPT && o == 0 -> skip /* the owner is dead */
    :: else -> goto out            /* a live owner's, or one being adopted */
    fi;
    atomic {
        if
        :: kept == k -> kept = 1 + me
        :: else -> goto out
        fi
    }
#ifndef NO_RECHECK
    if
    :: owner != o -> /* taken over meanwhile: give it back */
#ifdef NO_GIVE_BACK_CAS
        kept = KEPT;
#else
        atomic {
            if
            :: kept == 1 + me -> kept = KEPT
            :: else -> skip /* freed meanwhile: no longer kept */
            fi
        }
#endif
        goto out
    :: else -> skip
    fi;
#endif
    owner = me;
    kept = KEPT;
    winners++;
    assert(winners == 1);
    if
    :: kept = NONE; owner = FREE /* shmbus_sub_destroy(): sb_slot_release() */
    :: skip
    fi;
out:
    finished++
}

/* A plain subscriber taking the slot once it is free (sub.c slot_take(),
 * sub_join()). */
proctype joiner()
{
    if
    :: atomic { owner == FREE -> owner = JOINER }
        kept = NONE
    :: finished == 2 -> skip /* the slot was never freed */
    fi;
    finished++
}

/* Once all have ended: a slot that keeps nothing is not kept. */
proctype adoption_end()
{
    finished == 3;
    assert(owner != JOINER || kept == NONE)
}

init
{
    atomic {
        run sleeper();
        run killer();
        run reaper();
        run member();
        run daemon();
        run adopter(1);
        run adopter(2);
        run joiner();
        run adoption_end()
    }
}
