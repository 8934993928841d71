/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The segments the daemon serves (daemon/segfile.c), tried as another
 * local user would: user nobody plants files in /dev/shm under the bus's
 * names. The daemon serves only files of its own uid that nobody else can
 * write and that have no other name, a name taken by someone else never
 * blocks a topic, a topic's first name made by the daemonless API of the
 * daemon's uid is served rather than doubled, and of two segments of one
 * topic the same one is served whatever order /dev/shm lists them in.
 */
#include "trustutil.h"

#include <dirent.h>

#include "registry/admin.h"
#include "segfile.h"

/* Child: as nobody, create segment arg with a valid header, mode 0666
 * (so that the planter could read whatever another user publishes). */
static int plant_as_nobody(void *arg)
{
    shmbus_topic_opts o = {.capacity = 16, .max_msg_size = 64, .perm = 0666};
    shmbus_topic *t;

    if (du_become_nobody() < 0 || shmbus_topic_create(arg, &o, &t) < 0)
        return 1;
    shmbus_topic_destroy(t);
    return 0;
}

static void plant(const char *seg)
{
    pid_t kid = tu_fork(plant_as_nobody, (void *)seg);

    assert_int_equal(du_wait_ms(kid, DU_READY_MS), 0);
}

/*
 * Files in /dev/shm under the bus's segment names that the daemon did not
 * create: nobody's with a valid header and mode 0666, one of the daemon's
 * uid that anyone may write, a symbolic link to a segment. None is taken
 * over at start (each is logged; another user's file and the link are
 * removed, as a root daemon may, and the daemon uid's own is left to its
 * maker), and their topics work afterwards.
 */
static void test_segfile_foreign_segments_not_adopted(void **state)
{
    struct du_daemon *d = *state;
    char planted[SHMBUS_NAME_MAX + 1], open_seg[SHMBUS_NAME_MAX + 1], link_seg[SHMBUS_NAME_MAX + 1];
    char path[PATH_MAX], target[PATH_MAX], log[PATH_MAX];
    shmbus_topic_opts o = {.capacity = 16, .max_msg_size = 64, .perm = 0666};
    shmbus_topic_entry e;
    shmbus_topic *mine;
    shmbus_bus *bus;
    uid_t uid;
    gid_t gid;

    du_nobody_stopped(d, &uid, &gid);
    sbd_seg_name(planted, sizeof(planted), d->bus, "planted", 0);
    sbd_seg_name(open_seg, sizeof(open_seg), d->bus, "open", 0);
    sbd_seg_name(link_seg, sizeof(link_seg), d->bus, "link", 0);
    plant(planted);
    assert_shmbus_ok(shmbus_topic_create(open_seg, &o, &mine));
    shmbus_topic_destroy(mine);
    snprintf(path, sizeof(path), "/dev/shm/%s", link_seg);
    snprintf(target, sizeof(target), "/dev/shm/%s", open_seg);
    assert_int_equal(symlink(target, path), 0);

    du_launch_logged(d, log, sizeof(log));
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_int_equal(shmbus_list(bus, NULL, &e, 1), 0);
    assert_int_equal(du_log_wait(log, "another user's file", 1), 1);
    assert_int_equal(du_log_wait(log, "others may read or write it", 1), 1);
    assert_int_equal(du_log_wait(log, "a symbolic link", 1), 1);
    assert_false(du_seg_exists(planted));
    assert_true(du_seg_exists(open_seg)); /* ours: left to whoever opened it up */
    assert_false(du_seg_exists(link_seg));
    du_roundtrip(bus, "planted", "after");
    du_roundtrip(bus, "link", "after");
    du_roundtrip(bus, "open", "after"); /* under another name */
    shmbus_close(bus);
    assert_shmbus_ok(shmbus_topic_unlink(open_seg));
}

/* The segment of topic @p topic of bus @p bus of another generation than
 * the first (shmbus.BUS..GEN.TOPIC), if any: its name into @p out. */
