/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Model of shmbus's wake-up protocol (libshmbus/src/ring/ring.h
 * sb_wake_readers, wait.c sleep_on, pending_clear and wake_delegate),
 * checked with spin:
 * no subscriber sleeps forever while a message it waits for exists, without
 * relying on the 50 ms sleep slice (not modelled). It checks that nobody
 * sleeps to the end; a wake-up that comes only with a later message (a
 * delay, not a hang) is outside what it can show.
 *
 * Promela interleaves whole statements: it models the seq_cst accesses of
 * the code (the commit CAS, the waiter count, the futex word, the re-check).
 * The kernel's futex is modelled as: futex_wait checks the word and sleeps
 * in one step; FUTEX_WAKE(1) wakes any one sleeper; FUTEX_WAKE(all) all.
 *
 *   spin -a wakeup.pml && gcc -O2 -DCOLLAPSE -o pan pan.c && ./pan -m200000
 * (`make model` runs it with 3 subscribers and 2 messages, and with each
 * mutation below; under each, spin finds a subscriber asleep forever, an
 * invalid end state, which shows the model can fail:
 *   -DNORELAY: the woken sleeper does not wake the others;
 *   -DPENDING_CLEAR_FIRST: a sleeper clears the wake-pending word before
 *     it reads the futex word, not after: a publisher sets the word and
 *     bumps the futex between the two, the sleeper sleeps on the new
 *     value, that wake-up finds nobody asleep, and the next publisher,
 *     seeing the word set, does not wake.)
 *
 * The wake-pending word (data_pending): a publisher wakes only if it moves
 * it from 0 to 1; a sleeper clears it (a load, and a store of 0 if it read
 * 1) after counting itself and reading the futex word, before its re-check.
 * Lazy subscribers (wake_bound_ns) are left out: they count themselves
 * nowhere, publishers never wake them, and their bound wakes them.
 */
#ifndef NSUB
#define NSUB 3 /* 2 or 3 subscribers */
#endif
#ifndef NMSG
#define NMSG 3
#endif

byte cell = 0;    /* messages committed */
byte futex = 0;   /* data_futex */
byte waiters = 0; /* data_waiters */
byte bcast = 0;   /* data_bcast */
byte pending = 0; /* data_pending */
bool asleep[NSUB];
byte got[NSUB];

inline wake_one() {
    atomic {
        if
        :: asleep[0] -> asleep[0] = false
        :: asleep[1] -> asleep[1] = false
        :: asleep[2] -> asleep[2] = false
        :: else -> skip
        fi
    }
}

inline wake_all() {
    asleep[0] = false;
    asleep[1] = false;
    asleep[2] = false
}

proctype publisher() {
    byte i = 0;
    do
    :: i == NMSG -> break
    :: else ->
        cell++;                 /* commit (seq_cst CAS) */
        if
        :: waiters > 0 ->       /* seq_cst load */
            if
            :: pending == 0 ->  /* seq_cst load, then the CAS */
                atomic {
                    if
                    :: pending == 0 -> pending = 1
                    :: else -> goto skipped
                    fi
                };
                futex++;
                wake_one()
            :: else -> skip
            fi
        :: else -> skip
        fi;
skipped:
        i++
    od
}

proctype subscriber(byte id) {
    byte v, now, done;
    do
    :: got[id] == NMSG -> break
    :: else ->
        if
        :: cell > got[id] -> got[id]++          /* poll delivers */
        :: else ->
            waiters++;                          /* seq_cst RMW */
#ifdef PENDING_CLEAR_FIRST
            if
            :: pending != 0 -> pending = 0
            :: else -> skip
            fi;
#endif
            v = futex;                          /* seq_cst load */
#ifndef PENDING_CLEAR_FIRST
            if                                  /* pending_clear() */
            :: pending != 0 -> pending = 0
            :: else -> skip
            fi;
#endif
            if
            :: cell > got[id] -> skip           /* the re-check sees it */
            :: else ->
                atomic {
                    if
                    :: futex == v -> asleep[id] = true
                    :: else -> skip             /* EAGAIN */
                    fi
                };
                !asleep[id]                     /* until woken */
            fi;
#ifndef NORELAY
            now = futex;                        /* wake_delegate() */
            done = bcast;
            if
            :: done != now && waiters > 1 ->
                atomic {                        /* CAS data_bcast, then wake all */
                    if
                    :: bcast == done -> bcast = now; wake_all()
                    :: else -> skip
                    fi
                }
            :: else -> skip
            fi;
#endif
            waiters--;
            v = 0; now = 0; done = 0            /* dead: keeps the state space small */
        fi
    od;
    assert(got[id] == NMSG)
}

init {
    atomic {
        run publisher();
        run subscriber(0);
        run subscriber(1);
        if
        :: NSUB > 2 -> run subscriber(2)
        :: else -> skip
        fi
    }
}
