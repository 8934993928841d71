/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's registry (daemon/registry.c), driven directly: topics are
 * created on first open and found again, options and limits are enforced,
 * listing pages through names in order, sessions keep the topic counters
 * right, and fini leaves no segment behind. Every test gets a fresh
 * registry on the bus "treg<pid>"; its teardown finishes the registry and
 * fails if any segment of that bus is left in /dev/shm.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <sys/socket.h>

#include "log.h"
#include "registry.h"
#include "segfile.h"
#include "registry/admin.h"
#include "util/proc.h"

#define SHM_DIR "/dev/shm"

struct fx {
    struct sbd_config cfg;
    struct sbd_registry reg;
    int live; /* the registry still needs sbd_registry_fini() */
    char why[SB_WIRE_ERR_TEXT];
};

static char bus_prefix[64]; /* SBD_SEG_PREFIX "treg<pid>." */

/* Count, and optionally remove, this bus's segments in /dev/shm. */
static int bus_segments(int remove)
{
    DIR *d = opendir(SHM_DIR);
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, bus_prefix, strlen(bus_prefix)) != 0)
            continue;
        n++;
        if (remove)
            shmbus_topic_unlink(e->d_name);
    }
    closedir(d);
    return n;
}

/* At exit, whatever a failed test left behind. */
static void bus_cleanup(void)
{
    bus_segments(1);
}

static int group_setup(void **state)
{
    (void)state;
    urcu_memb_register_thread();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    urcu_memb_unregister_thread();
    return 0;
}

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    sbd_config_defaults(&f->cfg);
    snprintf(f->cfg.bus, sizeof(f->cfg.bus), "treg%d", (int)getpid());
    f->cfg.max_topics = 256;
    f->cfg.max_clients = 64;
    f->cfg.max_slots = 16;
    f->cfg.max_segment = 1u << 20;
    f->cfg.max_shm = 1u << 28;
    if (sbd_registry_init(&f->reg, &f->cfg) < 0) {
        free(f);
        return -1;
    }
    f->live = 1;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    int left;

    if (f->live)
        sbd_registry_fini(&f->reg, 1);
    free(f);
    left = bus_segments(1);
    if (left > 0)
        fprintf(stderr, "%d segment(s) of the bus left after sbd_registry_fini()\n", left);
    return left > 0 ? -1 : 0;
}

/* A small topic request: 8 cells of 64 bytes, 2 slots, 1 group. */
static struct sb_wire_open small_req(const char *name)
{
    struct sb_wire_open q = {.mode = SHMBUS_LOSSY,
                             .capacity = 8,
                             .max_msg_size = 64,
                             .max_subscribers = 2,
                             .max_groups = 1};

    assert_shmbus_ok(sb_wire_put_name(q.name, sizeof(q.name), name));
    return q;
}

static int reg_open(struct fx *f, const struct sb_wire_open *q, struct sbd_topic **t, int *created)
{
    f->why[0] = '\0';
    *created = -1;
    return sbd_topic_open(&f->reg, q, t, created, f->why, sizeof(f->why));
}

/* Create topic @p name's segment at its first name on the fixture's bus,
 * as a process would without the daemon, with @p o; the name into @p seg. */
static shmbus_topic *first_name_create(struct fx *f, const char *name, const shmbus_topic_opts *o,
                                       char seg[SHMBUS_NAME_MAX + 1])
{
    shmbus_topic *t;

    sbd_seg_name(seg, SHMBUS_NAME_MAX + 1, f->cfg.bus, name, 0);
    assert_shmbus_ok(shmbus_topic_create(seg, o, &t));
    return t;
}

/* Open (creating) a small topic that must succeed. */
static struct sbd_topic *reg_create(struct fx *f, const char *name)
{
    struct sb_wire_open q = small_req(name);
    struct sbd_topic *t = NULL;
    int created;

    assert_shmbus_ok(reg_open(f, &q, &t, &created));
    assert_int_equal(created, 1);
    assert_non_null(t);
    return t;
}

/* Does the segment of topic @p name exist in /dev/shm? */
static int seg_exists(const struct fx *f, const char *name, struct stat *st)
{
    char path[512];
    struct stat tmp;

    snprintf(path, sizeof(path), SHM_DIR "/" SBD_SEG_PREFIX "%s.%s", f->cfg.bus, name);
    return stat(path, st ? st : &tmp) == 0;
}

