/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's recorder (daemon/rec/rec.h, docs/design.md "Recording")
 * against a real shmbusd: a topic created after the start is recorded
 * from seq 0; a reliable topic under a fast publisher completely; a kill
 * -9 of the daemon mid-run and a restart leave no gap on a reliable topic;
 * a full disk stops recording without holding publishers, logged, on the
 * events topic, and recording resumes with a gap record once there is
 * room; a journal of an earlier topic of the same name is moved aside,
 * even when the first open of it comes late; a truncated segment ends
 * its topic's recording, not the daemon; JOURNAL answers; a second
 * daemon on the same journal directory and bad options are refused. The
 * journals are read back with the journal reader (shmbus/journal.h).
 */
#include "daemonutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "shmbus/journal.h"
#include "util/clock.h"
#include "util/units.h"

#define JOURNAL_WAIT_MS 10000
#define MSG_MAX         1024

struct rec_fix {
    struct du_daemon d; /* first: du_teardown() frees the fixture through it */
    char jdir[PATH_MAX];
    char log[PATH_MAX];
    int mounted; /* a tmpfs is mounted on jdir */
};

/* Start the daemon recording `rec.*` into DIR/journal, with @p extra
 * arguments after (NULL-terminated, may be NULL). */
static void rec_launch(struct rec_fix *f, const char *const *extra)
{
    const char *argv[DU_EXTRA_MAX] = {"--log-level", "info",          "--record",
                                      "rec.*",       "--journal-dir", f->jdir};
    int n = 6;

    for (; extra != NULL && *extra != NULL && n < DU_EXTRA_MAX - 1; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    assert_int_equal(du_launch_log(&f->d, argv, f->log, sizeof(f->log)), 0);
}

static int rec_setup(void **state)
{
    struct rec_fix *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    if (du_prepare(&f->d) < 0) {
        du_discard(&f->d);
        return -1;
    }
    snprintf(f->jdir, sizeof(f->jdir), "%s/journal", f->d.dir);
    if (mkdir(f->jdir, 0700) < 0) {
        du_discard(&f->d);
        return -1;
    }
    *state = f;
    return 0;
}

static int rec_teardown(void **state)
{
    struct rec_fix *f = *state;

    if (f->mounted) {
        tu_cleanup();
        du_stop(&f->d); /* it holds files there */
        umount2(f->jdir, MNT_DETACH);
    }
    return du_teardown(state);
}

static void open_topic(const struct rec_fix *f, const char *name, uint32_t mode, uint32_t cap,
                       uint32_t stall_ms, shmbus_bus **bus, shmbus_topic **t)
{
    shmbus_topic_opts o = {
        .mode = mode, .capacity = cap, .max_msg_size = MSG_MAX, .stall_timeout_ms = stall_ms};

    assert_shmbus_ok(shmbus_connect(f->d.bus, bus));
    assert_shmbus_ok(shmbus_open(*bus, name, &o, 0, t));
}

/* Publish messages @p from .. @p to - 1, each "m<seq>" padded to @p len. */
static void publish_range(shmbus_pub *p, uint64_t from, uint64_t to, uint32_t len)
{
    char buf[MSG_MAX];

    for (uint64_t i = from; i < to; i++) {
        memset(buf, 'x', sizeof(buf));
        snprintf(buf, sizeof(buf), "m%llu", (unsigned long long)i);
        assert_shmbus_ok(shmbus_publish(p, buf, len, 5000000000ll));
    }
}

/* Wait until topic @p name's journal holds seq @p last. @return its summary. */
static shmbus_journal_summary wait_last(const struct rec_fix *f, const char *name, uint64_t last)
{
    int64_t end = du_now_ms() + JOURNAL_WAIT_MS;
    shmbus_journal_summary s = {0};

    for (;;) {
        int rc = shmbus_journal_summary_get(f->jdir, name, &s);

        if (rc == 0 && s.records > 0 && s.last_seq >= last)
            return s;
        if (du_now_ms() > end)
            fail_msg("journal of %s: rc %d, last seq %llu after %d ms, want %llu", name, rc,
                     (unsigned long long)s.last_seq, JOURNAL_WAIT_MS, (unsigned long long)last);
        du_sleep_ms(10);
    }
}

/* Read topic @p name's journal: every message from seq @p from to @p to - 1
 * once, in order, with its payload; gaps counted into *@p gaps (may be
 * NULL: then none is allowed). @return the messages read. */
static uint64_t read_back(const struct rec_fix *f, const char *name, uint64_t from, uint64_t to,
                          uint64_t *gaps)
{
    shmbus_journal_reader *r;
    shmbus_journal_record rec;
    uint64_t next = from, n = 0;
    char want[32];
    int rc;

    assert_shmbus_ok(shmbus_journal_reader_open(f->jdir, name, &r));
    while ((rc = shmbus_journal_next(r, &rec)) == 1) {
        if (rec.flags & SHMBUS_JOURNAL_GAP) {
            if (gaps == NULL)
                fail_msg("%s: a gap of %llu at seq %llu", name, (unsigned long long)rec.count,
                         (unsigned long long)rec.seq);
            *gaps += rec.count;
            next = rec.seq + rec.count;
            continue;
        }
        if (rec.seq < from)
            continue;
        if (rec.seq != next)
            fail_msg("%s: seq %llu, want %llu", name, (unsigned long long)rec.seq,
                     (unsigned long long)next);
        snprintf(want, sizeof(want), "m%llu", (unsigned long long)rec.seq);
        if (rec.len < strlen(want) || memcmp(rec.data, want, strlen(want)) != 0)
            fail_msg("%s: seq %llu holds the wrong payload", name, (unsigned long long)rec.seq);
        next++;
        n++;
    }
    assert_int_equal(rc, 0);
    assert_true(next >= to);
    shmbus_journal_reader_close(r);
    return n;
}

/* A topic created after the start is recorded from its first message; a
 * topic no pattern matches is not. */
static void test_rec_new_topic_from_first(void **state)
{
    struct rec_fix *f = *state;
    shmbus_bus *bus;
    shmbus_topic *t, *u;
    shmbus_pub *p, *q;
    char path[PATH_MAX + 16];

    rec_launch(f, NULL);
    open_topic(f, "rec.new", SHMBUS_LOSSY, 1024, 0, &bus, &t);
    assert_shmbus_ok(shmbus_open(bus, "other", NULL, 0, &u));
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    assert_shmbus_ok(shmbus_pub_create(u, &q));
    /* At once: the recorder was seated before the OPEN reply. */
    publish_range(p, 0, 500, 64);
    publish_range(q, 0, 10, 64);
    wait_last(f, "rec.new", 499);
    assert_int_equal(read_back(f, "rec.new", 0, 500, NULL), 500);
    snprintf(path, sizeof(path), "%s/other", f->jdir);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(du_log_wait(f->log, "journal: recording topic rec.new", 1), 1);
    shmbus_pub_destroy(p);
    shmbus_pub_destroy(q);
    shmbus_topic_destroy(u);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* A reliable topic with a small ring under a publisher that never waits
 * on purpose: every message is in the journal, no gap. */
static void test_rec_reliable_complete(void **state)
{
    struct rec_fix *f = *state;
    const uint64_t n = 50000;
    shmbus_journal_summary s;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *p;

    rec_launch(f, NULL);
    open_topic(f, "rec.rel", SHMBUS_RELIABLE, 16, 0, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    publish_range(p, 0, n, 64);
    s = wait_last(f, "rec.rel", n - 1);
    assert_int_equal(s.records, n);
    assert_int_equal(s.gaps, 0);
    assert_int_equal(read_back(f, "rec.rel", 0, n, NULL), n);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

struct pub_run {
    shmbus_topic *t;
    uint64_t n;
    _Atomic uint64_t done;
    int rc;
};

static void *pub_main(void *arg)
{
    struct pub_run *r = arg;
    shmbus_pub *p;
    char buf[64];

    r->rc = shmbus_pub_create(r->t, &p);
    for (uint64_t i = 0; r->rc >= 0 && i < r->n; i++) {
        memset(buf, 'x', sizeof(buf));
        snprintf(buf, sizeof(buf), "m%llu", (unsigned long long)i);
        /* Through a daemon's death and restart: a full ring waits. */
        r->rc = shmbus_publish(p, buf, sizeof(buf), 20000000000ll);
        atomic_store_explicit(&r->done, i + 1, memory_order_relaxed);
    }
    if (r->rc >= 0)
        shmbus_pub_destroy(p);
    return NULL;
}

/* kill -9 the daemon while a publisher fills a reliable topic, then start
 * it again: its recorder continues the journal with nothing missing (the
 * dead recorder's held slot kept in the ring what was not durable). */
static void test_rec_kill9_restart_no_gap(void **state)
{
    struct rec_fix *f = *state;
    struct pub_run run = {.n = 60000};
    shmbus_journal_summary s;
    shmbus_bus *bus;
    pthread_t th;

    rec_launch(f, NULL);
    open_topic(f, "rec.crash", SHMBUS_RELIABLE, 64, 0, &bus, &run.t);
    assert_int_equal(pthread_create(&th, NULL, pub_main, &run), 0);
    while (atomic_load_explicit(&run.done, memory_order_relaxed) < run.n / 3)
        du_sleep_ms(1);
    du_stop_sig(&f->d, SIGKILL);
    du_sleep_ms(50);
    rec_launch(f, NULL);
    pthread_join(th, NULL);
    assert_shmbus_ok(run.rc);
    s = wait_last(f, "rec.crash", run.n - 1);
    assert_int_equal(s.gaps, 0);
    assert_int_equal(read_back(f, "rec.crash", 0, run.n, NULL), run.n);
    shmbus_topic_destroy(run.t);
    shmbus_close(bus);
}

/* A recorder that holds a reliable topic past its stall timeout (here: a
 * sync interval of an hour, so nothing read is released after the first
 * sync) is evicted like any subscriber, logs it and rejoins from the
 * next message (what was published meanwhile is a gap); the publishers
 * go on. */
static void test_rec_evicted_rejoins(void **state)
{
    struct rec_fix *f = *state;
    static const char *const extra[] = {"--journal-sync", "3600000", NULL};
    shmbus_topic_info info;
    uint64_t gaps = 0;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *p;

    rec_launch(f, extra);
    open_topic(f, "rec.stall", SHMBUS_RELIABLE, 16, 200, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    publish_range(p, 0, 100, 64);
    assert_true(du_log_wait(f->log, "journal: topic rec.stall: recorder evicted", 1) >= 1);
    assert_shmbus_ok(shmbus_topic_info_get(t, &info));
    assert_true(info.evicted >= 1);
    /* A last message once the recorder rejoined: what it missed before
     * it becomes a gap record then. */
    du_sleep_ms(500);
    publish_range(p, 100, 101, 64);
    wait_last(f, "rec.stall", 100);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    assert_int_equal(du_stop(&f->d), 0); /* flushes the last messages */
    /* Every seq once, as a message or in a gap: those published between
     * the eviction and the rejoin, if any. */
    assert_int_equal(read_back(f, "rec.stall", 0, 101, &gaps) + gaps, 101);
    assert_int_equal(du_log_count(f->log, "evictions 0"), 0);
}

struct pub_one {
    shmbus_pub *p;
    uint64_t n;
    int rc;
};

static void *pub_timed(void *arg)
{
    struct pub_one *o = arg;
    char buf[64] = "m";

    for (uint64_t i = 0; i < o->n && o->rc >= 0; i++)
        o->rc = shmbus_publish(o->p, buf, sizeof(buf), 3000000000ll);
    return NULL;
}

/* Without a stall timeout a recorder that cannot release holds the
 * publishers (that keeps the journal complete): reported after a second,
 * logged and counted. */
static void test_rec_hold_reported(void **state)
{
    struct rec_fix *f = *state;
    static const char *const extra[] = {"--journal-sync", "3600000", NULL};
    struct pub_one o = {.n = 100};
    shmbus_bus *bus;
    shmbus_topic *t;
    pthread_t th;

    rec_launch(f, extra);
    open_topic(f, "rec.hold", SHMBUS_RELIABLE, 16, 0, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &o.p));
    assert_int_equal(pthread_create(&th, NULL, pub_timed, &o), 0);
    pthread_join(th, NULL);
    assert_int_equal(o.rc, SHMBUS_ERR_TIMEOUT); /* held: the journal's sync is an hour away */
    assert_true(du_log_wait(f->log,
                            "journal: topic rec.hold: the recorder has held its "
                            "publishers back for",
                            1) >= 1);
    shmbus_pub_destroy(o.p);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    assert_int_equal(du_stop(&f->d), 0);
    assert_int_equal(du_log_count(f->log, "holds 1"), 1);
}

/* Wait for an event line holding @p text on @p sub. */
static void wait_event(shmbus_sub *sub, const char *text)
{
    int64_t end = du_now_ms() + JOURNAL_WAIT_MS;
    char buf[SBD_EVENTS_MSG_MAX + 1];

    while (du_now_ms() < end) {
        int n = shmbus_recv(sub, buf, sizeof(buf) - 1, NULL, 100000000ll);

        if (n == SHMBUS_ERR_TIMEOUT)
            continue;
        assert_shmbus_ok(n);
        buf[n] = '\0';
        if (strstr(buf, text) != NULL)
            return;
    }
    fail_msg("no event with %s", text);
}

/* A full disk: recording stops (logged, on the events topic) and its
 * subscriber goes, so the reliable topic's publishers go on at once; once
 * there is room, recording resumes with a gap record. */
static void test_rec_full_disk(void **state)
{
    struct rec_fix *f = *state;
    static const char *const extra[] = {"--journal-segment-size", "64K", NULL};
    shmbus_sub_opts eo = {.start = SHMBUS_START_OLDEST};
    shmbus_topic *t, *ev;
    shmbus_sub *esub;
    shmbus_bus *bus;
    shmbus_pub *p;
    uint64_t gaps = 0;

    if (mount("tmpfs", f->jdir, "tmpfs", 0, "size=256k,mode=0700") < 0)
        skip(); /* not permitted here */
    f->mounted = 1;
    rec_launch(f, extra);
    open_topic(f, "rec.full", SHMBUS_RELIABLE, 16, 0, &bus, &t);
    assert_shmbus_ok(shmbus_open(bus, SBD_EVENTS_TOPIC, NULL, SHMBUS_OPEN_NOCREATE, &ev));
    assert_shmbus_ok(shmbus_sub_create(ev, &eo, &esub));
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    /* 1 MB into 256 KB: a reliable topic without a stall timeout is not
     * held past the stop (publish_range() waits at most 5 s a message). */
    publish_range(p, 0, 1000, 1000);
    wait_event(esub, "\"event\":\"journal_stopped\",\"topic\":\"rec.full\"");
    assert_int_equal(du_log_wait(f->log, "recording stopped, the journal ends at seq", 1), 1);
    assert_int_equal(mount("tmpfs", f->jdir, "tmpfs", MS_REMOUNT, "size=16m,mode=0700"), 0);
    wait_event(esub, "\"event\":\"journal_resumed\",\"topic\":\"rec.full\"");
    publish_range(p, 1000, 1100, 1000);
    wait_last(f, "rec.full", 1099);
    read_back(f, "rec.full", 0, 1100, &gaps);
    assert_true(gaps > 0);
    shmbus_pub_destroy(p);
    shmbus_sub_destroy(esub);
    shmbus_topic_destroy(ev);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* A journal ahead of its topic is an earlier topic's of that name (the
 * topic was removed at a stop and made anew from seq 0): it is moved
 * aside, and the new topic's messages are recorded, not taken for ones
 * the journal has. */
static void test_rec_earlier_topic_set_aside(void **state)
{
    struct rec_fix *f = *state;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *p;
    char names[4][SHMBUS_TOPIC_NAME_MAX + 1];

    rec_launch(f, NULL);
    open_topic(f, "rec.again", SHMBUS_LOSSY, 1024, 0, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    publish_range(p, 0, 100, 64);
    wait_last(f, "rec.again", 99);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    assert_int_equal(du_stop(&f->d), 0); /* unused: removed */
    rec_launch(f, NULL);
    open_topic(f, "rec.again", SHMBUS_LOSSY, 1024, 0, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    publish_range(p, 0, 10, 64);
    assert_int_equal(du_log_wait(f->log, "it is an earlier topic's of that name", 1), 1);
    wait_last(f, "rec.again", 9);
    assert_int_equal(read_back(f, "rec.again", 0, 10, NULL), 10);
    assert_int_equal(shmbus_journal_list(f->jdir, names, 4), 2);
    assert_string_equal(names[0], "rec.again");
    assert_memory_equal(names[1], "rec.again.old-", strlen("rec.again.old-"));
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* Every record of topic @p name's journal is @p len bytes long. */
static void all_of_len(const struct rec_fix *f, const char *name, uint32_t len)
{
    shmbus_journal_reader *r;
    shmbus_journal_record rec;
    int rc;

    assert_shmbus_ok(shmbus_journal_reader_open(f->jdir, name, &r));
    while ((rc = shmbus_journal_next(r, &rec)) == 1)
        if (!(rec.flags & SHMBUS_JOURNAL_GAP) && rec.len != len)
            fail_msg("%s: seq %llu is %u bytes, an earlier topic's, not %u", name,
                     (unsigned long long)rec.seq, rec.len, len);
    assert_int_equal(rc, 0);
    shmbus_journal_reader_close(r);
}

/* An earlier topic's journal is told apart by the tail the topic had when
 * its recorder was seated, not when the journal is first opened: here the
 * first open fails (the journal's path is a file for a while) and the new
 * topic publishes past the old journal's end before the retry opens it.
 * Its messages must not be taken for the old ones the journal has. */
static void test_rec_earlier_topic_late_open(void **state)
{
    struct rec_fix *f = *state;
    char path[PATH_MAX + 32], hidden[PATH_MAX + 32];
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *p;
    int fd;

    rec_launch(f, NULL);
    open_topic(f, "rec.late", SHMBUS_LOSSY, 1024, 0, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    publish_range(p, 0, 10, 64);
    wait_last(f, "rec.late", 9);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    assert_int_equal(du_stop(&f->d), 0); /* unused: removed */
    snprintf(path, sizeof(path), "%s/rec.late", f->jdir);
    snprintf(hidden, sizeof(hidden), "%s/rec.late.hidden", f->d.dir);
    assert_int_equal(rename(path, hidden), 0);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    rec_launch(f, NULL);
    open_topic(f, "rec.late", SHMBUS_LOSSY, 1024, 0, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    publish_range(p, 0, 20, 100);
    assert_int_equal(du_log_wait(f->log, "cannot open its journal", 1), 1);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rename(hidden, path), 0);
    assert_int_equal(du_log_wait(f->log, "it is an earlier topic's of that name", 1), 1);
    wait_last(f, "rec.late", 19);
    assert_int_equal(read_back(f, "rec.late", 0, 20, NULL), 20);
    all_of_len(f, "rec.late", 100);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* A client truncates a recorded topic's segment: the recorder thread's
 * next look at the ring faults, the SIGBUS guard (guard.h) catches it as
 * it does for the daemon's other threads, and recording of that topic
 * ends; the daemon lives on. The reaper scans only every second, so the
 * recorder, which looks every few tens of ms, is the first to fault. */
static void test_rec_truncated_segment(void **state)
{
    struct rec_fix *f = *state;
    static const char *const extra[] = {"--reap-interval", "1000", NULL};
    char seg[SHMBUS_NAME_MAX + 2];
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *p;
    int fd;

    rec_launch(f, extra);
    open_topic(f, "rec.trunc", SHMBUS_RELIABLE, 64, 0, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    publish_range(p, 0, 10, 64);
    wait_last(f, "rec.trunc", 9);
    shmbus_pub_destroy(p);
    snprintf(seg, sizeof(seg), "/shmbus.%s.rec.trunc", f->d.bus);
    fd = shm_open(seg, O_RDWR | O_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 0), 0);
    close(fd);
    assert_int_equal(du_log_wait(f->log, "its segment was truncated: no longer recorded", 1), 1);
    assert_int_equal(kill(f->d.pid, 0), 0);
    assert_int_equal(read_back(f, "rec.trunc", 0, 10, NULL), 10);
    shmbus_topic_destroy(t); /* never touched since the truncation */
    shmbus_close(bus);
}

/* Retention by age reaches a topic gone quiet: its files age past
 * --journal-retain with no message to flush, and still go (all but the
 * newest, which the writer never deletes). */
static void test_rec_retain_idle(void **state)
{
    struct rec_fix *f = *state;
    static const char *const extra[] = {"--journal-segment-size", "64K", "--journal-retain", "2s",
                                        NULL};
    shmbus_journal_summary s = {0};
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *p;
    int64_t end;

    rec_launch(f, extra);
    open_topic(f, "rec.idle", SHMBUS_RELIABLE, 64, 0, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    publish_range(p, 0, 300, 1000); /* about five files of 64 KiB */
    s = wait_last(f, "rec.idle", 299);
    assert_int_equal(s.first_seq, 0);
    /* Quiet from now on: the files' last records age past 2 s. */
    end = du_now_ms() + JOURNAL_WAIT_MS;
    while (du_now_ms() < end) {
        assert_shmbus_ok(shmbus_journal_summary_get(f->jdir, "rec.idle", &s));
        if (s.first_seq > 0)
            break;
        du_sleep_ms(50);
    }
    if (s.first_seq == 0)
        fail_msg("rec.idle: nothing retired %d ms after it went quiet", JOURNAL_WAIT_MS);
    assert_int_equal(s.last_seq, 299);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* A set-aside journal DIR/@p aside of topic @p owner, as the daemon makes
 * one (a journal renamed): @p n messages of 500 bytes published @p age_ns
 * ago, in files of 64 KiB. */
static void aside_make(const struct rec_fix *f, const char *owner, const char *aside, uint64_t n,
                       uint64_t age_ns)
{
    shmbus_journal_opts o = {.segment_size = 64 << 10};
    char from[PATH_MAX + 64], to[PATH_MAX + 64];
    static unsigned char buf[500];
    shmbus_journal *j;

    assert_shmbus_ok(shmbus_journal_open(f->jdir, owner, &o, &j));
    for (uint64_t s = 0; s < n; s++) {
        shmbus_msg m = {.data = buf, .len = sizeof(buf), .seq = s, .publisher_pid = 1};

        m.timestamp_ns = sb_real_ns() - age_ns;
        assert_int_equal(shmbus_journal_append(j, &m), 1);
    }
    assert_shmbus_ok(shmbus_journal_close(j));
    snprintf(from, sizeof(from), "%s/%s", f->jdir, owner);
    snprintf(to, sizeof(to), "%s/%s", f->jdir, aside);
    assert_int_equal(rename(from, to), 0);
}

/* Summary of journal @p name, zeros with no files if it is gone. */
static shmbus_journal_summary summary_or_none(const struct rec_fix *f, const char *name)
{
    shmbus_journal_summary s = {0};
    int rc = shmbus_journal_summary_get(f->jdir, name, &s);

    if (rc == -ENOENT)
        memset(&s, 0, sizeof(s));
    else
        assert_shmbus_ok(rc);
    return s;
}

#define ASIDE_LIMIT (300u << 10)

/* Set-aside journals are their topic's history for --journal-retain: with
 * the topic's journal they keep to its size, the oldest set-aside files
 * going first, and by age they go, the newest file and the directory too;
 * another topic's journal under such a name is left alone. */
static void test_rec_aside_retained(void **state)
{
    struct rec_fix *f = *state;
    static const char *const extra[] = {"--journal-retain", "300K,1h", NULL};
    shmbus_journal_summary old1, old2, cur, s;
    char path[PATH_MAX + 32];
    shmbus_bus *bus;
    shmbus_topic *t, *t2;
    shmbus_pub *p;
    int64_t end;

    aside_make(f, "rec.hist", "rec.hist.old-1", 400, 0);
    aside_make(f, "rec.hist", "rec.hist.old-2", 400, 0);
    aside_make(f, "rec.aged", "rec.aged.old-7", 100, 2 * 3600ull * 1000000000ull);
    aside_make(f, "rec.other", "rec.aged.old-8", 100, 2 * 3600ull * 1000000000ull);
    old1 = summary_or_none(f, "rec.hist.old-1");
    old2 = summary_or_none(f, "rec.hist.old-2");
    assert_true(old1.bytes + old2.bytes > ASIDE_LIMIT);
    rec_launch(f, extra);
    open_topic(f, "rec.hist", SHMBUS_LOSSY, 64, 0, &bus, &t);
    assert_shmbus_ok(shmbus_open(
        bus, "rec.aged", &(shmbus_topic_opts){.capacity = 64, .max_msg_size = MSG_MAX}, 0, &t2));
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    publish_range(p, 0, 10, 64);
    wait_last(f, "rec.hist", 9);
    end = du_now_ms() + JOURNAL_WAIT_MS;
    while (du_now_ms() < end && (summary_or_none(f, "rec.aged.old-7").files != 0 ||
                                 summary_or_none(f, "rec.hist.old-1").files == old1.files))
        du_sleep_ms(50);
    /* By age: all of it, and its directory. */
    assert_int_equal(summary_or_none(f, "rec.aged.old-7").files, 0);
    snprintf(path, sizeof(path), "%s/rec.aged.old-7", f->jdir);
    assert_int_equal(access(path, F_OK), -1);
    /* By size: the older set-aside journal lost its oldest files. */
    s = summary_or_none(f, "rec.hist.old-1");
    cur = summary_or_none(f, "rec.hist");
    assert_true(s.files < old1.files);
    if (s.files > 0)
        assert_int_equal(s.last_seq, old1.last_seq);
    assert_int_equal(summary_or_none(f, "rec.hist.old-2").files, old2.files);
    assert_true(cur.bytes + s.bytes + old2.bytes <= ASIDE_LIMIT);
    /* Another topic's files under a set-aside name of rec.aged: kept. */
    assert_int_equal(summary_or_none(f, "rec.aged.old-8").records, 100);
    assert_true(du_log_count(f->log, "retention deleted") >= 2);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t2);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* A symbolic link at DIR/TOPIC, which anyone who may write in the journal
 * directory could plant to send a root daemon's writes elsewhere, is never
 * followed: the topic's recording stops, saying why, and nothing lands
 * where it points. */
static void test_rec_symlink_refused(void **state)
{
    struct rec_fix *f = *state;
    char target[PATH_MAX], link[PATH_MAX + 32];
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *p;

    snprintf(target, sizeof(target), "%s/elsewhere", f->d.dir);
    snprintf(link, sizeof(link), "%s/rec.link", f->jdir);
    assert_int_equal(mkdir(target, 0700), 0);
    assert_int_equal(symlink(target, link), 0);
    rec_launch(f, NULL);
    open_topic(f, "rec.link", SHMBUS_LOSSY, 64, 0, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    publish_range(p, 0, 10, 64);
    assert_int_equal(
        du_log_wait(f->log, "a symbolic link in its place or in it, never followed", 1), 1);
    assert_int_equal(tu_dir_entries(target), 0);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* JOURNAL on a raw socket: the directory for a recorded topic, -ENOENT for
 * one that is not, and for a topic id not open on the connection. */
static void test_rec_journal_request(void **state)
{
    struct rec_fix *f = *state;
    struct sb_wire_open o = {0};
    struct sb_wire_open_ok ok;
    struct sb_wire_journal_ok jok;
    struct sb_wire_ref ref = {0};
    struct du_reply r;
    char abs[PATH_MAX];
    uint32_t rec_id, other_id;
    int s;

    rec_launch(f, NULL);
    s = du_raw_connect(f->d.sock);
    assert_true(s >= 0);
    assert_int_equal(du_raw_hello(s, 1, (uint32_t)getpid()), 0);
    du_raw_ok(s, 1, &r);
    snprintf(o.name, sizeof(o.name), "rec.asked");
    assert_int_equal(du_raw_req(s, SB_MSG_OPEN, 2, &o, sizeof(o)), 0);
    assert_int_equal(du_raw_ok(s, 2, &r), sizeof(ok));
    close(r.fd);
    memcpy(&ok, r.body, sizeof(ok));
    rec_id = ok.topic;
    snprintf(o.name, sizeof(o.name), "plain");
    assert_int_equal(du_raw_req(s, SB_MSG_OPEN, 3, &o, sizeof(o)), 0);
    assert_int_equal(du_raw_ok(s, 3, &r), sizeof(ok));
    close(r.fd);
    memcpy(&ok, r.body, sizeof(ok));
    other_id = ok.topic;

    ref.topic = rec_id;
    assert_int_equal(du_raw_req(s, SB_MSG_JOURNAL, 4, &ref, sizeof(ref)), 0);
    assert_int_equal(du_raw_ok(s, 4, &r), sizeof(jok));
    memcpy(&jok, r.body, sizeof(jok));
    assert_non_null(realpath(f->jdir, abs));
    assert_string_equal(jok.dir, abs);
    ref.topic = other_id;
    assert_int_equal(du_raw_req(s, SB_MSG_JOURNAL, 5, &ref, sizeof(ref)), 0);
    assert_raw_err(s, 5, -ENOENT);
    ref.topic = rec_id + other_id + 100;
    assert_int_equal(du_raw_req(s, SB_MSG_JOURNAL, 6, &ref, sizeof(ref)), 0);
    assert_raw_err(s, 6, -ENOENT);
    close(s);
}

/* shmbusd with @p args exits 2 with @p why on stderr. */
static void refused(struct rec_fix *f, const char *const *args, const char *why)
{
    char path[PATH_MAX];
    pid_t pid;
    int fd;

    snprintf(path, sizeof(path), "%s/refused.log", f->d.dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    pid = du_spawn(&f->d, args, fd);
    close(fd);
    assert_true(pid > 0);
    assert_int_equal(du_wait_ms(pid, 10000), 2);
    if (du_log_count(path, why) != 1)
        fail_msg("no '%s' in what shmbusd said", why);
}

/* A second daemon (another bus) given the journal directory of a running
 * one is refused at start, exit 2, naming the bus that holds it; the first
 * records on. */
static void test_rec_dir_in_use(void **state)
{
    struct rec_fix *f = *state;
    const char *const args[] = {"--record", "rec.*", "--journal-dir", f->jdir, NULL};
    struct du_daemon other = f->d;
    char path[PATH_MAX], why[256];
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *p;
    pid_t pid;
    int fd, st;

    rec_launch(f, NULL);
    snprintf(other.bus, sizeof(other.bus), "%.*so", (int)sizeof(other.bus) - 2, f->d.bus);
    snprintf(path, sizeof(path), "%s/other.log", f->d.dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    pid = du_spawn(&other, args, fd);
    close(fd);
    assert_true(pid > 0);
    st = du_wait_ms(pid, 10000);
    if (st < 0) { /* it started: stop it and take its files before failing */
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        du_segments(other.bus, 1);
        snprintf(path, sizeof(path), "/dev/shm/shmbus-%s.lock", other.bus);
        unlink(path);
    }
    assert_int_equal(st, 2);
    snprintf(why, sizeof(why), "is in use by another shmbusd (bus '%s'", f->d.bus);
    if (du_log_count(path, why) != 1)
        fail_msg("no '%s' in what the second shmbusd said", why);
    open_topic(f, "rec.inuse", SHMBUS_LOSSY, 64, 0, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    publish_range(p, 0, 10, 64);
    wait_last(f, "rec.inuse", 9);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* Bad recording options stop the daemon at start, saying why. */
static void test_rec_bad_options(void **state)
{
    struct rec_fix *f = *state;
    char file[PATH_MAX], missing[PATH_MAX];
    int fd;

    snprintf(file, sizeof(file), "%s/afile", f->d.dir);
    snprintf(missing, sizeof(missing), "%s/missing", f->d.dir);
    fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
    refused(f, (const char *const[]){"--record", "a*", NULL}, "--record needs --journal-dir");
    refused(f, (const char *const[]){"--journal-dir", f->jdir, NULL}, "need --record");
    refused(f, (const char *const[]){"--record", "a*", "--journal-dir", missing, NULL},
            "No such file or directory");
    refused(f, (const char *const[]){"--record", "a*", "--journal-dir", file, NULL},
            "not a directory");
    refused(f,
            (const char *const[]){"--record", "a*", "--journal-dir", f->jdir, "--journal-sync",
                                  "often", NULL},
            "--journal-sync wants " SB_UNITS_SYNC_WANTS ", not 'often'");
    refused(f,
            (const char *const[]){"--record", "a*", "--journal-dir", f->jdir, "--journal-sync",
                                  "3600001", NULL},
            "--journal-sync wants " SB_UNITS_SYNC_WANTS ", not '3600001'");
    refused(f,
            (const char *const[]){"--record", "a*", "--journal-dir", f->jdir,
                                  "--journal-segment-size", "1K", NULL},
            "--journal-segment-size wants a size from 64K to 1024G, not '1K'");
    refused(f,
            (const char *const[]){"--record", "a*", "--journal-dir", f->jdir, "--journal-retain",
                                  "10x", NULL},
            "--journal-retain wants " SB_UNITS_RETAIN_WANTS ", not '10x'");
    refused(f,
            (const char *const[]){"--record", "a*", "--journal-dir", f->jdir, "--journal-retain",
                                  "1h,2d", NULL},
            "--journal-retain wants " SB_UNITS_RETAIN_WANTS ", not '1h,2d'");
    refused(f, (const char *const[]){"--record", "", "--journal-dir", f->jdir, NULL},
            "--record wants a pattern of 1 to 128 bytes, not ''");
    /* And good ones start it. */
    rec_launch(f, (const char *const[]){"--journal-retain", "1G,7d", "--journal-sync", "100",
                                        "--journal-segment-size", "1M", NULL});
}

#define REC_TEST(fn) cmocka_unit_test_setup_teardown(fn, rec_setup, rec_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        REC_TEST(test_rec_new_topic_from_first),
        REC_TEST(test_rec_reliable_complete),
        REC_TEST(test_rec_kill9_restart_no_gap),
        REC_TEST(test_rec_full_disk),
        REC_TEST(test_rec_evicted_rejoins),
        REC_TEST(test_rec_hold_reported),
        REC_TEST(test_rec_earlier_topic_set_aside),
        REC_TEST(test_rec_earlier_topic_late_open),
        REC_TEST(test_rec_truncated_segment),
        REC_TEST(test_rec_retain_idle),
        REC_TEST(test_rec_aside_retained),
        REC_TEST(test_rec_symlink_refused),
        REC_TEST(test_rec_journal_request),
        REC_TEST(test_rec_dir_in_use),
        REC_TEST(test_rec_bad_options),
    };

    tu_init();
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("rec_daemon", tests, NULL, NULL);
}
