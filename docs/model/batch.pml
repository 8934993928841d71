/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Model of a batch claim (pub.c shmbus_publish_vec()) against the daemon
 * that ends it (admin.c sb_admin_pub_unblock(), sb_admin_pub_end_rest(),
 * claim_settle_range()), checked with spin (`make model`).
 *
 * A reliable publisher W has claimed seqs 0..K-1 in one tail RMW, each in
 * a cell of its own whose previous lap is final (PREV). Its record says
 * claim_end = K (stored before the claim word names a seq) and the claim
 * word moves up through the range, each seq before its take. For each seq
 * it takes the cell (CAS PREV -> BUSY), writes, and commits (CAS BUSY ->
 * COMMITTED). A take that fails found the daemon's SKIPPED of its own seq
 * (pub.c PUB_TAKE_ENDED: counts nothing); a commit that fails found the
 * daemon's end of the named seq (the record's ended says so: counts
 * nothing). Either ends the batch: W skips the rest itself, each cell by
 * its own take and a SKIPPED commit, counted when its CAS lands. W may die
 * between any two steps.
 *
 * The daemon D, at any moment (a stall timeout can fire on a slow writer
 * as well as a stopped one), ends the named seq if its cell is BUSY
 * (ended first, then CAS BUSY -> SKIPPED) and the untouched seqs after it
 * while the record still names it (CAS PREV -> SKIPPED, one look each).
 * Once W is dead it settles the claim: from the named seq to claim_end
 * (claim_end_of(): an end outside (c, c + K] means c alone), each unmarked
 * or BUSY cell to SKIPPED; a CLAIMING word (died before naming a seq)
 * means every unmarked seq.
 *
 * Checked at the end: every seq is final (COMMITTED or SKIPPED); each
 * SKIPPED seq was counted exactly once and no COMMITTED one was; a live W
 * committed a prefix and returned its length.
 *   -DEND_AFTER_SEQ: W names seq 0 before it stores claim_end; a death in
 *    between leaves the daemon reading an older claim's end: seqs 1..K-1
 *    are never ended.
 *   -DNO_CLAIM_END: the daemon ends the named seq only (layout 6): the
 *    same.
 *   -DDAEMON_STORE: the daemon's end of an untouched seq is a load, then a
 *    store instead of a CAS: W's take lands in between, its commit then
 *    fails and counts a skip the daemon counted too.
 *   -DCOUNT_ENDED: W counts the daemon's SKIPPED that its take finds:
 *    counted twice.
 *
 * Promela interleaves whole statements; each models one seq_cst access or
 * one CAS (the release/acquire pairs of the claim word and claim_end are
 * argued in docs/design.md, "Publisher records and dead claims").
 */

#define K        3
#define PREV     0 /* the previous lap's final stamp: ready for this lap */
#define BUSY     1 /* BUSY(s) */
#define COMM     2 /* COMMITTED(s) */
#define SKIP     3 /* SKIPPED(s) */
#define CLAIMING 8
#define IDLE     9

byte stamp[K];    /* all PREV */
byte counted[K];  /* skips counted, per seq */
byte claim = CLAIMING;
byte claim_end = 0; /* an older claim's end */
byte ended = 0;     /* 1 + the seq the daemon ended */
bool dead = false;
bool w_done = false;
byte published = 0;

/* W dies here, or goes on. */
#define MAY_DIE if :: dead = true; goto w_out :: true fi

inline w_skip_rest(from) {
    j = from;
    do
    :: j < K ->
        claim = j;
        MAY_DIE;
        atomic { if :: stamp[j] == PREV -> stamp[j] = BUSY; took = true :: else -> took = false fi }
        MAY_DIE;
        if
        :: took ->
            atomic {
                if
                :: stamp[j] == BUSY -> stamp[j] = SKIP; counted[j]++
                :: else -> assert(ended == j + 1) /* the daemon ended it, and counted */
                fi
            }
        :: else ->
            assert(stamp[j] == SKIP);
#ifdef COUNT_ENDED
            counted[j]++;
#endif
        fi;
        j++
    :: else -> break
    od
}