static uint64_t small_size(void)
{
    shmbus_topic_opts o = {.mode = SHMBUS_LOSSY,
                           .capacity = 8,
                           .max_msg_size = 64,
                           .max_subscribers = 2,
                           .max_groups = 1};
    shmbus_topic_opts eff;
    uint64_t size = 0;

    assert_shmbus_ok(sb_admin_plan(&o, &eff, &size));
    return size;
}

static void assert_why_has(const struct fx *f, const char *what)
{
    if (strstr(f->why, what) == NULL)
        fail_msg("reason '%s' does not mention '%s'", f->why, what);
}

static uint32_t load(_Atomic uint32_t *c)
{
    /* relaxed: the test thread is the only writer. */
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* --------------------------------------------------------------- topics */

static void test_registry_open_creates_segment(void **state)
{
    struct fx *f = *state;
    struct sbd_topic *t, *found, *near[2];
    char seg[SHMBUS_NAME_MAX + 1];
    struct stat st;

    assert_false(seg_exists(f, "alpha", NULL));
    t = reg_create(f, "alpha");
    assert_string_equal(t->name, "alpha");
    sbd_seg_name(seg, sizeof(seg), f->cfg.bus, "alpha", 0);
    assert_string_equal(t->seg, seg);
    assert_true(seg_exists(f, "alpha", &st));
    assert_int_equal((uint64_t)st.st_size, t->info.segment_size);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(t->info.mode, SHMBUS_LOSSY);
    assert_int_equal(t->info.capacity, 8);
    assert_int_equal(t->info.max_msg_size, 64);
    assert_int_equal(t->info.max_subscribers, 2);
    assert_int_equal(t->info.max_groups, 1);
    assert_int_not_equal(t->id, 0);
    assert_int_equal(f->reg.ntopics, 1);
    assert_int_equal(f->reg.shm_bytes, t->info.segment_size);
    assert_int_equal(t->info.segment_size, small_size());
    /* No assertion inside the read section: a failure would leave it held. */
    urcu_memb_read_lock();
    found = sbd_topic_lookup(&f->reg, "alpha");
    near[0] = sbd_topic_lookup(&f->reg, "alph");
    near[1] = sbd_topic_lookup(&f->reg, "alpha2");
    urcu_memb_read_unlock();
    assert_ptr_equal(found, t);
    assert_null(near[0]);
    assert_null(near[1]);
}

static void test_registry_reopen_returns_same_topic(void **state)
{
    struct fx *f = *state;
    struct sbd_topic *t = reg_create(f, "orders"), *again = NULL, *other;
    struct sb_wire_open q = small_req("orders");
    struct sb_wire_open any = {.mode = 0};
    int created;

    assert_shmbus_ok(reg_open(f, &q, &again, &created));
    assert_ptr_equal(again, t);
    assert_int_equal(created, 0);
    /* Zero options accept whatever exists. */
    assert_shmbus_ok(sb_wire_put_name(any.name, sizeof(any.name), "orders"));
    again = NULL;
    assert_shmbus_ok(reg_open(f, &any, &again, &created));
    assert_ptr_equal(again, t);
    assert_int_equal(created, 0);
    assert_int_equal(f->reg.ntopics, 1);
    assert_int_equal(f->reg.shm_bytes, t->info.segment_size);
    other = reg_create(f, "orders2");
    assert_ptr_not_equal(other, t);
    assert_int_not_equal(other->id, t->id);
    assert_int_equal(f->reg.ntopics, 2);
}

static void test_registry_open_mismatch_explains(void **state)
{
    struct fx *f = *state;
    struct sbd_topic *t = reg_create(f, "quotes"), *got;
    const char *what[] = {"mode",       "capacity", "max_msg_size", "max_subscribers",
                          "max_groups", "flags"};
    int created;

    for (size_t i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
        struct sb_wire_open q = small_req("quotes");
        uint32_t *field[] = {&q.mode,       &q.capacity,   &q.max_msg_size, &q.max_subscribers,
                             &q.max_groups, &q.topic_flags};

        *field[i] = i == 0 ? SHMBUS_RELIABLE : i == 5 ? SHMBUS_TOPIC_EXCLUSIVE : *field[i] * 2;
        got = NULL;
        assert_shmbus_rc(reg_open(f, &q, &got, &created), SHMBUS_ERR_MISMATCH);
        assert_int_equal(created, 0);
        assert_why_has(f, what[i]);
        assert_why_has(f, "quotes");
    }
    assert_int_equal(f->reg.ntopics, 1);
    assert_int_equal(t->info.capacity, 8);
}

static void test_registry_open_nocreate(void **state)
{
    struct fx *f = *state;
    struct sb_wire_open q = small_req("absent");
    struct sbd_topic *t = NULL, *made;
    int created;

    q.flags = SHMBUS_OPEN_NOCREATE;
    assert_shmbus_rc(reg_open(f, &q, &t, &created), -ENOENT);
    assert_int_equal(created, 0);
    assert_why_has(f, "absent");
    assert_false(seg_exists(f, "absent", NULL));
    assert_int_equal(f->reg.ntopics, 0);
    assert_int_equal(f->reg.shm_bytes, 0);
    made = reg_create(f, "absent");
    assert_shmbus_ok(reg_open(f, &q, &t, &created));
    assert_ptr_equal(t, made);
    assert_int_equal(created, 0);
}

static void test_registry_open_invalid_options(void **state)
{
    struct fx *f = *state;
    struct sb_wire_open q = small_req("badopts");
    struct sbd_topic *t = NULL;
    int created;

    q.capacity = 3;
    assert_shmbus_rc(reg_open(f, &q, &t, &created), SHMBUS_ERR_INVALID);
    /* The reason names every option's bounds, layout.h's through admin.h. */
    assert_string_equal(f->why, "invalid topic options (capacity: power of two 2..2^24, "
                                "max_msg_size 1..16 MiB, slots 1..1024, groups 1..256)");
    assert_false(seg_exists(f, "badopts", NULL));
    assert_int_equal(f->reg.ntopics, 0);
    assert_int_equal(f->reg.shm_bytes, 0);
}

/* A segment at the first name that the registry may not serve (open to
 * others) is left alone, not taken over: the topic gets a segment of
 * another generation. */
static void test_registry_open_foreign_segment(void **state)
{
    struct fx *f = *state;
    struct sb_wire_open q = small_req("foreign");
    shmbus_topic_opts open = {.perm = 0666};
    char seg[SHMBUS_NAME_MAX + 1];
    shmbus_topic *mine;
    struct sbd_topic *t = NULL;
    int created = 0;

    mine = first_name_create(f, "foreign", &open, seg);
    assert_shmbus_ok(reg_open(f, &q, &t, &created));
    assert_int_equal(created, 1);
    assert_string_not_equal(t->seg, seg);
    assert_ptr_equal(sbd_seg_topic(f->cfg.bus, t->seg),
                     t->seg + strlen(t->seg) - strlen("foreign"));
    assert_int_equal(f->reg.ntopics, 1);
    assert_true(seg_exists(f, "foreign", NULL));
    shmbus_topic_destroy(mine);
    assert_shmbus_ok(shmbus_topic_unlink(seg));
}

/* A segment at the first name that the registry may serve (our uid,
 * 0600: the daemonless API's) is served, not doubled: with the options
 * asked for it is the topic; with others the open is a mismatch. */
static void test_registry_open_first_name_served(void **state)
{
    struct fx *f = *state;
    struct sb_wire_open q = small_req("direct");
    shmbus_topic_opts o = {.mode = q.mode,
                           .capacity = q.capacity,
                           .max_msg_size = q.max_msg_size,
                           .max_subscribers = q.max_subscribers,
                           .max_groups = q.max_groups,
                           .perm = 0600};
    char seg[SHMBUS_NAME_MAX + 1];
    shmbus_topic *mine;
    struct sbd_topic *t = NULL;
    int created = 0;

    mine = first_name_create(f, "direct", &o, seg);
    assert_shmbus_ok(reg_open(f, &q, &t, &created));
    assert_int_equal(created, 0);
    assert_string_equal(t->seg, seg);
    assert_int_equal(f->reg.ntopics, 1);
    shmbus_topic_destroy(mine);

    o.capacity *= 2;
    mine = first_name_create(f, "other", &o, seg);
    q = small_req("other");
    assert_shmbus_rc(reg_open(f, &q, &t, &created), SHMBUS_ERR_MISMATCH);
    shmbus_topic_destroy(mine);
}

/* The first name holding a segment its creator (of our uid) is still
 * writing: the open says "not ready", and makes no segment of another
 * generation that would split the topic. Once written, it is served. */
static void test_registry_open_first_name_not_ready(void **state)
{
    struct fx *f = *state;
    struct sb_wire_open q = small_req("early");
    char path[512];
    struct sbd_topic *t = NULL;
    shmbus_topic *mine;
    int created, fd;

    snprintf(path, sizeof(path), SHM_DIR "/" SBD_SEG_PREFIX "%s.early", f->cfg.bus);
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600); /* not sized yet */
    assert_true(fd >= 0);
    close(fd);
    assert_shmbus_rc(reg_open(f, &q, &t, &created), SHMBUS_ERR_NOT_READY);
    assert_why_has(f, "still being created");
    assert_int_equal(f->reg.ntopics, 0);
    assert_int_equal(bus_segments(0), 1);
    assert_int_equal(unlink(path), 0);
    sbd_seg_name(path, sizeof(path), f->cfg.bus, "early", 0);
    assert_shmbus_ok(shmbus_topic_create(
        path,
        &(shmbus_topic_opts){
            .capacity = 8, .max_msg_size = 64, .max_subscribers = 2, .max_groups = 1, .perm = 0600},
        &mine));
    q.flags = SHMBUS_OPEN_NOCREATE; /* served all the same */
    assert_shmbus_ok(reg_open(f, &q, &t, &created));
    assert_int_equal(created, 0);
    assert_string_equal(t->seg, path);
    shmbus_topic_destroy(mine);
}