static int other_generation(const char *bus, const char *topic, char *out, size_t cap)
{
    char prefix[SHMBUS_NAME_MAX + 1], suffix[SHMBUS_NAME_MAX + 1];
    DIR *dir = opendir("/dev/shm");
    struct dirent *e;
    int n = 0;

    assert_non_null(dir);
    snprintf(prefix, sizeof(prefix), SBD_SEG_PREFIX "%s..", bus);
    snprintf(suffix, sizeof(suffix), ".%s", topic);
    while ((e = readdir(dir)) != NULL) {
        size_t len = strlen(e->d_name);

        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && len > strlen(suffix) &&
            strcmp(e->d_name + len - strlen(suffix), suffix) == 0) {
            snprintf(out, cap, "%s", e->d_name);
            n++;
        }
    }
    closedir(dir);
    return n;
}

/*
 * nobody squats the segment name of a topic the daemon has not created
 * yet, with a valid header and mode 0666, hoping to read what is
 * published. The daemon creates the topic under another name, never
 * hands out the planted one, and a restarted daemon takes the topic over
 * from that name while the planted file is not taken (and is removed).
 */
static void test_segfile_squatted_segment_name(void **state)
{
    struct du_daemon *d = *state;
    char planted[SHMBUS_NAME_MAX + 1], gen[SHMBUS_NAME_MAX + 1];
    shmbus_topic_opts o = {.capacity = 16, .max_msg_size = 64};
    shmbus_topic_info info;
    shmbus_topic *spy, *t;
    shmbus_topic_entry e;
    shmbus_pub *pub;
    shmbus_bus *bus;
    uid_t uid;
    gid_t gid;

    du_nobody_ids(&uid, &gid);
    sbd_seg_name(planted, sizeof(planted), d->bus, "squat", 0);
    plant(planted);
    assert_shmbus_ok(shmbus_topic_attach(planted, &spy));

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    du_roundtrip(bus, "squat", "secret");
    assert_shmbus_ok(shmbus_topic_info_get(spy, &info));
    assert_int_equal(info.published, 0);
    assert_int_equal(other_generation(d->bus, "squat", gen, sizeof(gen)), 1);

    /* Kept through a crash of the daemon by a live publisher, taken over
     * from its name by the next one; the planted file is not. */
    assert_shmbus_ok(shmbus_open(bus, "squat", &o, 0, &t));
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    du_stop_sig(d, SIGKILL);
    assert_int_equal(du_launch(d, NULL), 0);
    shmbus_close(bus);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_int_equal(shmbus_list(bus, NULL, &e, 1), 1);
    assert_string_equal(e.name, "squat");
    assert_false(du_seg_exists(planted));
    assert_true(du_seg_exists(gen));
    du_roundtrip(bus, "squat", "again");
    assert_shmbus_ok(shmbus_topic_info_get(spy, &info));
    assert_int_equal(info.published, 0);
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(t);
    shmbus_topic_destroy(spy);
    shmbus_close(bus);
}

/* Receive @p text on @p sub within WAIT_NS. */
static void expect_msg(shmbus_sub *sub, const char *text)
{
    char buf[64];

    assert_int_equal(shmbus_recv(sub, buf, sizeof(buf), NULL, WAIT_NS), (int)strlen(text));
    assert_memory_equal(buf, text, strlen(text));
}

/*
 * A process of the daemon's uid created a topic's segment by name (the
 * daemonless API) before any client opened the topic through the bus:
 * the daemon serves that segment rather than a second one, so both kinds
 * of user share the topic.
 */
static void test_segfile_first_name_ours_served(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.capacity = 16, .max_msg_size = 64, .perm = 0600};
    shmbus_topic_opts via_bus = {.capacity = 16, .max_msg_size = 64};
    char seg[SHMBUS_NAME_MAX + 1], gen[SHMBUS_NAME_MAX + 1];
    shmbus_topic *direct, *t;
    shmbus_pub *pub;
    shmbus_sub *sub;
    shmbus_bus *bus;

    sbd_seg_name(seg, sizeof(seg), d->bus, "direct", 0);
    assert_shmbus_ok(shmbus_topic_create(seg, &o, &direct));
    assert_shmbus_ok(shmbus_pub_create(direct, &pub));
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "direct", &via_bus, 0, &t));
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub));
    assert_shmbus_ok(shmbus_publish(pub, "shared", 6, 0));
    expect_msg(sub, "shared");
    assert_int_equal(other_generation(d->bus, "direct", gen, sizeof(gen)), 0);
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(direct);
}

