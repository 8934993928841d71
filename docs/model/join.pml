/*
 * Model of a plain reader joining a reliable topic while a publisher
 * computes its limit (libshmbus/src/ring/gate.c sb_seat() and
 * sb_min_gate(), sub.c plain_join(), pub.c pub_refresh_limit()), checked
 * with spin (`make model`).
 *
 * A ring of CAP cells, one publisher of NMSG messages, a subscriber A
 * ACTIVE in slot 1 from the start at seq 0, and a joiner J that takes
 * slot 0 at any moment, at OLDEST. Every shared access is one step; the
 * code's are seq_cst, so interleavings are all there is.
 *   - J reads the tail (t0), stores its provisional position t0 - CAP
 *     (floored at 0) and turns JOINING, bumps joins, reads the tail (t1)
 *     and the settled gates (A's pos, A being ACTIVE), and seats at
 *     max(t1 - CAP, min(A's pos, t1)); then it reads as A does.
 *   - A and J read the cell of their pos in place: a COMMITTED stamp of
 *     their seq starts the read, the read ends some steps later, and then
 *     the position moves on (stored in the slot).
 *   - The publisher claims seq s (the tail) only below its cached limit;
 *     when it reaches the limit it loads joins, loads the tail, scans slot
 *     0 then slot 1 (state, then pos: JOINING and ACTIVE gate), loads
 *     joins again, and takes min(gates, tail) + CAP as its limit only if
 *     joins did not move; else it keeps the old limit and scans again.
 *     It writes a cell by marking it BUSY with its seq, then commits.
 *
 * Assertions: no reader finds its cell holding a newer seq (a reliable
 * reader lapped: the code reports corruption), and no cell changes under
 * a read in place.
 *
 * With CAP 1 and NMSG 2 (the values scripts/model-check.sh passes): the
 * publisher stops scanning after slot 0, J seats on A at seq 0, A reads 0
 * and moves to 1, the publisher reads A at 1 and claims seq 1 into the
 * cell J is about to read. Flag that leaves the protection out (spin must
 * find that error):
 *   NO_JOINS  the publisher does not check joins around its scan
 */
#ifndef NMSG
#define NMSG 2
#endif
#define CAP  1

#define FREE    0 /* J's slot before it joins */
#define JOINING 1
#define ACTIVE  2

byte tail;
byte cell[CAP];  /* seq + 1 of the last message taken or committed; 0 empty */
bool busy[CAP];  /* its writer has not committed */
byte jstate;     /* slot 0, J's; slot 1 is A's, ACTIVE throughout */
byte pos[2];
byte joins;
bool reading[2];

/* Read the messages from our slot's pos on, in place. */
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

active proctype A()
{
    read_all(1)
}

active proctype J()
{
    byte t, f, seat;

    t = tail;
    if
    :: t > CAP -> pos[0] = t - CAP
    :: else -> pos[0] = 0
    fi;
    jstate = JOINING;
    joins = joins + 1;
    t = tail;
    f = t;
    if
    :: pos[1] < f -> f = pos[1]
    :: else -> skip
    fi;
    if
    :: t > CAP && t - CAP > f -> seat = t - CAP
    :: else -> seat = f
    fi;
    pos[0] = seat;
    jstate = ACTIVE;
    read_all(0)
}

active proctype P()
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
            cell[s % CAP] = s + 1;
            busy[s % CAP] = 1
        }
        /* ... the payload ... */
        busy[s % CAP] = 0
    :: tail < NMSG && tail >= limit ->
        j = joins;
        t = tail;
        g = 255;
        st = jstate;
        if
        :: st == JOINING || st == ACTIVE ->
            p = pos[0];
            if
            :: p < g -> g = p
            :: else -> skip
            fi
        :: else -> skip
        fi;
        p = pos[1];
        if
        :: p < g -> g = p
        :: else -> skip
        fi;
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