/* A first-name segment of our uid passes the bus's limits like a new one:
 * it is refused (SHMBUS_ERR_LIMIT, naming the option) and left in place. */
static void test_registry_open_first_name_limits(void **state)
{
    struct fx *f = *state;
    struct sb_wire_open q = small_req("big");
    shmbus_topic_opts o = {.capacity = 8, .max_msg_size = 64, .max_subscribers = 8, .perm = 0600};
    char seg[SHMBUS_NAME_MAX + 1];
    struct sbd_topic *t = NULL;
    shmbus_topic *mine;
    int created;

    f->cfg.max_slots = 4;
    mine = first_name_create(f, "big", &o, seg);
    assert_shmbus_rc(reg_open(f, &q, &t, &created), SHMBUS_ERR_LIMIT);
    assert_why_has(f, "--max-slots");
    assert_int_equal(f->reg.ntopics, 0);
    assert_int_equal(bus_segments(0), 1);
    shmbus_topic_destroy(mine);
    assert_shmbus_ok(shmbus_topic_unlink(seg));
}

/* --------------------------------------------------------------- limits */

static void test_registry_limit_topics(void **state)
{
    struct fx *f = *state;
    struct sb_wire_open q = small_req("t3");
    struct sbd_topic *t = NULL, *first;
    int created;

    f->cfg.max_topics = 3;
    first = reg_create(f, "t0");
    reg_create(f, "t1");
    reg_create(f, "t2");
    assert_shmbus_rc(reg_open(f, &q, &t, &created), SHMBUS_ERR_LIMIT);
    assert_int_equal(created, 0);
    assert_why_has(f, "--max-topics");
    assert_false(seg_exists(f, "t3", NULL));
    assert_int_equal(f->reg.ntopics, 3);
    /* Existing topics still open. */
    q = small_req("t0");
    assert_shmbus_ok(reg_open(f, &q, &t, &created));
    assert_ptr_equal(t, first);
}

