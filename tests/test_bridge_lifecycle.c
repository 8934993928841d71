/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge's life in the daemon (shmbusd --bridge, bridgetest.h): off
 * unless asked for, listening when asked, and a stop with clients attached
 * or while it delivers. Each test runs its own daemon; the teardown checks
 * that it exited 0 (a sanitizer report in it fails the test) and left no
 * segment.
 */
#include "bridgetest.h"

/* The daemon stops cleanly (exit 0) with remote clients attached in every
 * state: subscribed (channel, pattern, JSON), paused on a full reliable
 * topic, mid-command, and slow with output pending. The topic keeps its
 * segment: a local subscriber uses it. */
static void test_bridge_stop_with_clients(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *bus = local_connect(d);
    shmbus_topic *t = local_open(bus, "full", SHMBUS_RELIABLE, 2);

    struct bc *sub = bc_open(), *pat = bc_open(), *js = bc_open(), *paused = bc_open();
    struct bc *half = bc_open();
    int st;

    local_sub(t); /* reads nothing: the topic fills */
    bc_send_str(sub, "SUBSCRIBE full x\r\n");
    bc_send_str(pat, "PSUBSCRIBE *\r\n");
    bc_send_str(js, "{\"command\":\"SUB\",\"topic\":\"full\"}\n");
    bc_expect(sub, "*3\r\n$9\r\nsubscribe\r\n$4\r\nfull\r\n:1\r\n"
                   "*3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n:2\r\n");
    bc_expect(pat, "*3\r\n$10\r\npsubscribe\r\n$1\r\n*\r\n:1\r\n");
    bc_expect_line(js, "{\"ok\":true,\"command\":\"SUB\",\"topic\":\"full\",\"subscriptions\":1}");
    bc_send_str(paused, "PUBLISH full a\r\nPUBLISH full b\r\nPUBLISH full c\r\nPING\r\n");
    bc_expect(paused, ":4\r\n:4\r\n");
    bc_send_str(half, "*3\r\n$7\r\nPUBLISH\r\n$4\r\nfull\r\n$10\r\nabc");
    st = du_stop(d);
    assert_int_equal(st, 0);
    assert_int_equal(du_segments(d->bus, 0), 1);
    assert_true(bc_wait_eof(sub, BT_MS, NULL));
    assert_true(bc_wait_eof(paused, BT_MS, NULL));
    bc_close(sub);
    bc_close(pat);
    bc_close(js);
    bc_close(paused);
    bc_close(half);
    /* A next daemon takes the topic over; the teardown releases the local
     * handles through it, and its stop removes the topic. */
    assert_int_equal(du_launch(d, NULL), 0);
}

/* The inodes of the daemon's TCP sockets that listen (/proc/net/tcp{,6}
 * state 0A). @return how many of the daemon's descriptors are such. */
static int listening_sockets(pid_t pid)
{
    char path[64], link[64], line[512];
    unsigned long inodes[256];
    int n = 0, hits = 0;
    DIR *dir;
    struct dirent *e;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    dir = opendir(path);
    assert_non_null(dir);
    while ((e = readdir(dir)) != NULL && n < 256) {
        char fd[PATH_MAX];
        ssize_t k;

        snprintf(fd, sizeof(fd), "%s/%s", path, e->d_name);
        k = readlink(fd, link, sizeof(link) - 1);
        if (k > 0) {
            link[k] = '\0';
            if (sscanf(link, "socket:[%lu]", &inodes[n]) == 1)
                n++;
        }
    }
    closedir(dir);
    for (int v = 0; v < 2; v++) {
        FILE *f = fopen(v ? "/proc/net/tcp6" : "/proc/net/tcp", "r");

        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            unsigned st;
            unsigned long ino;

            if (sscanf(line, "%*s %*s %*s %x %*s %*s %*s %*s %*s %lu", &st, &ino) != 2)
                continue;
            for (int i = 0; i < n; i++)
                hits += st == 0x0a && inodes[i] == ino;
        }
        if (f != NULL)
            fclose(f);
    }
    return hits;
}

/* Without --bridge the daemon listens on no TCP port; with it, on one. */
static void test_bridge_off_by_default(void **state)
{
    struct du_daemon *d = *state;

    assert_int_equal(listening_sockets(d->pid), 0);
}

static void test_bridge_listens_when_asked(void **state)
{
    struct du_daemon *d = *state;

    assert_int_equal(listening_sockets(d->pid), 1);
}

#define SD_CONNS 100

/* SIGTERM while a pump is delivering a busy topic to many subscribers,
 * and the I/O thread is busy with floods of commands: the daemon still
 * stops cleanly (under ASan: no use after free as the connections are
 * closed while the pumps let go of their topics). */
static void test_bridge_stop_while_delivering(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *bus = local_connect(d);
    shmbus_topic *t = local_open(bus, "busy", 0, 0);
    struct bc *c[SD_CONNS];

    pt_start(local_pub(t), "b", 4, 100);
    /* Many links to the one topic: the connections take long to close. */
    for (int i = 0; i < SD_CONNS; i++) {
        c[i] = bc_open();
        bc_send_str(c[i],
                    i % 2 ? "SUBSCRIBE busy\r\n" : "PSUBSCRIBE b* bu* bus* busy* ?usy *y *\r\n");
    }
    /* All subscribed (deliveries may come between the confirmations of
     * one PSUBSCRIBE: its patterns start one by one). */
    for (int i = 0; i < SD_CONNS; i++)
        bc_skip_to_confirm(c[i], i % 2 ? "subscribe" : "psubscribe", i % 2 ? 1 : 7);
    flood_start(4l << 20);
    assert_int_equal(du_stop(d), 0);
    assert_int_equal(du_segments(d->bus, 0), 1); /* the local publisher uses it */
    flood_stop();
    pt_stop();
    for (int i = 0; i < SD_CONNS; i++)
        bc_close(c[i]);
    assert_int_equal(du_launch(d, NULL), 0); /* as in test_bridge_stop_with_clients */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bridge_off_by_default, du_setup, du_teardown),
        BRIDGE_TEST(test_bridge_listens_when_asked),
        BRIDGE_TEST(test_bridge_stop_with_clients),
        BRIDGE_TEST(test_bridge_stop_while_delivering),
    };

    bt_init();
    return cmocka_run_group_tests_name("bridge_lifecycle", tests, NULL, NULL);
}