proctype Writer() {
    byte i = 0, j;
    bool took, ok;

    MAY_DIE;
#ifdef END_AFTER_SEQ
    claim = 0;
    MAY_DIE;
    claim_end = K;
#else
    claim_end = K;
    MAY_DIE;
#endif
    do
    :: i < K ->
        claim = i;
        MAY_DIE;
        atomic { if :: stamp[i] == PREV -> stamp[i] = BUSY; took = true :: else -> took = false fi }
        MAY_DIE;
        if
        :: !took ->
            assert(stamp[i] == SKIP); /* only the daemon writes it first */
#ifdef COUNT_ENDED
            counted[i]++;
#endif
            break
        :: else
        fi;
        /* payload and header written here */
        atomic { if :: stamp[i] == BUSY -> stamp[i] = COMM; ok = true :: else -> ok = false fi }
        if
        :: !ok ->
            /* only the daemon's end of the named seq changes our BUSY */
            assert(ended == i + 1 && stamp[i] == SKIP);
            break
        :: else
        fi;
        MAY_DIE;
        i++
    :: else -> break
    od;
    published = i;
    w_skip_rest(i + 1);
    claim = IDLE;
w_out:
    w_done = true
}

/* claim_end_of(): the end of the claim on @c. */
inline end_of(c, e) {
    if
    :: claim_end > c && claim_end - c <= K -> e = claim_end
    :: else -> e = c + 1
    fi
}

/* A stall look: the named seq, then the rest (sb_admin_pub_unblock(),
 * sb_admin_pub_end_rest()). */
inline d_stall() {
    c = claim;
    if
    :: c < K ->
        if
        :: stamp[c] == BUSY ->
            ended = c + 1;
            atomic { if :: stamp[c] == BUSY -> stamp[c] = SKIP; counted[c]++ :: else fi }
        :: else
        fi;
#ifdef NO_CLAIM_END
        e = c + 1;
#else
        end_of(c, e);
#endif
        s = c + 1;
        do
        :: s < e && claim == c ->
#ifdef DAEMON_STORE
            if
            :: stamp[s] == PREV -> stamp[s] = SKIP; counted[s]++
            :: else
            fi;
#else
            atomic { if :: stamp[s] == PREV -> stamp[s] = SKIP; counted[s]++ :: else fi };
#endif
            s++
        :: else -> break
        od
    :: else
    fi
}

/* The dead writer's claim (claim_settle()). */
inline d_settle() {
    c = claim;
    if
    :: c < K ->
#ifdef NO_CLAIM_END
        e = c + 1;
#else
        end_of(c, e);
#endif
        s = c;
        do
        :: s < e ->
            if
            :: stamp[s] == PREV || stamp[s] == BUSY -> stamp[s] = SKIP; counted[s]++
            :: else
            fi;
            s++
        :: else -> break
        od
    :: c == CLAIMING ->
        s = 0;
        do
        :: s < K ->
            if
            :: stamp[s] == PREV -> stamp[s] = SKIP; counted[s]++
            :: else
            fi;
            s++
        :: else -> break
        od
    :: else
    fi
}

proctype Daemon() {
    byte c, e, s;

    do
    :: !w_done -> d_stall()
    :: w_done -> break
    od;
    if
    :: dead -> d_settle()
    :: else
    fi
}

init {
    byte s;

    atomic {
        run Writer();
        run Daemon()
    };
    (_nr_pr == 1);
    s = 0;
    do
    :: s < K ->
        assert(stamp[s] == COMM || stamp[s] == SKIP);
        assert(counted[s] == (stamp[s] == SKIP -> 1 : 0));
        if
        :: !dead -> assert((s < published) == (stamp[s] == COMM))
        :: else
        fi;
        s++
    :: else -> break
    od
}