static void test_registry_limit_segment(void **state)
{
    struct fx *f = *state;
    struct sb_wire_open q = small_req("big");
    struct sbd_topic *t = NULL;
    uint64_t size = small_size();
    int created;

    f->cfg.max_segment = size - 1;
    assert_shmbus_rc(reg_open(f, &q, &t, &created), SHMBUS_ERR_LIMIT);
    assert_why_has(f, "--max-segment");
    assert_false(seg_exists(f, "big", NULL));
    assert_int_equal(f->reg.ntopics, 0);
    f->cfg.max_segment = size;
    assert_shmbus_ok(reg_open(f, &q, &t, &created));
    assert_int_equal(created, 1);
}

static void test_registry_limit_shm(void **state)
{
    struct fx *f = *state;
    struct sb_wire_open q = small_req("s2");
    struct sbd_topic *t = NULL;
    uint64_t size = small_size();
    int created;

    f->cfg.max_shm = 2 * size + size / 2;
    reg_create(f, "s0");
    reg_create(f, "s1");
    assert_int_equal(f->reg.shm_bytes, 2 * size);
    assert_shmbus_rc(reg_open(f, &q, &t, &created), SHMBUS_ERR_LIMIT);
    assert_why_has(f, "--max-shm");
    assert_false(seg_exists(f, "s2", NULL));
    assert_int_equal(f->reg.ntopics, 2);
    assert_int_equal(f->reg.shm_bytes, 2 * size);
    f->cfg.max_shm = 3 * size;
    assert_shmbus_ok(reg_open(f, &q, &t, &created));
    assert_int_equal(f->reg.shm_bytes, 3 * size);
}

