/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Model of plain readers joining a reliable topic while a publisher
 * computes its limit (libshmbus/src/ring/gate.c sb_seat() and
 * sb_min_gate(), sub.c plain_join(), gate.c sb_pub_refresh_limit()), checked
 * with spin (`make model`).
 *
 * A ring of CAP cells, one publisher of NMSG messages, a subscriber A
 * ACTIVE in slot 2 from the start at seq 0, and two joiners, J in slot 0
 * and K in slot 1, that take their slots at any moment, at OLDEST. Every
 * shared access is one step; the code's are seq_cst, so interleavings are
 * all there is.
 *   - A joiner reads the tail (t0), stores its provisional position
 *     t0 - CAP (floored at 0) and turns JOINING, bumps joins, reads the
 *     tail (t1) and the settled gates (the other slots that are ACTIVE:
 *     A, and the other joiner once seated), and seats at
 *     max(t1 - CAP, min(settled gates, t1)); then it reads as A does.
 *     Two joiners check the argument's induction: a joiner seated on
 *     another one seated during the same scan.
 *   - Readers read the cell of their pos in place: a COMMITTED stamp of
 *     their seq starts the read, the read ends some steps later, and then
 *     the position moves on (stored in the slot).
 *   - The publisher claims seq s (the tail) only below its cached limit;
 *     when it reaches the limit it loads the tail, loads joins, scans
 *     slots 0, 1 and 2 (state, then pos: JOINING and ACTIVE gate), loads
 *     joins again, and takes min(gates, tail) + CAP as its limit only if
 *     joins did not move; else it keeps the old limit and scans again.
 *     It writes a cell by marking it BUSY with its seq, then commits.
 *
 * Assertions: no reader finds its cell holding a newer seq (a reliable
 * reader lapped: the code reports corruption), and no cell changes under
 * a read in place.
 *
 * With CAP 1 and NMSG 2 (the values scripts/model-check.sh passes): the
 * publisher reads slot 0 free, J seats on A at seq 0, A reads 0 and moves
 * to 1, the publisher reads A at 1 and claims seq 1 into the cell J is
 * about to read. Flag that leaves the protection out (spin must find
 * that error):
 *   NO_JOINS  the publisher does not check joins around its scan
 */
#ifndef NMSG
#define NMSG 2
#endif
#define CAP  1
#define NS   3 /* slots: J, K, A */

#define FREE    0 /* a joiner's slot before it joins */
#define JOINING 1
#define ACTIVE  2

byte tail;
byte cell[CAP]; /* seq + 1 of the last message taken or committed; 0 empty */
bool busy[CAP]; /* its writer has not committed */
byte state[NS];
byte pos[NS];
byte joins;
bool reading[NS];

/* Read the messages from slot k's pos on, in place. */
inline read_all(k)
{
    do
    :: pos[k] == NMSG -> break
    :: else ->
        atomic {
            if
            :: cell[pos[k] % CAP] == pos[k] + 1 && !busy[pos[k] % CAP] -> reading[k] = 1
            :: cell[pos[k] % CAP] > pos[k] + 1 -> assert(false) /* lapped */
            fi
        }
        /* ... the callback reads the payload ... */
        assert(cell[pos[k] % CAP] == pos[k] + 1 && !busy[pos[k] % CAP]);
        reading[k] = 0;
        pos[k] = pos[k] + 1 /* seq_cst store: the cell goes back to publishers */
    od
}

/* A joiner's read of slot k as a settled gate: ACTIVE, then its pos. */
inline settled(k, f)
{
    if
    :: state[k] == ACTIVE ->
        if
        :: pos[k] < f -> f = pos[k]
        :: else -> skip
        fi
    :: else -> skip
    fi
}

proctype Joiner(byte me; byte o1; byte o2)
{
    byte t, f, seat;

    t = tail;
    if
    :: t > CAP -> pos[me] = t - CAP
    :: else -> pos[me] = 0
    fi;
    state[me] = JOINING;
    joins = joins + 1;
    t = tail;
    f = t;
    settled(o1, f);
    settled(o2, f);
    if
    :: t > CAP && t - CAP > f -> seat = t - CAP
    :: else -> seat = f
    fi;
    pos[me] = seat;
    state[me] = ACTIVE;
    read_all(me)
}

proctype A()
{
    read_all(2)
}

/* The publisher's read of slot k: its state, then its pos if it gates. */
inline gate(k)
{
    st = state[k];
    if
    :: st == JOINING || st == ACTIVE ->
        p = pos[k];
        if
        :: p < g -> g = p
        :: else -> skip
        fi
    :: else -> skip
    fi
}

proctype P()
{
    byte limit, j, t, g, st, p, s;

    do
    :: tail == NMSG -> break
    :: tail < NMSG && tail < limit ->
        s = tail;
        tail = s + 1;
        atomic {
            assert(!(reading[0] && pos[0] % CAP == s % CAP));
            assert(!(reading[1] && pos[1] % CAP == s % CAP));
            assert(!(reading[2] && pos[2] % CAP == s % CAP));
            cell[s % CAP] = s + 1;
            busy[s % CAP] = 1
        }
        /* ... the payload ... */
        busy[s % CAP] = 0
    :: tail < NMSG && tail >= limit ->
        t = tail;
        j = joins;
        g = 255;
        gate(0);
        gate(1);
        gate(2);
        if
        :: t < g -> g = t
        :: else -> skip
        fi;
#ifdef NO_JOINS
        limit = g + CAP
#else
        if
        :: joins == j -> limit = g + CAP
        :: else -> skip /* a reader seated across the scan: scan again */
        fi
#endif
    od
}

init {
    state[2] = ACTIVE;
    atomic {
        run A();
        run Joiner(0, 1, 2);
        run Joiner(1, 0, 2);
        run P()
    }
}
