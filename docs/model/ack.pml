/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Model of an acknowledged group's pending table against a reliable
 * publisher's gate (libshmbus/src/ring/ack.c, group.c, gate.c, and the
 * daemon's give-back and dead letters, ack.c sb_ack_slot_return() and
 * registry/admin.c), checked with spin (`make model`).
 *
 * A ring of CAP cells, one publisher of NMSG messages, one acknowledged
 * group of NMEM members (max_inflight MAXINF, max_deliveries MAXDEL) with
 * NENT pending entries, and the daemon. A member, in any order:
 *   - takes from the cursor: reserves the first FREE entry (CAS FREE ->
 *     RESERVED, kept across takes), writes the entry's seq = c, stores its
 *     slot's hold = c, moves the cursor by a CAS (on failure drops the
 *     hold and looks again), CASes the entry RESERVED -> HELD (deliveries
 *     1), drops the hold, and its callback reads the cell in place;
 *   - takes the lowest-seq RETURNED entry under MAXDEL deliveries: loads
 *     its word, then its seq, then CASes the word to HELD (deliveries + 1)
 *     and reads the cell, dropping the entry if the cell moved on;
 *   - acks: CAS HELD -> RESERVED if it holds no reservation (the entry
 *     is its reservation for its next take, still showing the acked seq),
 *     else HELD -> FREE; or nacks (CAS HELD -> RETURNED);
 *   - may die before any step (at most NDIE members die), or stop alive.
 * The publisher reads the tail, scans the cursor (a group with members
 * gates), then the slots' holds, then the HELD / RETURNED / DEAD entries
 * (the word, then the seq), and writes seq s only below min + CAP, else
 * gives up (waiting and scanning again is the same as scanning later).
 * The daemon, once a member is dead, gives its entries back: HELD ->
 * RETURNED; RESERVED whose seq equals the slot's hold with the cursor past
 * it (loading the word, the hold and seq, then the cursor) -> RETURNED with
 * deliveries 0; any other RESERVED -> FREE; then takes the member out of
 * the count and frees its slot. In between it dead-letters the first
 * RETURNED entry (at MAXDEL deliveries, or past the stall timeout: any,
 * since time is not modelled) by CAS to DEAD, reads its message into the
 * envelope and frees it, or leaves it DEAD (the dead-letter topic full) to
 * try again; a DEAD entry whose cell moved on is freed (abandoned).
 *
 * An entry returned from RESERVED may be a copy of a message another
 * member took: a member that dies after storing its hold and before a
 * cursor CAS that fails (or would fail) leaves a RESERVED entry whose seq
 * is its hold with the cursor past it, and the daemon cannot tell it from
 * a take that succeeded. That message may since have been acked and its
 * cell handed to a publisher, whose limit, computed before the give-back,
 * the new RETURNED entry does not hold back. So an entry that came back
 * from RESERVED is marked (unsure; SB_PEND_COPY in the code) for its
 * life, and its readers, members (ack_redeliver()) and the daemon's dead
 * letters (registry/admin_ack.c) alike, copy the message out and re-check
 * the stamp instead of reading it in place; a copy that fails the check
 * is dropped as a duplicate. Ghosts: edup marks such a copy, dupseq is
 * the one seq that may be accounted twice.
 *
 * Assertions: the publisher never overwrites a cell whose message is
 * needed (taken off the cursor and not yet acked or dead-lettered, the
 * copy of another member's take aside) nor one a member or the daemon is
 * reading in place; a taker of a RETURNED entry gets the seq the entry
 * holds; only a copy is ever found gone; at the end every published
 * message is acked or dead-lettered, pending, or at or past the cursor
 * (taken by nobody yet), once, but for dupseq, whose copy may also be
 * pending or acked (at-least-once), and only if a member took it; a
 * member never holds two reservations (the table would fill with idle
 * ones).
 *
 * Flags that each leave out a protection (spin must find an error):
 *   SCAN_ENTRIES_FIRST     the gate scans the entries before the slots
 *   DROP_HOLD_EARLY        the member drops its hold before the entry is
 *                          HELD
 *   SEQ_AFTER_CAS          the entry's seq is written after the cursor CAS:
 *                          a member dying in between loses the message
 *   FREE_SLOT_FIRST        the daemon frees the dead member's slot (its
 *                          hold stops gating) before giving entries back
 *   NO_GEN                 the entry word has no generation: a taker's CAS
 *                          from a RETURNED word succeeds on another
 *                          message's entry (ABA through ack, reserve, nack)
 *   NO_CURSOR_CHECK        the give-back returns a RESERVED entry whose
 *                          seq is the hold without checking the cursor is
 *                          past it: the message is also still at the cursor
 *   READ_RETURNED_IN_PLACE entries returned from RESERVED are read in
 *                          place: a publisher overwrites an acked
 *                          message's cell under a copy's reader
 *   ACK_KEEPS_ALWAYS       an ack keeps its entry as the member's
 *                          reservation even if it holds one: it holds two
 *
 * Not modelled: eviction of a live member (its two give-back passes and
 * the re-arm of a reservation), nack delays and the order of due entries
 * (any due entry is a superset), the returned-count hint, joins and
 * leaves. Promela interleaves whole statements; each models one seq_cst
 * access or CAS (the entry word is one 64-bit word in the segment; its
 * generation is modelled by watch/stale, below, to keep states few).
 */