static void test_registry_limit_slots(void **state)
{
    struct fx *f = *state;
    struct sb_wire_open q = small_req("slots");
    struct sbd_topic *t = NULL;
    int created;

    f->cfg.max_slots = 4;
    q.max_subscribers = 5;
    assert_shmbus_rc(reg_open(f, &q, &t, &created), SHMBUS_ERR_LIMIT);
    assert_why_has(f, "--max-slots");
    assert_false(seg_exists(f, "slots", NULL));
    q.max_subscribers = 4;
    assert_shmbus_ok(reg_open(f, &q, &t, &created));
    assert_int_equal(t->info.max_subscribers, 4);
}

/* max_subscribers 0 asks for the default (64 slots): --max-slots bounds it too. */
static void test_registry_limit_slots_covers_default(void **state)
{
    struct fx *f = *state;
    struct sb_wire_open q = small_req("dflt");
    struct sbd_topic *t = NULL;
    int created, rc;

    f->cfg.max_slots = 4;
    q.max_subscribers = 0;
    rc = reg_open(f, &q, &t, &created);
    if (rc == 0 && t->info.max_subscribers > f->cfg.max_slots)
        fail_msg("topic created with %u subscriber slots under --max-slots %u",
                 t->info.max_subscribers, f->cfg.max_slots);
    if (rc < 0)
        assert_shmbus_rc(rc, SHMBUS_ERR_LIMIT);
}

/* ---------------------------------------------------------------- lists */

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* 100 names whose order differs from their creation order and numbering. */
#define LIST_N 100
static void list_names(char names[LIST_N][16], char *sorted[LIST_N])
{
    const char *pfx[] = {"n", "N", "n.", "n-", "_", "n:"};
    uint32_t x = 2463534242u;

    for (unsigned k = 0; k < LIST_N; k++)
        snprintf(names[k], 16, "%s%u", pfx[k % 6], k);
    for (unsigned k = LIST_N - 1; k > 0; k--) { /* Fisher-Yates, xorshift32 */
        char tmp[16];
        unsigned j;

        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        j = x % (k + 1);
        memcpy(tmp, names[k], 16);
        memcpy(names[k], names[j], 16);
        memcpy(names[j], tmp, 16);
    }
    for (unsigned k = 0; k < LIST_N; k++)
        sorted[k] = names[k];
    qsort(sorted, LIST_N, sizeof(sorted[0]), name_cmp);
}

static void test_registry_list_pages_in_order(void **state)
{
    struct fx *f = *state;
    static char names[LIST_N][16];
    char *sorted[LIST_N];
    shmbus_topic_entry page[7];
    char after[SHMBUS_TOPIC_NAME_MAX + 1] = "";
    unsigned got, seen = 0, pages = 0;

    list_names(names, sorted);
    for (unsigned k = 0; k < LIST_N; k++)
        reg_create(f, names[k]);
    do {
        got = sbd_topic_list(&f->reg, after, page, 7);
        assert_true(got <= 7);
        for (unsigned i = 0; i < got; i++, seen++) {
            assert_true(seen < LIST_N);
            assert_string_equal(page[i].name, sorted[seen]);
            assert_int_equal(page[i].capacity, 8);
            assert_int_equal(page[i].max_msg_size, 64);
            assert_int_equal(page[i].mode, SHMBUS_LOSSY);
            assert_int_equal(page[i].segment_size, small_size());
        }
        if (got > 0)
            memcpy(after, page[got - 1].name, sizeof(after));
        pages++;
    } while (got == 7);
    assert_int_equal(seen, LIST_N);
    assert_int_equal(pages, LIST_N / 7 + 1);
    assert_int_equal(got, LIST_N % 7);
}

