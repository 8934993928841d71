/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control protocol over a real SOCK_SEQPACKET socketpair
 * (registry/wire.c sb_wire_send(), sb_wire_recv()): round trips, error
 * replies, descriptors passed, refused and closed, oversized messages, a
 * peer that went away.
 */
#include "wiretest.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/socket.h>

/* Open descriptors of this process (the directory's own one included). */
static int fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    if (d == NULL)
        skip();
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

/* The number the kernel hands out next (the lowest free one). */
static int fd_next(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

    assert_true(fd >= 0);
    close(fd);
    return fd;
}

static int fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static void seqpacket_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

/* Do @p a and @p b name the same open file? */
static int same_file(int a, int b)
{
    struct stat sa, sb;

    assert_int_equal(fstat(a, &sa), 0);
    assert_int_equal(fstat(b, &sb), 0);
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Send one packet carrying @p nfd descriptors, bypassing sb_wire_send(). */
static void send_raw_fds(int sock, const void *msg, size_t len, const int *fds, size_t nfd)
{
    union {
        char buf[CMSG_SPACE(8 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {(void *)msg, len};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    struct cmsghdr *c;

    assert_true(nfd > 0 && nfd <= 8);
    memset(&ctl, 0, sizeof(ctl));
    m.msg_control = ctl.buf;
    m.msg_controllen = CMSG_SPACE(nfd * sizeof(int));
    c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(nfd * sizeof(int));
    memcpy(CMSG_DATA(c), fds, nfd * sizeof(int));
    assert_int_equal(sendmsg(sock, &m, MSG_NOSIGNAL), (ssize_t)len);
}

/* ------------------------------------------------------------ send / recv */

static void test_wire_send_recv_roundtrip(void **state)
{
    (void)state;
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_open o = open_body("round.trip");
    struct sb_wire_req q;
    int sv[2], fd = 123;
    long n;

    seqpacket_pair(sv);
    assert_shmbus_ok(sb_wire_send(sv[0], SB_MSG_OPEN, 17, &o, sizeof(o), -1));
    n = sb_wire_recv(sv[1], buf, sizeof(buf), &fd);
    assert_int_equal(n, (long)(sizeof(struct sb_wire_hdr) + sizeof(o)));
    assert_int_equal(fd, -1);
    assert_shmbus_ok(decode_req(buf, (size_t)n, &q));
    assert_int_equal(q.hdr.req, 17);
    assert_string_equal(q.u.open.name, "round.trip");
    /* An empty body. */
    assert_shmbus_ok(sb_wire_send(sv[1], SB_MSG_OK, 18, NULL, 0, -1));
    n = sb_wire_recv(sv[0], buf, sizeof(buf), NULL);
    assert_int_equal(n, (long)sizeof(struct sb_wire_hdr));
    assert_int_equal(decode_reply(buf, (size_t)n, 18), 0);
    /* An error reply, with and without text. */
    assert_shmbus_ok(sb_wire_send_err(sv[1], 19, SHMBUS_ERR_LIMIT, "too many"));
    n = sb_wire_recv(sv[0], buf, sizeof(buf), &fd);
    assert_int_equal(decode_reply(buf, (size_t)n, 19), SHMBUS_ERR_LIMIT);
    assert_string_equal(((struct sb_wire_err *)(void *)(buf + 16))->text, "too many");
    assert_shmbus_ok(sb_wire_send_err(sv[1], 20, -ENOENT, NULL));
    n = sb_wire_recv(sv[0], buf, sizeof(buf), &fd);
    assert_int_equal(decode_reply(buf, (size_t)n, 20), -ENOENT);
    assert_string_equal(((struct sb_wire_err *)(void *)(buf + 16))->text, shmbus_strerror(-ENOENT));
    close(sv[0]);
    close(sv[1]);
}

static void test_wire_send_err_long_text_terminated(void **state)
{
    (void)state;
    uint8_t buf[SB_WIRE_MAX];
    char text[300];
    struct sb_wire_err e;
    int sv[2];
    long n;

    memset(text, 'w', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    seqpacket_pair(sv);
    assert_shmbus_ok(sb_wire_send_err(sv[1], 1, SHMBUS_ERR_INVALID, text));
    n = sb_wire_recv(sv[0], buf, sizeof(buf), NULL);
    assert_int_equal(n, (long)(sizeof(struct sb_wire_hdr) + sizeof(e)));
    memcpy(&e, buf + sizeof(struct sb_wire_hdr), sizeof(e));
    assert_int_equal(e.code, SHMBUS_ERR_INVALID);
    assert_int_equal(strnlen(e.text, sizeof(e.text)), sizeof(e.text) - 1);
    close(sv[0]);
    close(sv[1]);
}

static void test_wire_send_recv_passes_fd(void **state)
{
    (void)state;
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_open_ok ok = {.topic = 3, .created = 1};
    const void *body;
    int sv[2], fd = -1, file;
    long n;

    seqpacket_pair(sv);
    file = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    assert_true(file >= 0);
    assert_shmbus_ok(sb_wire_send(sv[0], SB_MSG_OK, 21, &ok, sizeof(ok), file));
    n = sb_wire_recv(sv[1], buf, sizeof(buf), &fd);
    assert_int_equal(n, (long)(sizeof(struct sb_wire_hdr) + sizeof(ok)));
    assert_int_equal(sb_wire_decode_reply(buf, (size_t)n, 21, &body), (int)sizeof(ok));
    assert_memory_equal(body, &ok, sizeof(ok));
    assert_true(fd >= 0);
    assert_int_not_equal(fd, file);
    assert_true(same_file(fd, file));
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);
    close(file);
    close(sv[0]);
    close(sv[1]);
}

static void test_wire_recv_null_fd_closes_descriptor(void **state)
{
    (void)state;
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_ref ref = {1, 0};
    int sv[2], file, next, before;
    long n;

    seqpacket_pair(sv);
    file = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(file >= 0);
    assert_shmbus_ok(sb_wire_send(sv[0], SB_MSG_CLOSE, 22, &ref, sizeof(ref), file));
    next = fd_next(); /* where the received copy lands */
    before = fd_count();
    n = sb_wire_recv(sv[1], buf, sizeof(buf), NULL);
    assert_int_equal(n, (long)(sizeof(struct sb_wire_hdr) + sizeof(ref)));
    assert_int_equal(fd_count(), before);
    assert_false(fd_is_open(next));
    assert_true(fd_is_open(file));
    close(file);
    close(sv[0]);
    close(sv[1]);
}

/* Several descriptors in one message: the first is kept, the rest closed. */
static void test_wire_recv_keeps_first_fd_only(void **state)
{
    (void)state;
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_open_ok ok = {1, 0};
    int sv[2], files[3], fd = -1, before;
    size_t n;
    long got;

    seqpacket_pair(sv);
    files[0] = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    files[1] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    files[2] = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    for (int i = 0; i < 3; i++)
        assert_true(files[i] >= 0);
    n = msg_build(buf, SB_MSG_OK, 1, &ok, sizeof(ok));
    send_raw_fds(sv[0], buf, n, files, 3);
    before = fd_count();
    got = sb_wire_recv(sv[1], buf, sizeof(buf), &fd);
    assert_int_equal(got, (long)n);
    assert_true(fd >= 0);
    assert_true(same_file(fd, files[0]));
    assert_int_equal(fd_count(), before + 1);
    close(fd);
    /* And none at all without a place for them. */
    send_raw_fds(sv[0], buf, n, files, 3);
    assert_int_equal(sb_wire_recv(sv[1], buf, sizeof(buf), NULL), (long)n);
    assert_int_equal(fd_count(), before);
    for (int i = 0; i < 3; i++)
        close(files[i]);
    close(sv[0]);
    close(sv[1]);
}

static void test_wire_recv_too_long_is_protocol_error(void **state)
{
    (void)state;
    uint8_t body[512], buf[SB_WIRE_MAX];
    struct sb_wire_ref ref = {4, 0};
    int sv[2], fd = 7, file, next, before;
    long n;

    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (uint8_t)i;
    seqpacket_pair(sv);
    assert_shmbus_ok(sb_wire_send(sv[0], SB_MSG_OK, 30, body, sizeof(body), -1));
    assert_shmbus_ok(sb_wire_send(sv[0], SB_MSG_CLOSE, 31, &ref, sizeof(ref), -1));
    assert_int_equal(sb_wire_recv(sv[1], buf, 64, &fd), SHMBUS_ERR_PROTOCOL);
    assert_int_equal(fd, -1);
    /* The rest of the long message is gone; the next one arrives whole. */
    n = sb_wire_recv(sv[1], buf, sizeof(buf), &fd);
    assert_int_equal(n, (long)(sizeof(struct sb_wire_hdr) + sizeof(ref)));
    assert_int_equal(msg_hdr(buf)->req, 31);
    /* A descriptor riding on a message that is too long is not kept either. */
    file = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(file >= 0);
    assert_shmbus_ok(sb_wire_send(sv[0], SB_MSG_OK, 32, body, sizeof(body), file));
    next = fd_next();
    before = fd_count();
    assert_int_equal(sb_wire_recv(sv[1], buf, 64, &fd), SHMBUS_ERR_PROTOCOL);
    assert_int_equal(fd, -1);
    assert_int_equal(fd_count(), before);
    assert_false(fd_is_open(next));
    close(file);
    close(sv[0]);
    close(sv[1]);
}

static void test_wire_peer_gone(void **state)
{
    (void)state;
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_ref ref = {1, 0};
    int sv[2], fd = 5;

    void (*old)(int);

    seqpacket_pair(sv);
    close(sv[0]);
    assert_int_equal(sb_wire_recv(sv[1], buf, sizeof(buf), &fd), 0);
    assert_int_equal(fd, -1);
    /* Never SIGPIPE (with its default action it would kill this process; Linux
     * raises none on SEQPACKET sockets today, MSG_NOSIGNAL makes sure). */
    old = signal(SIGPIPE, SIG_DFL);
    assert_int_equal(sb_wire_send(sv[1], SB_MSG_CLOSE, 1, &ref, sizeof(ref), -1), -EPIPE);
    signal(SIGPIPE, old);
    close(sv[1]);
    assert_int_equal(sb_wire_recv(sv[1], buf, sizeof(buf), &fd), -EBADF);
    assert_int_equal(sb_wire_send(sv[1], SB_MSG_CLOSE, 1, &ref, sizeof(ref), -1), -EBADF);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_send_recv_roundtrip),
        cmocka_unit_test(test_wire_send_err_long_text_terminated),
        cmocka_unit_test(test_wire_send_recv_passes_fd),
        cmocka_unit_test(test_wire_recv_null_fd_closes_descriptor),
        cmocka_unit_test(test_wire_recv_keeps_first_fd_only),
        cmocka_unit_test(test_wire_recv_too_long_is_protocol_error),
        cmocka_unit_test(test_wire_peer_gone),
    };
    tu_init();
    return cmocka_run_group_tests_name("wire_io", tests, NULL, NULL);
}