#ifndef CAP
#define CAP 1 /* ring cells: the second message overwrites the first's cell */
#endif
#ifndef NMSG
#define NMSG 2 /* messages published (with CAP 2, 3 are needed to overwrite) */
#endif
#define NMEM   2 /* members */
#define NENT   2 /* pending entries (SCAN_ENTRIES, DROP and init name each) */
#define MAXINF 1 /* max_inflight */
#define MAXDEL 2 /* max_deliveries */
#ifndef NDIE
#define NDIE 1 /* members that may die */
#endif

#define NONE 255 /* an idle hold, an unset seq */

#define P_FREE     0
#define P_RESERVED 1
#define P_HELD     2
#define P_RETURNED 3
#define P_DEAD     4
#define GATING(st) ((st) == P_HELD || (st) == P_RETURNED || (st) == P_DEAD)

byte cell[CAP];      /* the seq each cell holds (stamp and payload) */
byte tail = 0;       /* next seq (one publisher) */
byte cursor = 0;     /* the group's next seq */
byte members = NMEM; /* the group's member count */
bool gates[NMEM];    /* the member's slot is ACTIVE: its hold gates */
byte hold[NMEM];     /* the member's slot pos: its hold */
bool alive[NMEM];
bool reaped[NMEM];
byte deaths = 0;
bool took[NMEM]; /* ghost: the member's cursor CAS moved the cursor past its hold */
byte reading[NMEM + 1]; /* the seq whose cell a member (or the daemon, last) reads in place */
byte ended = 0; /* processes that ended (publisher, members) */

/* The pending entries: the word (state, owner = 1 + member, deliveries;
 * its generation is modelled by the watch below), and the seq. */
byte est[NENT];
byte eown[NENT];
byte edel[NENT];
byte eseq[NENT];
/* The entry came back from a RESERVED one (deliveries 0: a take the daemon
 * could not confirm): its readers copy the message and re-check the stamp
 * rather than read it in place, for the entry's life. */
bool unsure[NENT];
bool edup[NENT]; /* ghost: a copy of a message another member took */

/* The generation, without its states: a member that loaded entry e's word
 * (watch = e) finds stale set if anyone changed the word since, as a CAS
 * from a word whose generation moved fails. The daemon needs none: a dead
 * member's words and DEAD ones only it moves, and its CAS of a RETURNED
 * one to DEAD checks the state in the same step and reads the seq after. */
byte watch[NMEM];
bool stale[NMEM];

#define TOUCH(e)                                                              \
    if :: watch[0] == e -> stale[0] = true :: else -> skip fi;               \
    if :: watch[1] == e -> stale[1] = true :: else -> skip fi

#ifdef NO_GEN
#define SAME_GEN(m) true
#else
#define SAME_GEN(m) (!stale[m])
#endif

/* Ghosts. */
byte needed[NMSG]; /* taken off the cursor, not acked or dead-lettered */
byte done[NMSG];   /* acked or dead-lettered */
byte dupseq = NONE;

/* Die instead of doing s (s must always be executable). */
#define STEP(s)                                                               \
    if                                                                        \
    :: s                                                                      \
    :: atomic { deaths < NDIE -> deaths++ }; goto dead                      \
    fi

/* A taken RETURNED entry whose cell no longer holds its message: freed,
 * as a duplicate (ring/ack.c pend_gone(): not counted lost, nor
 * abandoned). Only a copy of a message another member took (and acked,
 * so a publisher reused its cell) may be gone. */
#define DROP(e)                                                               \
    assert(edup[e]);                                                          \
    est[e] = P_FREE; eown[e] = 0; edel[e] = 0; unsure[e] = false;             \
    edup[e] = false; TOUCH(e); mine[e] = false