static void test_registry_list_edges(void **state)
{
    struct fx *f = *state;
    static char names[LIST_N][16];
    static shmbus_topic_entry all[LIST_N + 5];
    char *sorted[LIST_N];
    unsigned got;

    assert_int_equal(sbd_topic_list(&f->reg, "", all, 7), 0);
    list_names(names, sorted);
    for (unsigned k = 0; k < LIST_N; k++)
        reg_create(f, names[k]);
    assert_int_equal(sbd_topic_list(&f->reg, "", all, 0), 0);
    got = sbd_topic_list(&f->reg, "", all, LIST_N + 5);
    assert_int_equal(got, LIST_N);
    for (unsigned i = 0; i < LIST_N; i++)
        assert_string_equal(all[i].name, sorted[i]);
    assert_int_equal(sbd_topic_list(&f->reg, sorted[LIST_N - 1], all, 7), 0);
    assert_int_equal(sbd_topic_list(&f->reg, "~", all, 7), 0);
    /* A start that names no topic: the next names after it. */
    got = sbd_topic_list(&f->reg, "n.", all, 3);
    assert_int_equal(got, 3);
    for (unsigned i = 0; i < got; i++)
        assert_true(strcmp(all[i].name, "n.") > 0);
    for (unsigned i = 0; i < LIST_N; i++) {
        if (strcmp(sorted[i], "n.") > 0) {
            assert_string_equal(all[0].name, sorted[i]);
            assert_string_equal(all[2].name, sorted[i + 2]);
            break;
        }
    }
}

/* ------------------------------------------------------------- sessions */

/* One session holding an open, a publisher and a slot of topic a and an open of b. */
static struct sbd_session *session_with_holds(struct fx *f, struct sbd_topic *a,
                                              struct sbd_topic *b, int *peer, int *slot)
{
    struct sbd_session *s;
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    s = sbd_session_add(&f->reg, sv[0]);
    assert_non_null(s);
    assert_int_equal(s->fd, sv[0]);
    *peer = sv[1];
    *slot = sb_admin_slot_take(a->t, (uint32_t)getpid(), sb_proc_self_start());
    assert_true(*slot >= 0);
    assert_shmbus_ok(sbd_session_hold(s, a, SBD_HOLD_OPEN, 0));
    assert_shmbus_ok(sbd_session_hold(s, a, SBD_HOLD_PUB, 0));
    assert_shmbus_ok(sbd_session_hold(s, a, SBD_HOLD_SLOT, (uint32_t)*slot));
    assert_shmbus_ok(sbd_session_hold(s, b, SBD_HOLD_OPEN, 0));
    return s;
}

static void test_registry_session_counters(void **state)
{
    struct fx *f = *state;
    struct sbd_topic *a = reg_create(f, "sa"), *b = reg_create(f, "sb");
    struct sbd_session *s, *s2;
    int peer, peer2, slot, slot2;

    s = session_with_holds(f, a, b, &peer, &slot);
    s2 = session_with_holds(f, a, b, &peer2, &slot2);
    assert_int_not_equal(s->id, s2->id);
    assert_int_not_equal(slot, slot2);
    assert_int_equal(f->reg.nsessions, 2);
    assert_int_equal(load(&a->clients), 2);
    assert_int_equal(load(&a->publishers), 2);
    assert_int_equal(load(&a->subscribers), 2);
    assert_int_equal(load(&b->clients), 2);
    assert_int_equal(load(&b->publishers), 0);
    assert_int_equal(load(&b->subscribers), 0);
    sbd_session_remove(&f->reg, s2);
    assert_int_equal(f->reg.nsessions, 1);
    assert_int_equal(load(&a->clients), 1);
    assert_int_equal(load(&a->publishers), 1);
    assert_int_equal(load(&a->subscribers), 1);
    assert_int_equal(load(&b->clients), 1);
    sbd_session_remove(&f->reg, s);
    assert_int_equal(f->reg.nsessions, 0);
    assert_int_equal(load(&a->clients) + load(&a->publishers) + load(&a->subscribers), 0);
    assert_int_equal(load(&b->clients), 0);
    close(peer);
    close(peer2);
}

