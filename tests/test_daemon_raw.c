/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shmbusd's control socket under malformed and hostile input (daemon/):
 * raw SOCK_SEQPACKET messages that are truncated, oversized, of unknown
 * type or another protocol version, sent before hello or with a wrong
 * pid, with bad names, options, references or descriptors, or left
 * unread. Each is answered (or the connection closed) while a normal
 * client keeps working. Every test runs its own daemon (daemonutil.h).
 */
#include "daemonclient.h"

#include <sys/socket.h>

/* ------------------------------------------- 5: malformed control messages */

static int raw_open_hello(const struct du_daemon *d)
{
    struct du_reply r;
    int s = raw_open(d);

    assert_int_equal(du_raw_hello(s, 1, (uint32_t)getpid()), 0);
    assert_int_equal(du_raw_ok(s, 1, &r), sizeof(struct sb_wire_hello_ok));
    return s;
}

/* Packets shorter than a header, and bodies shorter or longer than their
 * type's, or than the header says. */
static void test_daemon_raw_truncated(void **state)
{
    struct du_daemon *d = *state;
    struct sb_wire_hello h = {.pid = (uint32_t)getpid()};
    struct sb_wire_hdr hd = {SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION, SB_MSG_HELLO, sizeof(h), 9};
    uint8_t body[sizeof(struct sb_wire_list) + 8] = {0};
    struct alive a;
    struct du_reply r;
    int s;

    alive_open(&a, d->bus);
    s = raw_open(d);
    assert_int_equal(send(s, "S", 1, MSG_NOSIGNAL), 1);
    assert_raw_err(s, 0, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(send(s, &hd, sizeof(hd) - 1, MSG_NOSIGNAL), sizeof(hd) - 1);
    assert_raw_err(s, 0, SHMBUS_ERR_PROTOCOL);
    alive_check(&a);
    /* Honest length, but shorter than the type's body. */
    assert_int_equal(
        du_raw_send(s, SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION, SB_MSG_HELLO, 10, 11, &h, 10), 0);
    assert_raw_err(s, 11, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(
        du_raw_send(s, SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION, SB_MSG_OPEN, 32, 12, body, 32), 0);
    assert_raw_err(s, 12, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(
        du_raw_send(s, SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION, SB_MSG_HELLO, 0, 13, NULL, 0), 0);
    assert_raw_err(s, 13, SHMBUS_ERR_PROTOCOL);
    /* The header claims more, or less, than came. */
    assert_int_equal(
        du_raw_send(s, SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION, SB_MSG_HELLO, sizeof(h), 14, &h, 39),
        0);
    assert_raw_err(s, 14, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(
        du_raw_send(s, SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION, SB_MSG_HELLO, 32, 15, &h, sizeof(h)),
        0);
    assert_raw_err(s, 15, SHMBUS_ERR_PROTOCOL);
    /* Longer than the type's body, honestly. */
    assert_int_equal(du_raw_send(s, SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION, SB_MSG_LIST,
                                 sizeof(body), 16, body, sizeof(body)),
                     0);
    assert_raw_err(s, 16, SHMBUS_ERR_PROTOCOL);
    alive_check(&a);
    /* The connection survived all of it. */
    assert_int_equal(du_raw_hello(s, 17, (uint32_t)getpid()), 0);
    du_raw_ok(s, 17, &r);
    close(s);
    alive_close(&a);
}

/* Packets over SB_WIRE_MAX are refused whole; one of exactly SB_WIRE_MAX
 * is read and refused for its length. */
static void test_daemon_raw_oversized(void **state)
{
    struct du_daemon *d = *state;
    static uint8_t big[65536];
    const size_t sizes[] = {SB_WIRE_MAX + 1, SB_WIRE_MAX + 4096, sizeof(big)};
    struct sb_wire_hdr h = {SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION, SB_MSG_LIST, 0, 21};
    struct alive a;
    struct du_reply r;
    int s;

    alive_open(&a, d->bus);
    s = raw_open(d);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        h.len = (uint32_t)(sizes[i] - sizeof(h));
        memcpy(big, &h, sizeof(h));
        assert_int_equal(send(s, big, sizes[i], MSG_NOSIGNAL), (ssize_t)sizes[i]);
        assert_raw_err(s, DU_ANY_REQ, SHMBUS_ERR_PROTOCOL);
        alive_check(&a);
    }
    h.len = SB_WIRE_MAX - sizeof(h);
    memcpy(big, &h, sizeof(h));
    assert_int_equal(send(s, big, SB_WIRE_MAX, MSG_NOSIGNAL), (ssize_t)SB_WIRE_MAX);
    assert_raw_err(s, 21, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(du_raw_hello(s, 22, (uint32_t)getpid()), 0);
    du_raw_ok(s, 22, &r);
    assert_int_equal(send(s, big, sizeof(big), MSG_NOSIGNAL), (ssize_t)sizeof(big));
    assert_raw_err(s, DU_ANY_REQ, SHMBUS_ERR_PROTOCOL);
    alive_check(&a);
    close(s);
    alive_close(&a);
}

/* Unknown types (replies included) and a bad magic, before and after hello. */
static void test_daemon_raw_unknown_type(void **state)
{
    struct du_daemon *d = *state;
    const uint16_t types[] = {0, SB_MSG_JOURNAL + 1, 0x55, SB_MSG_OK, SB_MSG_ERR, 0xffff};
    uint8_t body[8] = {0};
    struct alive a;
    int s;

    alive_open(&a, d->bus);
    s = raw_open(d);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
            uint32_t req = 100 + (uint32_t)i;

            assert_int_equal(du_raw_req(s, types[i], req, NULL, 0), 0);
            assert_raw_err(s, req, SHMBUS_ERR_PROTOCOL);
            assert_int_equal(du_raw_req(s, types[i], req + 50, body, sizeof(body)), 0);
            assert_raw_err(s, req + 50, SHMBUS_ERR_PROTOCOL);
        }
        assert_int_equal(du_raw_send(s, SB_WIRE_MAGIC + 1, 1, SB_MSG_LIST, 0, 200, NULL, 0), 0);
        assert_raw_err(s, 200, SHMBUS_ERR_PROTOCOL);
        assert_int_equal(du_raw_send(s, 0, 0, 0, 0, 201, NULL, 0), 0);
        assert_raw_err(s, 201, SHMBUS_ERR_PROTOCOL);
        alive_check(&a);
        if (pass == 0) {
            struct du_reply r;

            assert_int_equal(du_raw_hello(s, 300, (uint32_t)getpid()), 0);
            du_raw_ok(s, 300, &r);
        }
    }
    close(s);
    alive_close(&a);
}

/* Another protocol version gets PROTO_VERSION, in a header of ours. */
static void test_daemon_raw_protocol_version(void **state)
{
    struct du_daemon *d = *state;
    const uint16_t versions[] = {0, SHMBUS_PROTOCOL_VERSION + 1, 0xffff};
    struct sb_wire_hello h = {.pid = (uint32_t)getpid()};
    struct sb_wire_list l = {.after = ""};
    struct alive a;
    struct du_reply r;
    int s;

    alive_open(&a, d->bus);
    s = raw_open(d);
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        uint32_t req = 10 + (uint32_t)i;

        assert_int_equal(
            du_raw_send(s, SB_WIRE_MAGIC, versions[i], SB_MSG_HELLO, sizeof(h), req, &h, sizeof(h)),
            0);
        assert_raw_err(s, req, SHMBUS_ERR_PROTO_VERSION);
        /* A future version may have other types and sizes. */
        assert_int_equal(du_raw_send(s, SB_WIRE_MAGIC, versions[i], 77, 3, req + 20, "abc", 3), 0);
        assert_raw_err(s, req + 20, SHMBUS_ERR_PROTO_VERSION);
    }
    alive_check(&a);
    assert_int_equal(du_raw_hello(s, 40, (uint32_t)getpid()), 0);
    du_raw_ok(s, 40, &r);
    assert_int_equal(du_raw_send(s, SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION + 1, SB_MSG_LIST,
                                 sizeof(l), 41, &l, sizeof(l)),
                     0);
    assert_raw_err(s, 41, SHMBUS_ERR_PROTO_VERSION);
    assert_int_equal(du_raw_req(s, SB_MSG_LIST, 42, &l, sizeof(l)), 0);
    du_raw_ok(s, 42, &r);
    alive_check(&a);
    close(s);
    alive_close(&a);
}

/* Requests before hello are refused and do nothing; hello then works once. */
static void test_daemon_raw_request_before_hello(void **state)
{
    struct du_daemon *d = *state;
    struct sb_wire_open o = {.name = "early"};
    struct sb_wire_list l = {.after = ""};
    struct sb_wire_ref ref = {.topic = 1};
    struct sb_wire_sub sub = {.topic = 1};
    struct sb_wire_hello_ok ok;
    shmbus_topic_entry e[4];
    struct alive a;
    struct du_reply r;
    int s;

    alive_open(&a, d->bus);
    s = raw_open(d);
    assert_int_equal(du_raw_req(s, SB_MSG_OPEN, 2, &o, sizeof(o)), 0);
    assert_raw_err(s, 2, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(du_raw_req(s, SB_MSG_LIST, 3, &l, sizeof(l)), 0);
    assert_raw_err(s, 3, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(du_raw_req(s, SB_MSG_CLOSE, 4, &ref, sizeof(ref)), 0);
    assert_raw_err(s, 4, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(du_raw_req(s, SB_MSG_SUB_ADD, 5, &sub, sizeof(sub)), 0);
    assert_raw_err(s, 5, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(shmbus_list(a.bus, NULL, e, 4), 1); /* "alive" only */
    assert_int_equal(du_segments(d->bus, 0), 1);
    alive_check(&a);
    assert_int_equal(du_raw_hello(s, 6, (uint32_t)getpid()), 0);
    assert_int_equal(du_raw_ok(s, 6, &r), sizeof(ok));
    memcpy(&ok, r.body, sizeof(ok));
    assert_int_equal(ok.daemon_pid, d->pid);
    assert_int_equal(du_raw_hello(s, 7, (uint32_t)getpid()), 0);
    assert_raw_err(s, 7, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(du_raw_req(s, SB_MSG_LIST, 8, &l, sizeof(l)), 0);
    du_raw_ok(s, 8, &r);
    alive_check(&a);
    close(s);
    alive_close(&a);
}

/* A hello whose pid is not the socket peer's is denied and disconnected. */
static void test_daemon_raw_hello_wrong_pid(void **state)
{
    struct du_daemon *d = *state;
    const uint32_t pids[] = {(uint32_t)getppid(), 0, (uint32_t)d->pid, (uint32_t)getpid() + 1};
    struct alive a;
    struct du_reply r;
    int s;

    alive_open(&a, d->bus);
    for (size_t i = 0; i < sizeof(pids) / sizeof(pids[0]); i++) {
        s = raw_open(d);
        assert_int_equal(du_raw_hello(s, 5, pids[i]), 0);
        assert_raw_err(s, 5, SHMBUS_ERR_DENIED);
        assert_int_equal(du_raw_reply(s, &r), 0); /* closed */
        close(s);
        alive_check(&a);
    }
    s = raw_open_hello(d);
    close(s);
    alive_close(&a);
}

/* OPEN one name; @return the reply's error code, or 0 with the topic id
 * in *id (if not NULL) and the descriptor closed. */
static int raw_open_name(int s, uint32_t req, const char *name, size_t n, uint32_t *id)
{
    struct sb_wire_open_ok ok;
    struct sb_wire_open o;
    struct du_reply r;

    memset(&o, 0, sizeof(o));
    memcpy(o.name, name, n);
    assert_int_equal(du_raw_req(s, SB_MSG_OPEN, req, &o, sizeof(o)), 0);
    assert_true(du_raw_reply(s, &r) > 0);
    assert_int_equal(r.req, req);
    if (r.type == SB_MSG_OK) {
        assert_true(r.fd >= 0); /* the segment's descriptor */
        close(r.fd);
        assert_int_equal(r.len, sizeof(ok));
        memcpy(&ok, r.body, sizeof(ok));
        if (id != NULL)
            *id = ok.topic;
        return 0;
    }
    if (r.fd >= 0)
        close(r.fd);
    assert_int_equal(r.type, SB_MSG_ERR);
    return r.code;
}

/* Topic names: empty, too long, bad characters, leading '.', no NUL. */
static void test_daemon_raw_bad_topic_names(void **state)
{
    struct du_daemon *d = *state;
    const char *bad[] = {"", ".hidden", "a/b", "a b", "a\x01", "caf\xc3\xa9", "a*", "a\\b"};
    char name[sizeof(((struct sb_wire_open *)0)->name)];
    struct alive a;
    int s;

    alive_open(&a, d->bus);
    s = raw_open_hello(d);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_shmbus_rc(raw_open_name(s, 10 + (uint32_t)i, bad[i], strlen(bad[i]), NULL),
                         SHMBUS_ERR_BAD_NAME);
    memset(name, 'n', sizeof(name));
    assert_shmbus_rc(raw_open_name(s, 30, name, SHMBUS_TOPIC_NAME_MAX + 1, NULL),
                     SHMBUS_ERR_BAD_NAME);
    assert_shmbus_rc(raw_open_name(s, 31, name, sizeof(name) - 1, NULL), SHMBUS_ERR_BAD_NAME);
    assert_shmbus_rc(raw_open_name(s, 32, name, sizeof(name), NULL), SHMBUS_ERR_PROTOCOL);
    alive_check(&a);
    /* The longest valid name and every valid character are accepted. */
    assert_shmbus_ok(raw_open_name(s, 33, name, SHMBUS_TOPIC_NAME_MAX, NULL));
    assert_shmbus_ok(raw_open_name(s, 34, "Az09_.:-x", 9, NULL));
    assert_int_equal(du_segments(d->bus, 0), 3);
    alive_check(&a);
    close(s);
    alive_close(&a);
}

/* Group names in SUB_ADD, the LIST start and the hello's program name. */
static void test_daemon_raw_bad_other_names(void **state)
{
    struct du_daemon *d = *state;
    const char *bad[] = {".g", "g/h", "g h", "g\x7f"};
    struct sb_wire_sub sub = {0};
    struct sb_wire_list l;
    struct sb_wire_hello h = {.pid = (uint32_t)getpid()};
    struct alive a;
    struct du_reply r;
    int s;

    alive_open(&a, d->bus);
    s = raw_open_hello(d);
    assert_shmbus_ok(raw_open_name(s, 2, "grouped", 7, &sub.topic));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(sub.group, sizeof(sub.group), "%s", bad[i]);
        assert_int_equal(du_raw_req(s, SB_MSG_SUB_ADD, 10 + (uint32_t)i, &sub, sizeof(sub)), 0);
        assert_raw_err(s, 10 + (uint32_t)i, SHMBUS_ERR_BAD_NAME);
    }
    memset(sub.group, 'g', sizeof(sub.group));
    assert_int_equal(du_raw_req(s, SB_MSG_SUB_ADD, 20, &sub, sizeof(sub)), 0);
    assert_raw_err(s, 20, SHMBUS_ERR_PROTOCOL);
    memset(l.after, 'a', sizeof(l.after));
    assert_int_equal(du_raw_req(s, SB_MSG_LIST, 21, &l, sizeof(l)), 0);
    assert_raw_err(s, 21, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(list_entry(a.bus, "alive").subscribers, 1); /* no slot was taken */
    alive_check(&a);
    close(s);
    s = raw_open(d);
    memset(h.name, 'p', sizeof(h.name));
    assert_int_equal(du_raw_req(s, SB_MSG_HELLO, 30, &h, sizeof(h)), 0);
    assert_raw_err(s, 30, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(du_raw_hello(s, 31, (uint32_t)getpid()), 0);
    du_raw_ok(s, 31, &r);
    close(s);
    alive_close(&a);
}

/* Send a reference request and return the reply's code (0 for OK). */
static int raw_ref(int s, uint16_t type, uint32_t req, uint32_t topic, uint32_t slot)
{
    struct sb_wire_ref ref = {.topic = topic, .slot = slot};
    struct du_reply r;

    assert_int_equal(du_raw_req(s, type, req, &ref, sizeof(ref)), 0);
    assert_true(du_raw_reply(s, &r) > 0);
    assert_int_equal(r.req, req);
    return r.type == SB_MSG_OK ? 0 : r.type == SB_MSG_ERR ? r.code : SHMBUS_ERR_PROTOCOL;
}

/* Unknown flags, modes and out-of-range options in OPEN. */
static void test_daemon_raw_bad_options(void **state)
{
    struct du_daemon *d = *state;
    const struct sb_wire_open bad[] = {{.name = "o", .mode = 3},
                                       {.name = "o", .flags = 2},
                                       {.name = "o", .topic_flags = 4},
                                       {.name = "o", .capacity = 3},
                                       {.name = "o", .capacity = 1},
                                       {.name = "o", .capacity = 1u << 25},
                                       {.name = "o", .max_groups = 257},
                                       {.name = "o", .max_subscribers = 1025},
                                       {.name = "o", .max_msg_size = (16u << 20) + 1}};
    shmbus_topic_entry e[4];
    struct alive a;
    int s;

    alive_open(&a, d->bus);
    s = raw_open_hello(d);
    for (uint32_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(du_raw_req(s, SB_MSG_OPEN, 10 + i, &bad[i], sizeof(bad[i])), 0);
        assert_raw_err(s, 10 + i, SHMBUS_ERR_INVALID);
    }
    assert_int_equal(shmbus_list(a.bus, NULL, e, 4), 1); /* "alive" only */
    alive_check(&a);
    close(s);
    alive_close(&a);
}

/* Topic ids and slots that this connection does not hold. */
static void test_daemon_raw_bad_references(void **state)
{
    struct du_daemon *d = *state;
    struct sb_wire_sub sub = {0};
    struct sb_wire_sub_ok ok;
    struct alive a;
    struct du_reply r;
    uint32_t id = 0;
    int s = -1, s2;

    alive_open(&a, d->bus);
    s = raw_open_hello(d);
    assert_int_equal(raw_ref(s, SB_MSG_CLOSE, 6, 999, 0), -ENOENT);
    assert_shmbus_ok(raw_open_name(s, 8, "refs", 4, &id));
    assert_int_equal(raw_ref(s, SB_MSG_PUB_ADD, 7, id + 1, 0), -ENOENT);
    assert_int_equal(raw_ref(s, SB_MSG_PUB_DEL, 9, id, 0), -ENOENT);
    assert_int_equal(raw_ref(s, SB_MSG_SUB_DEL, 10, id, 0), -ENOENT);
    assert_int_equal(raw_ref(s, SB_MSG_PUB_ADD, 11, id, 0), 0);
    assert_int_equal(raw_ref(s, SB_MSG_PUB_DEL, 12, id, 0), 0);
    assert_int_equal(raw_ref(s, SB_MSG_PUB_DEL, 13, id, 0), -ENOENT);
    sub.topic = id;
    assert_int_equal(du_raw_req(s, SB_MSG_SUB_ADD, 14, &sub, sizeof(sub)), 0);
    assert_int_equal(du_raw_ok(s, 14, &r), sizeof(ok));
    memcpy(&ok, r.body, sizeof(ok));
    assert_int_equal(list_entry(a.bus, "refs").subscribers, 1);
    s2 = raw_open_hello(d); /* the topic exists, but this connection holds nothing */
    assert_int_equal(raw_ref(s2, SB_MSG_SUB_DEL, 15, id, ok.slot), -ENOENT);
    assert_int_equal(raw_ref(s2, SB_MSG_PUB_ADD, 15, id, 0), -ENOENT);
    assert_int_equal(raw_ref(s2, SB_MSG_CLOSE, 15, id, 0), -ENOENT);
    close(s2);
    assert_int_equal(raw_ref(s, SB_MSG_SUB_DEL, 16, id, ok.slot + 1), -ENOENT);
    assert_int_equal(raw_ref(s, SB_MSG_SUB_DEL, 17, id, ok.slot), 0);
    assert_int_equal(raw_ref(s, SB_MSG_SUB_DEL, 18, id, ok.slot), -ENOENT);
    assert_int_equal(raw_ref(s, SB_MSG_CLOSE, 19, id, 0), 0);
    assert_int_equal(raw_ref(s, SB_MSG_CLOSE, 20, id, 0), -ENOENT);
    assert_int_equal(list_entry(a.bus, "refs").subscribers, 0);
    alive_check(&a);
    close(s);
    alive_close(&a);
}

/* Send a LIST with @p nfd copies of a descriptor attached. */
static int raw_list_with_fds(int s, uint32_t req, int fd, int nfd)
{
    struct sb_wire_list l = {.after = ""};
    struct sb_wire_hdr h = {SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION, SB_MSG_LIST, sizeof(l), req};
    struct iovec iov[2] = {{&h, sizeof(h)}, {&l, sizeof(l)}};
    union {
        char buf[CMSG_SPACE(8 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2, .msg_control = ctl.buf};
    struct cmsghdr *c;

    memset(&ctl, 0, sizeof(ctl));
    m.msg_controllen = CMSG_SPACE((size_t)nfd * sizeof(int));
    c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN((size_t)nfd * sizeof(int));
    for (int i = 0; i < nfd; i++)
        memcpy(CMSG_DATA(c) + (size_t)i * sizeof(int), &fd, sizeof(int));
    return sendmsg(s, &m, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* Descriptors that clients push at the daemon are closed, not kept. */
static void test_daemon_raw_descriptors_not_kept(void **state)
{
    struct du_daemon *d = *state;
    struct du_reply r;
    int s, null, before, after;

    if (du_fd_count(d->pid) < 0)
        skip(); /* /proc/PID/fd of the daemon is not readable here */
    s = raw_open_hello(d);
    before = du_fd_count(d->pid);
    null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(null >= 0);
    for (uint32_t i = 0; i < 50; i++) {
        assert_int_equal(raw_list_with_fds(s, 10 + i, null, 1), 0);
        du_raw_ok(s, 10 + i, &r);
    }
    assert_int_equal(raw_list_with_fds(s, 99, null, 8), 0);
    assert_raw_err(s, DU_ANY_REQ, SHMBUS_ERR_PROTOCOL); /* more than it takes */
    after = du_fd_count(d->pid);
    assert_int_equal(after, before);
    close(null);
    close(s);
}

/*
 * A zero-length packet is shorter than the header: SHMBUS_ERR_PROTOCOL and
 * the connection stays (recv() returns 0 for it as for a hang-up; the
 * daemon tells them apart by RDHUP).
 */
static void test_daemon_raw_empty_packet(void **state)
{
    struct du_daemon *d = *state;
    struct sb_wire_list l = {.after = ""};
    struct du_reply r;
    int s = raw_open_hello(d);

    assert_int_equal(send(s, "", 0, MSG_NOSIGNAL), 0);
    assert_raw_err(s, 0, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(du_raw_req(s, SB_MSG_LIST, 2, &l, sizeof(l)), 0);
    du_raw_ok(s, 2, &r);
    close(s);
}

/* A client that sends requests but never reads the replies is
 * disconnected once its socket fills; others are not disturbed. */
static void test_daemon_raw_unread_replies_disconnect(void **state)
{
    struct du_daemon *d = *state;
    struct sb_wire_list l = {.after = ""};
    struct timeval tv = {.tv_sec = DU_REPLY_S};
    struct alive a;
    struct du_reply r;
    uint32_t sent = 0, replies = 0;
    int s;

    alive_open(&a, d->bus);
    s = raw_open_hello(d);
    assert_int_equal(setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
    while (sent < 100000 && du_raw_req(s, SB_MSG_LIST, 100 + sent, &l, sizeof(l)) == 0)
        sent++;
    assert_true(sent < 100000);
    while (du_raw_reply(s, &r) > 0) {
        assert_int_equal(r.type, SB_MSG_OK);
        assert_int_equal(r.req, 100 + replies);
        replies++;
    }
    /* The daemon hung up (0, or -ECONNRESET as it left our requests
     * unread), rather than our receive timing out. */
    if (r.n != 0 && r.n != -ECONNRESET)
        fail_msg("after %u replies: %ld (%s), want the daemon's hang-up", replies, r.n,
                 shmbus_strerror((int)r.n));
    assert_true(replies >= 1 && replies <= sent);
    print_message("sent %u requests, read %u replies, then the daemon hung up\n", sent, replies);
    alive_check(&a);
    close(s);
    alive_close(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        DAEMON_TEST(test_daemon_raw_truncated),
        DAEMON_TEST(test_daemon_raw_oversized),
        DAEMON_TEST(test_daemon_raw_unknown_type),
        DAEMON_TEST(test_daemon_raw_protocol_version),
        DAEMON_TEST(test_daemon_raw_request_before_hello),
        DAEMON_TEST(test_daemon_raw_hello_wrong_pid),
        DAEMON_TEST(test_daemon_raw_bad_topic_names),
        DAEMON_TEST(test_daemon_raw_bad_other_names),
        DAEMON_TEST(test_daemon_raw_bad_options),
        DAEMON_TEST(test_daemon_raw_bad_references),
        DAEMON_TEST(test_daemon_raw_descriptors_not_kept),
        DAEMON_TEST(test_daemon_raw_empty_packet),
        DAEMON_TEST(test_daemon_raw_unread_replies_disconnect),
    };

    tu_init();
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("daemon_raw", tests, NULL, NULL);
}