/* An ack keeps its entry as the member's reservation (r, NONE: none). */
#ifdef ACK_KEEPS_ALWAYS
#define ACK_KEEPS(r) true
#else
#define ACK_KEEPS(r) (r == NONE)
#endif

/* Member m holds at most one RESERVED entry. */
#define ONE_RESV(m)                                                           \
    assert(!(est[0] == P_RESERVED && eown[0] == m + 1 &&                      \
             est[1] == P_RESERVED && eown[1] == m + 1))

/* One entry of the gate scan: the word (seq_cst), then the seq. */
#define SCAN_ENTRY(i)                                                         \
    st = est[i];                                                              \
    atomic { if :: GATING(st) && eseq[i] < min -> min = eseq[i] :: else -> skip fi; st = 0 }

#define SCAN_ENTRIES SCAN_ENTRY(0); SCAN_ENTRY(1)

/* The slots, state and pos in one step each. */
#define SCAN_SLOTS                                                            \
    atomic { if :: gates[0] && hold[0] < min -> min = hold[0] :: else -> skip fi }; \
    atomic { if :: gates[1] && hold[1] < min -> min = hold[1] :: else -> skip fi }

proctype publisher()
{
    byte s = 0, min, st;

    do
    :: s == NMSG -> break
    :: else ->
        min = tail; /* seq_cst, before the scan */
        /* cursors first (a group with members gates) */
        atomic { if :: members > 0 && cursor < min -> min = cursor :: else -> skip fi }
#ifdef SCAN_ENTRIES_FIRST
        SCAN_ENTRIES;
        SCAN_SLOTS;
#else
        SCAN_SLOTS;
        SCAN_ENTRIES;
#endif
        if
        :: s < min + CAP ->
            atomic {
                if
                :: s >= CAP ->
                    assert(needed[s - CAP] == 0);
                    assert(reading[0] != s - CAP && reading[1] != s - CAP && reading[2] != s - CAP)
                :: else -> skip
                fi;
                cell[s % CAP] = s;
                tail++;
                s++;
                min = 0
            }
        :: else -> break /* full: times out (waiting is scanning later) */
        fi
    od;
    ended++
}