static void test_registry_session_find_release(void **state)
{
    struct fx *f = *state;
    struct sbd_topic *a = reg_create(f, "fa"), *b = reg_create(f, "fb");
    struct sbd_session *s;
    int peer, slot;

    s = session_with_holds(f, a, b, &peer, &slot);
    assert_true(sbd_session_find(s, a->id, SBD_HOLD_SLOT, (uint32_t)slot) >= 0);
    assert_int_equal(sbd_session_find(s, a->id, SBD_HOLD_SLOT, (uint32_t)slot + 1), -1);
    assert_int_equal(sbd_session_find(s, b->id, SBD_HOLD_PUB, 0), -1);
    assert_int_equal(sbd_session_find(s, b->id, SBD_HOLD_SLOT, (uint32_t)slot), -1);
    assert_int_equal(sbd_session_find(s, a->id + b->id + 1, SBD_HOLD_OPEN, 0), -1);
    sbd_session_release(s, (uint32_t)sbd_session_find(s, a->id, SBD_HOLD_PUB, 0));
    assert_int_equal(load(&a->publishers), 0);
    assert_int_equal(sbd_session_find(s, a->id, SBD_HOLD_PUB, 0), -1);
    /* The hold moved into the freed place is still found. */
    assert_int_equal(s->nholds, 3);
    assert_true(sbd_session_find(s, a->id, SBD_HOLD_OPEN, 0) >= 0);
    assert_true(sbd_session_find(s, b->id, SBD_HOLD_OPEN, 0) >= 0);
    assert_true(sbd_session_find(s, a->id, SBD_HOLD_SLOT, (uint32_t)slot) >= 0);
    sbd_session_release(s, (uint32_t)sbd_session_find(s, a->id, SBD_HOLD_SLOT, (uint32_t)slot));
    assert_int_equal(load(&a->subscribers), 0);
    assert_int_equal(sb_admin_slot_take(a->t, 1, 1), slot); /* given back to the segment */
    sb_admin_slot_free(a->t, (uint32_t)slot, 0);
    assert_int_equal(load(&a->clients), 1);
    assert_int_equal(load(&b->clients), 1);
    sbd_session_remove(&f->reg, s);
    assert_int_equal(load(&a->clients) + load(&b->clients), 0);
    close(peer);
}

/* Removing a session closes its socket. The slot of a live process stays
 * in use (it may still read; the reaper frees it when the process dies);
 * that of a dead one is given back. */