/*
 * Two segments of one topic that the daemon may serve, found at start: a
 * generation it made while the first name was unusable, and a file of its
 * uid at the first name made after it (so listed first by tmpfs). The
 * generation is served whatever the listing order (its clients used it),
 * the other is left to whoever opens it by name, and the log says so.
 */
static void test_segfile_second_segment_chosen(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts open = {.capacity = 16, .max_msg_size = 64, .perm = 0666};
    shmbus_topic_opts o = {.capacity = 16, .max_msg_size = 64, .perm = 0600};
    shmbus_topic_opts via_bus = {.capacity = 16, .max_msg_size = 64};
    char seg[SHMBUS_NAME_MAX + 1], gen[SHMBUS_NAME_MAX + 1], log[PATH_MAX];
    shmbus_topic *direct, *t, *mine;
    shmbus_sub *sub;
    shmbus_bus *bus;

    sbd_seg_name(seg, sizeof(seg), d->bus, "two", 0);
    assert_shmbus_ok(shmbus_topic_create(seg, &open, &direct)); /* 0666: not served */
    shmbus_topic_destroy(direct);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "two", &via_bus, 0, &t));
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    assert_int_equal(other_generation(d->bus, "two", gen, sizeof(gen)), 1);
    assert_shmbus_ok(shmbus_topic_unlink(seg));
    assert_shmbus_ok(shmbus_topic_create(seg, &o, &direct));
    shmbus_topic_destroy(direct);

    du_stop_sig(d, SIGKILL); /* the generation outlives it */
    du_launch_logged(d, log, sizeof(log));
    assert_shmbus_ok(shmbus_topic_attach(gen, &mine));
    assert_shmbus_ok(shmbus_sub_create(mine, NULL, &sub));
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    du_roundtrip(bus, "two", "served");
    expect_msg(sub, "served");
    assert_int_equal(du_log_wait(log, "a second segment of topic two", 1), 1);
    assert_true(du_seg_exists(seg));
    assert_shmbus_ok(shmbus_topic_unlink(seg)); /* left to its maker: us */
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(mine);
    shmbus_close(bus);
}

/*
 * A hard link of a segment under another topic's name would have the
 * daemon serve one file as two topics: a restarted daemon serves neither
 * name, says why, and removes neither.
 */
static void test_segfile_hard_link_not_served(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.capacity = 16, .max_msg_size = 64};
    char seg[PATH_MAX], alias[PATH_MAX], log[PATH_MAX];
    shmbus_topic_entry e[2];
    shmbus_topic *t;
    shmbus_bus *bus;

    snprintf(seg, sizeof(seg), "/dev/shm/" SBD_SEG_PREFIX "%s.linked", d->bus);
    snprintf(alias, sizeof(alias), "/dev/shm/" SBD_SEG_PREFIX "%s.alias", d->bus);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "linked", &o, 0, &t));
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    assert_int_equal(link(seg, alias), 0);
    du_stop_sig(d, SIGKILL);
    du_launch_logged(d, log, sizeof(log));
    assert_int_equal(du_log_wait(log, "(hard links)", 2), 2);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_int_equal(shmbus_list(bus, NULL, e, 2), 0);
    shmbus_close(bus);
    assert_int_equal(unlink(alias), 0);
    assert_int_equal(unlink(seg), 0);
}

#define SEG_TEST(f) cmocka_unit_test_setup_teardown(f, du_setup, du_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        SEG_TEST(test_segfile_foreign_segments_not_adopted),
        SEG_TEST(test_segfile_squatted_segment_name),
        SEG_TEST(test_segfile_first_name_ours_served),
        SEG_TEST(test_segfile_second_segment_chosen),
        SEG_TEST(test_segfile_hard_link_not_served),
    };

    tu_init();
    return cmocka_run_group_tests_name("segfile", tests, NULL, NULL);
}