proctype member(byte me)
{
    byte r = NONE; /* our RESERVED entry, kept across takes */
    bool mine[NENT]; /* the entries we hold */
    byte inflight = 0;
    byte e, c, d, sq;
    bool ok;

    do
    /* ---------------------------------------------- take from the cursor */
    :: inflight < MAXINF ->
        if
        :: r == NONE ->
            /* the first FREE entry, by CAS (one step: a lost CAS moves on) */
            STEP(atomic {
                e = 0;
                do
                :: e < NENT && est[e] != P_FREE -> e++
                :: else -> break
                od;
                if
                :: e < NENT ->
                    est[e] = P_RESERVED; eown[e] = me + 1; TOUCH(e);
                    eseq[e] = NONE; /* relaxed, after the CAS: no take in flight */
                    r = e;
                    ONE_RESV(me)
                :: else -> skip /* none free: nothing new is taken */
                fi;
                e = 0
            })
        :: else -> skip
        fi;
        if
        :: r == NONE -> skip
        :: else ->
retry:
            skip;
            STEP(c = cursor); /* acquire */
            if
            :: cell[c % CAP] != c -> c = 0 /* not yet published */
            :: else ->
#ifndef SEQ_AFTER_CAS
                STEP(eseq[r] = c);
#endif
                STEP(hold[me] = c);
                STEP(atomic {
                    if
                    :: cursor == c -> cursor++; needed[c]++; took[me] = true
                    :: else -> skip
                    fi
                });
                if
                :: !took[me] ->
                    STEP(hold[me] = NONE);
                    c = 0;
                    goto retry
                :: else -> skip
                fi;
#ifdef SEQ_AFTER_CAS
                STEP(eseq[r] = c);
#endif
#ifdef DROP_HOLD_EARLY
                STEP(hold[me] = NONE);
#endif
                STEP(atomic {
                    assert(est[r] == P_RESERVED && eown[r] == me + 1);
                    est[r] = P_HELD; edel[r] = 1; TOUCH(r); mine[r] = true; r = NONE
                });
#ifndef DROP_HOLD_EARLY
                STEP(hold[me] = NONE);
#endif
                took[me] = false;
                /* the callback reads it in place */
                STEP(atomic { assert(cell[c % CAP] == c); reading[me] = c });
                STEP(reading[me] = NONE);
                inflight++;
                c = 0
            fi
        fi
    /* ---------------------------------------- take a RETURNED entry */
    :: inflight < MAXINF ->
        /* the lowest-seq RETURNED entry under max_deliveries: its word
         * (then, below, its seq) */
        atomic {
            e = NONE; sq = NONE; d = 0;
            do
            :: d < NENT ->
                if
                :: est[d] == P_RETURNED && edel[d] < MAXDEL && eseq[d] < sq -> e = d; sq = eseq[d]
                :: else -> skip
                fi;
                d++
            :: else -> break
            od;
            sq = 0; d = 0
        };
        if
        :: e != NONE ->
            atomic { d = edel[e]; watch[me] = e; stale[me] = false };
            STEP(sq = eseq[e]);
            STEP(atomic {
                if
                :: est[e] == P_RETURNED && edel[e] == d && SAME_GEN(me) ->
                    assert(eseq[e] == sq); /* the message we read the seq of */
                    est[e] = P_HELD; eown[e] = me + 1; edel[e] = d + 1; TOUCH(e);
                    mine[e] = true; ok = true
                :: else -> ok = false
                fi;
                watch[me] = NONE; stale[me] = false
            });
            if
            :: ok ->
                if
#ifndef READ_RETURNED_IN_PLACE
                :: unsure[e] -> /* copy it out, then re-check the stamp */
                    STEP(ok = (cell[sq % CAP] == sq));
                    STEP(atomic { ok = ok && cell[sq % CAP] == sq; if :: !ok -> DROP(e) :: else -> skip fi })
                :: !unsure[e] ->
#else
                :: true ->
#endif
                    /* the stamp, then the callback's reads in place */
                    STEP(atomic {
                        if
                        :: cell[sq % CAP] == sq -> reading[me] = sq
                        :: else -> DROP(e); ok = false
                        fi
                    });
                    STEP(reading[me] = NONE)
                fi;
                if
                :: ok -> inflight++
                :: else -> skip
                fi
            :: else -> skip
            fi
        :: else -> skip
        fi;
        e = 0; d = 0; sq = 0; ok = false
    /* ------------------------------------------------------ ack, nack */
    :: inflight > 0 ->
        atomic {
            e = 0;
            do
            :: e < NENT && !mine[e] -> e++
            :: else -> break
            od
        };
        if
        :: e < NENT ->
            if
            :: ok = true  /* ack */
            :: ok = false /* nack */
            fi;
            STEP(atomic {
                assert(est[e] == P_HELD && eown[e] == me + 1); /* only we move it */
                if
                :: ok ->
                    if :: !edup[e] -> needed[eseq[e]]-- :: else -> skip fi;
                    done[eseq[e]]++;
                    edel[e] = 0; unsure[e] = false; edup[e] = false;
                    if
                    :: ACK_KEEPS(r) ->
                        /* our reservation, its seq the acked one's */
                        est[e] = P_RESERVED; r = e; ONE_RESV(me)
                    :: else -> est[e] = P_FREE; eown[e] = 0
                    fi
                :: else ->
                    est[e] = P_RETURNED; eown[e] = 0
                fi;
                TOUCH(e);
                mine[e] = false; ok = false
            });
            inflight--
        :: else -> skip
        fi;
        e = 0
    :: break /* stops, alive, holding what it holds */
    od;
    ended++;
    goto out;
dead:
    /* Died holding a seq it had not taken (before its cursor CAS, or after
     * one that failed): if another member takes it, the daemon cannot tell
     * and returns it too. */
    if
    :: hold[me] != NONE && !took[me] -> dupseq = hold[me]
    :: else -> skip
    fi;
    atomic {
        alive[me] = false; watch[me] = NONE; stale[me] = false; reading[me] = NONE;
        r = 0; inflight = 0; e = 0; c = 0; d = 0; sq = 0; ok = 0;
        mine[0] = 0; mine[1] = 0
    };
    ended++;
out:
    skip
}

/* The daemon gives dead member m's entries back (sb_ack_slot_return():
 * the word, then the hold and seq, then the cursor), then takes it out of
 * the count and frees its slot. */