static void test_registry_session_remove_closes_and_frees(void **state)
{
    struct fx *f = *state;
    struct sbd_topic *t = reg_create(f, "remove");
    struct sbd_session *s;
    char c;
    int sv[2], slot;

    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    s = sbd_session_add(&f->reg, sv[0]);
    assert_non_null(s);
    slot = sb_admin_slot_take(t->t, (uint32_t)getpid(), sb_proc_self_start());
    assert_int_equal(slot, 0);
    assert_shmbus_ok(sbd_session_hold(s, t, SBD_HOLD_SLOT, (uint32_t)slot));
    assert_int_equal(sb_admin_slot_take(t->t, 1, 1), 1); /* the other of the two */
    assert_int_equal(sb_admin_slot_take(t->t, 1, 1), SHMBUS_ERR_NO_SLOT);
    sb_admin_slot_free(t->t, 1, 0);
    sbd_session_remove(&f->reg, s);
    assert_int_equal(fcntl(sv[0], F_GETFD), -1);
    assert_int_equal(errno, EBADF);
    assert_int_equal(recv(sv[1], &c, 1, MSG_DONTWAIT), 0); /* the peer sees EOF */
    /* A live owner's slot 0 is still taken; the count no longer has it. */
    assert_int_equal(sb_admin_slot_take(t->t, 1, 1), 1);
    assert_int_equal(sb_admin_slot_take(t->t, 1, 1), SHMBUS_ERR_NO_SLOT);
    assert_int_equal(load(&t->subscribers), 0);
    close(sv[1]);
    /* A dead owner's session gives the slot back. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    s = sbd_session_add(&f->reg, sv[0]);
    assert_non_null(s);
    sb_admin_slot_free(t->t, 0, 0);
    slot = sb_admin_slot_take(t->t, (uint32_t)getpid(), sb_proc_self_start());
    assert_int_equal(slot, 0);
    assert_shmbus_ok(sbd_session_hold(s, t, SBD_HOLD_SLOT, (uint32_t)slot));
    s->dead = 1;
    sbd_session_remove(&f->reg, s);
    assert_int_equal(sb_admin_slot_take(t->t, 1, 1), 0);
    sb_admin_slot_free(t->t, 0, 0);
    sb_admin_slot_free(t->t, 1, 0);
    close(sv[1]);
}

/* Holds beyond the first allocation, released in an arbitrary order. */
static void test_registry_session_many_holds(void **state)
{
    struct fx *f = *state;
    struct sbd_topic *t = reg_create(f, "many");
    struct sbd_session *s;
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    s = sbd_session_add(&f->reg, sv[0]);
    assert_non_null(s);
    for (int i = 0; i < 40; i++)
        assert_shmbus_ok(sbd_session_hold(s, t, i % 2 ? SBD_HOLD_PUB : SBD_HOLD_OPEN, 0));
    assert_int_equal(s->nholds, 40);
    assert_int_equal(load(&t->clients), 20);
    assert_int_equal(load(&t->publishers), 20);
    for (int i = 0; i < 15; i++)
        sbd_session_release(s, (uint32_t)((i * 7) % s->nholds));
    assert_int_equal(s->nholds, 25);
    assert_int_equal(load(&t->clients) + load(&t->publishers), 25);
    while (sbd_session_find(s, t->id, SBD_HOLD_PUB, 0) >= 0)
        sbd_session_release(s, (uint32_t)sbd_session_find(s, t->id, SBD_HOLD_PUB, 0));
    assert_int_equal(load(&t->publishers), 0);
    assert_int_equal(load(&t->clients), s->nholds);
    sbd_session_remove(&f->reg, s);
    assert_int_equal(load(&t->clients), 0);
    close(sv[1]);
}

/* ----------------------------------------------------------------- fini */

static void test_registry_fini_unlinks_everything(void **state)
{
    struct fx *f = *state;
    struct sbd_topic *t = NULL;
    struct sbd_session *s;
    char c;
    int sv[2];

    for (unsigned k = 0; k < 12; k++) {
        char name[16];

        snprintf(name, sizeof(name), "fini%u", k);
        t = reg_create(f, name);
    }
    assert_int_equal(bus_segments(0), 12);
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    s = sbd_session_add(&f->reg, sv[0]);
    assert_non_null(s);
    assert_shmbus_ok(sbd_session_hold(s, t, SBD_HOLD_OPEN, 0));
    assert_shmbus_ok(
        sbd_session_hold(s, t, SBD_HOLD_SLOT, (uint32_t)sb_admin_slot_take(t->t, 1, 1)));
    f->live = 0;
    sbd_registry_fini(&f->reg, 1);
    assert_int_equal(bus_segments(0), 0);
    /* The session still open at fini was closed too. */
    assert_int_equal(recv(sv[1], &c, 1, MSG_DONTWAIT), 0);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
        T(test_registry_open_creates_segment),
        T(test_registry_reopen_returns_same_topic),
        T(test_registry_open_mismatch_explains),
        T(test_registry_open_nocreate),
        T(test_registry_open_invalid_options),
        T(test_registry_open_foreign_segment),
        T(test_registry_open_first_name_served),
        T(test_registry_open_first_name_not_ready),
        T(test_registry_open_first_name_limits),
        T(test_registry_limit_topics),
        T(test_registry_limit_segment),
        T(test_registry_limit_shm),
        T(test_registry_limit_slots),
        T(test_registry_limit_slots_covers_default),
        T(test_registry_list_pages_in_order),
        T(test_registry_list_edges),
        T(test_registry_session_counters),
        T(test_registry_session_find_release),
        T(test_registry_session_remove_closes_and_frees),
        T(test_registry_session_many_holds),
        T(test_registry_fini_unlinks_everything),
#undef T
    };
    tu_init();
    snprintf(bus_prefix, sizeof(bus_prefix), SBD_SEG_PREFIX "treg%d.", (int)getpid());
    atexit(bus_cleanup);
    sbd_log_set_level(SBD_WARN);
    return cmocka_run_group_tests_name("registry", tests, group_setup, group_teardown);
}