inline give_back(m)
{
#ifdef FREE_SLOT_FIRST
    h = hold[m]; /* still judged by the hold it read first */
    atomic { gates[m] = false; hold[m] = NONE };
#endif
    e = 0;
    do
    :: e < NENT ->
        atomic { st = est[e]; o = eown[e] };
        if
        :: o == m + 1 && st == P_HELD ->
            atomic { est[e] = P_RETURNED; eown[e] = 0; TOUCH(e) }
        :: o == m + 1 && st == P_RESERVED ->
#ifndef FREE_SLOT_FIRST
            h = hold[m];
#endif
            sq = eseq[e];
            cw = cursor;
            atomic {
                if
#ifdef NO_CURSOR_CHECK
                :: h != NONE && sq == h ->
#else
                :: h != NONE && sq == h && cw > h ->
#endif
                    est[e] = P_RETURNED; edel[e] = 0; unsure[e] = true;
                    edup[e] = !took[m]
                :: else -> est[e] = P_FREE
                fi;
                eown[e] = 0;
                TOUCH(e)
            }
        :: else -> skip
        fi;
        e++; st = 0; o = 0; sq = 0; cw = 0
#ifndef FREE_SLOT_FIRST
        ; h = 0
#endif
    :: else -> break
    od;
    members--; /* slot_uncount() */
#ifndef FREE_SLOT_FIRST
    atomic { gates[m] = false; hold[m] = NONE };
#endif
    reaped[m] = true
}

proctype daemon()
{
    byte m, e, st, o, sq, h, cw, n;
    bool ok;

    do
    /* reap a dead member */
    :: atomic { !alive[0] && !reaped[0] -> m = 0 }; give_back(m); m = 0
    :: atomic { !alive[1] && !reaped[1] -> m = 1 }; give_back(m); m = 0
    /* a dead-letter pass over one entry: a RETURNED one at max_deliveries,
     * or past the stall timeout (any RETURNED one: timing is not
     * modelled), CASed to DEAD; or a DEAD one whose publish failed */
    :: atomic {
            e = 0;
            do
            :: e < NENT && est[e] != P_RETURNED && est[e] != P_DEAD -> e++
            :: else -> break
            od
        };
        if
        :: e < NENT ->
            atomic {
                if
                :: est[e] == P_RETURNED -> est[e] = P_DEAD; TOUCH(e); ok = true
                :: est[e] == P_DEAD -> ok = true /* an earlier attempt failed */
                :: else -> ok = false /* a member took it back meanwhile */
                fi
            };
            if
            :: ok ->
                sq = eseq[e];
                /* the envelope wraps the message: copied and re-checked,
                 * or read in place (the stamp, then the reads) */
                if
#ifndef READ_RETURNED_IN_PLACE
                :: unsure[e] ->
                    ok = (cell[sq % CAP] == sq);
                    ok = ok && cell[sq % CAP] == sq
                :: !unsure[e] ->
#else
                :: true ->
#endif
                    atomic { ok = (cell[sq % CAP] == sq); if :: ok -> reading[NMEM] = sq :: else -> skip fi };
                    reading[NMEM] = NONE
                fi;
                if
                :: !ok -> /* its cell was reused: freed as a duplicate, uncounted */
                    atomic {
                        assert(edup[e]);
                        est[e] = P_FREE; edel[e] = 0; unsure[e] = false; edup[e] = false; TOUCH(e)
                    }
                :: ok ->
                    if
                    :: atomic {
                        if :: !edup[e] -> needed[sq]-- :: else -> skip fi;
                        done[sq]++;
                        est[e] = P_FREE; edel[e] = 0; unsure[e] = false; edup[e] = false; TOUCH(e)
                    }
                    :: skip /* the dead-letter topic is full: it stays DEAD */
                    fi
                fi
            :: else -> skip
            fi;
            ok = false
        :: else -> skip
        fi;
        e = 0; sq = 0
    :: ended == NMEM + 1 && (alive[0] || reaped[0]) && (alive[1] || reaped[1]) -> break
    od;
    /* Accounting: every published seq is done, pending, or not yet taken,
     * once (but the duplicate the design allows). */
    m = 0;
    do
    :: m < tail ->
        n = done[m];
        if :: m >= cursor -> n++ :: else -> skip fi;
        e = 0;
        do
        :: e < NENT -> if :: GATING(est[e]) && eseq[e] == m -> n++ :: else -> skip fi; e++
        :: else -> break
        od;
        assert(n >= 1);                /* none lost */
        /* no duplicate but the allowed one, of a message a member took */
        assert(n == 1 || (m == dupseq && m < cursor));
        m++
    :: else -> break
    od
}

init
{
    byte i = 0;

    atomic {
        do
        :: i < CAP -> cell[i] = NONE; i++
        :: else -> break
        od;
        i = 0;
        eseq[0] = NONE; eseq[1] = NONE;
        gates[0] = true; gates[1] = true;
        hold[0] = NONE; hold[1] = NONE;
        alive[0] = true; alive[1] = true;
        watch[0] = NONE; watch[1] = NONE;
        reading[0] = NONE; reading[1] = NONE; reading[2] = NONE;
        run publisher();
        run member(0);
        run member(1);
        run daemon()
    }
}
