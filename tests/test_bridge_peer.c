/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Who gets into the bridge (daemon/bridge/peer.c), on real sockets in
 * this process: the uid of a loopback peer through the kernel's socket
 * diagnostics, over IPv4, IPv6 and IPv4 mapped into IPv6; a peer of
 * another uid (a child become the user daemon) against the bus's allow
 * rule; the overflow uid (nobody), refused whatever the rule; a
 * peer that closed its socket before the check, which must not pass for
 * the uid the kernel reports for a dead socket (0); a peer on a
 * non-loopback address; and the HTTP check of a first command (pure,
 * daemon/bridge/admit.c).
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "bridge/admit.h"
#include "bridge/peer.h"

static const struct timeval accept_wait = {.tv_sec = 10};

/* A listening TCP socket on @p host (numeric), port chosen by the
 * kernel; @p sa gets its address. @return it, or -1 (no such family). */
static int listen_on(int family, const char *host, struct sockaddr_storage *sa)
{
    socklen_t sl = sizeof(*sa);
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(sa, 0, sizeof(*sa));
    sa->ss_family = (sa_family_t)family;
    if (family == AF_INET)
        assert_int_equal(inet_pton(AF_INET, host, &((struct sockaddr_in *)sa)->sin_addr), 1);
    else
        assert_int_equal(inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)sa)->sin6_addr), 1);
    if (fd < 0 ||
        bind(fd, (struct sockaddr *)sa,
             family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)sa, &sl), 0);
    /* accept() gives up after 10 s: a child that failed to connect. */
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &accept_wait, sizeof(accept_wait)), 0);
    return fd;
}

/* A connection from this process to @p host (numeric, of @p family), at
 * the port of the listening address @p lsa. */
static int connect_to(int family, const char *host, const struct sockaddr_storage *lsa)
{
    in_port_t port = lsa->ss_family == AF_INET ? ((const struct sockaddr_in *)lsa)->sin_port
                                               : ((const struct sockaddr_in6 *)lsa)->sin6_port;
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = port};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = port};
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    if (family == AF_INET) {
        assert_int_equal(inet_pton(AF_INET, host, &in.sin_addr), 1);
        assert_int_equal(connect(fd, (struct sockaddr *)&in, sizeof(in)), 0);
    } else {
        assert_int_equal(inet_pton(AF_INET6, host, &in6.sin6_addr), 1);
        assert_int_equal(connect(fd, (struct sockaddr *)&in6, sizeof(in6)), 0);
    }
    return fd;
}

/* Accept on @p lfd and judge the peer under @p cfg. */
static struct sbb_peer accept_check(int lfd, const struct sbd_config *cfg)
{
    struct sockaddr_storage sa;
    socklen_t sl = sizeof(sa);
    struct sbb_peer p;
    int fd = accept(lfd, (struct sockaddr *)&sa, &sl);

    assert_true(fd >= 0); /* else no connection came in 10 s */
    sbb_peer_check(cfg, fd, &sa, &p);
    close(fd);
    return p;
}

/* A connection from this process to @p host (of @p family) at the port of
 * @p lsa, which @p lfd listens on: accepted, judged under @p cfg, closed. */
static struct sbb_peer connect_check(int lfd, int family, const char *host,
                                     const struct sockaddr_storage *lsa,
                                     const struct sbd_config *cfg)
{
    int c = connect_to(family, host, lsa);
    struct sbb_peer p = accept_check(lfd, cfg);

    close(c);
    return p;
}

/* A peer never judged (zeroed) is not one let in. */
static void test_peer_zeroed_not_ok(void **state)
{
    struct sbb_peer p;
    char why[128];

    (void)state;
    memset(&p, 0, sizeof(p));
    assert_int_not_equal(p.verdict, SBB_PEER_OK);
    sbb_peer_why(&p, "bridge", "--bridge-token-file", why, sizeof(why));
    assert_string_equal(why, "this connection's peer was not checked");
}

/* Our own uid over 127.0.0.1: allowed, and the uid is ours. */
static void test_peer_loopback_own_uid(void **state)
{
    struct sbd_config cfg = {0};
    struct sockaddr_storage lsa;
    int lfd = listen_on(AF_INET, "127.0.0.1", &lsa);
    struct sbb_peer p;

    (void)state;
    assert_true(lfd >= 0);
    p = connect_check(lfd, AF_INET, "127.0.0.1", &lsa, &cfg);
    assert_int_equal(p.verdict, SBB_PEER_OK);
    assert_int_equal(p.uid, getuid());
    close(lfd);
}

/* ::1 on an IPv6 socket, and 127.0.0.1 reaching a dual-stack [::]
 * socket (the peer shows as ::ffff:127.0.0.1). */
static void test_peer_ipv6_and_mapped(void **state)
{
    struct sbd_config cfg = {0};
    struct sockaddr_storage lsa;
    int lfd = listen_on(AF_INET6, "::", &lsa);
    struct sbb_peer p;

    (void)state;
    if (lfd < 0)
        skip(); /* no IPv6 here */
    p = connect_check(lfd, AF_INET6, "::1", &lsa, &cfg);
    assert_int_equal(p.verdict, SBB_PEER_OK);
    assert_int_equal(p.uid, getuid());
    assert_int_equal(connect_check(lfd, AF_INET, "127.0.0.1", &lsa, &cfg).verdict, SBB_PEER_OK);
    close(lfd);
}

/* A peer that closed its end before the check: its socket has no owner
 * left (TIME_WAIT reports uid 0, an orphan no inode), so it is refused
 * even when 0 is an allowed uid. */
static void test_peer_closed_before_check(void **state)
{
    struct sbd_config cfg = {.n_allow_uid = 1, .allow_uid = {0}};
    struct sockaddr_storage lsa;
    int lfd = listen_on(AF_INET, "127.0.0.1", &lsa), c;
    struct sbb_peer p;

    (void)state;
    assert_true(lfd >= 0);
    c = connect_to(AF_INET, "127.0.0.1", &lsa);
    assert_int_equal(write(c, "PUBLISH t x\r\n", 13), 13);
    close(c);
    p = accept_check(lfd, &cfg);
    assert_int_equal(p.verdict, SBB_PEER_UNKNOWN);
    assert_int_equal(p.err, -ENOENT);
    close(lfd);
}

/* A peer in TIME_WAIT (it closed first, and we answered its FIN with
 * ours): the kernel reports uid 0 for it, which must not pass for root
 * even when 0 is allowed. */
static void test_peer_time_wait(void **state)
{
    struct sbd_config cfg = {.n_allow_uid = 1, .allow_uid = {0}};
    struct sockaddr_storage lsa, sa;
    socklen_t sl = sizeof(sa);
    int lfd = listen_on(AF_INET, "127.0.0.1", &lsa), c, fd;
    struct sbb_peer p;
    char ch;

    (void)state;
    assert_true(lfd >= 0);
    c = connect_to(AF_INET, "127.0.0.1", &lsa);
    fd = accept(lfd, (struct sockaddr *)&sa, &sl);
    assert_true(fd >= 0);
    close(c);                                   /* its FIN */
    assert_int_equal(read(fd, &ch, 1), 0);      /* seen */
    assert_int_equal(shutdown(fd, SHUT_WR), 0); /* ours: it goes to TIME_WAIT */
    sbb_peer_check(&cfg, fd, &sa, &p);
    assert_int_equal(p.verdict, SBB_PEER_UNKNOWN);
    assert_int_equal(p.err, -ENOENT); /* the lookup found it, and did not believe it */
    close(fd);
    close(lfd);
}

/* A socket bound to 127.0.0.1:@p port (0: any), SO_REUSEADDR set, and
 * connected to the listening address @p lsa; @p port gets its port. */
static int connect_from(in_port_t *port, const struct sockaddr_storage *lsa)
{
    struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = *port};
    socklen_t ml = sizeof(me);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&me, sizeof(me)), 0);
    assert_int_equal(connect(fd, (const struct sockaddr *)lsa, sizeof(struct sockaddr_in)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&me, &ml), 0);
    *port = me.sin_port;
    return fd;
}

/* A peer that sends a command and resets its connection before the
 * accept, while another socket binds the same port and connects: the
 * reset connection is accepted with its data readable, and the lookup of
 * its 4-tuple finds the new socket, which must not vouch for it. */
static void test_peer_reset_port_reused(void **state)
{
    struct sbd_config cfg = {0};
    struct sockaddr_storage lsa, sa;
    struct linger rst = {.l_onoff = 1, .l_linger = 0};
    socklen_t sl = sizeof(sa);
    int lfd = listen_on(AF_INET, "127.0.0.1", &lsa), c1, c2, fd;
    in_port_t port = 0;
    struct sbb_peer p;
    char buf[32];

    (void)state;
    assert_true(lfd >= 0);
    c1 = connect_from(&port, &lsa);
    assert_int_equal(write(c1, "PUBLISH orders evil\r\n", 21), 21);
    assert_int_equal(setsockopt(c1, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst)), 0);
    close(c1); /* RST: the accepted end goes to CLOSE, the 4-tuple is free */
    c2 = connect_from(&port, &lsa);
    fd = accept(lfd, (struct sockaddr *)&sa, &sl);
    assert_true(fd >= 0);
    assert_int_equal(((struct sockaddr_in *)&sa)->sin_port, port);
    assert_int_equal(read(fd, buf, sizeof(buf)), 21); /* the reset one, its data kept */
    sbb_peer_check(&cfg, fd, &sa, &p);
    assert_int_equal(p.verdict, SBB_PEER_UNKNOWN);
    assert_int_equal(p.err, -ECONNRESET);
    close(fd);
    /* The new connection itself is judged by its own socket. */
    assert_int_equal(accept_check(lfd, &cfg).verdict, SBB_PEER_OK);
    close(c2);
    close(lfd);
}

struct uid_kid {
    uid_t uid;
    gid_t gid;
    struct sockaddr_storage lsa;
};

/* Become the kid's uid, connect, and stay until the parent closes our
 * peer. */
static int uid_connect(void *arg)
{
    struct uid_kid *k = arg;
    struct sockaddr_storage sa = k->lsa;
    int fd;
    char ch;

    if (tu_become(k->uid, k->gid) < 0)
        return 2;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(struct sockaddr_in)) < 0)
        return 3;
    return read(fd, &ch, 1) == 0 ? 0 : 4; /* the parent's close */
}

/* Judge one connection of a child become @p pw's user under @p cfg. */
static struct sbb_peer uid_peer(const struct sbd_config *cfg, const struct passwd *pw)
{
    struct uid_kid k = {.uid = pw->pw_uid, .gid = pw->pw_gid};
    struct sbb_peer p;
    int lfd = listen_on(AF_INET, "127.0.0.1", &k.lsa);
    pid_t kid;

    assert_true(lfd >= 0);
    kid = tu_fork(uid_connect, &k);
    p = accept_check(lfd, cfg);
    assert_int_equal(tu_wait(kid), 0);
    close(lfd);
    return p;
}

/* Another uid (the daemon user's; nobody is the overflow uid): refused
 * unless --allow-uid names it or --allow-gid one of its groups (the user
 * database's), as on the control socket. */
static void test_peer_other_uid(void **state)
{
    struct passwd *pw = getpwnam("daemon");
    struct sbd_config cfg = {0};
    struct sbb_peer p;

    (void)state;
    if (getuid() != 0 || pw == NULL || pw->pw_uid == 0 || pw->pw_uid == sbb_peer_overflow_uid())
        skip(); /* only root can become another user, and one must exist */
    p = uid_peer(&cfg, pw);
    assert_int_equal(p.verdict, SBB_PEER_UID);
    assert_int_equal(p.uid, pw->pw_uid);
    cfg.allow_uid[cfg.n_allow_uid++] = pw->pw_uid;
    assert_int_equal(uid_peer(&cfg, pw).verdict, SBB_PEER_OK);
    cfg.n_allow_uid = 0;
    cfg.allow_gid[cfg.n_allow_gid++] = pw->pw_gid;
    assert_int_equal(uid_peer(&cfg, pw).verdict, SBB_PEER_OK);
    /* A group rule the user is not in: its groups are looked up, and fail. */
    cfg.allow_gid[0] = 0;
    assert_int_equal(uid_peer(&cfg, pw).verdict, SBB_PEER_UID);
}

/* The overflow uid stands for every uid unmapped in our user namespace:
 * refused even when the allow rule names it. */
static void test_peer_overflow_uid(void **state)
{
    struct passwd *pw = getpwuid(sbb_peer_overflow_uid());
    struct sbd_config cfg = {.n_allow_uid = 1};
    struct sbb_peer p;
    char why[256];

    (void)state;
    if (getuid() != 0 || pw == NULL)
        skip(); /* no user has the overflow uid here, or we cannot become it */
    cfg.allow_uid[0] = pw->pw_uid;
    p = uid_peer(&cfg, pw);
    assert_int_equal(p.verdict, SBB_PEER_UNKNOWN);
    assert_int_equal(p.err, -EOVERFLOW);
    sbb_peer_why(&p, "bridge", "--bridge-token-file", why, sizeof(why));
    assert_non_null(strstr(why, "overflow uid"));
}

/* A non-loopback address of this host, for a "remote" peer. @return 1
 * with @p out filled, 0 if the host has none. */
static int other_address(char *out, size_t cap)
{
    struct ifaddrs *all, *i;
    int found = 0;

    if (getifaddrs(&all) < 0)
        return 0;
    for (i = all; i != NULL && !found; i = i->ifa_next) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)i->ifa_addr;

        if (in == NULL || in->sin_family != AF_INET || (ntohl(in->sin_addr.s_addr) >> 24) == 127)
            continue;
        found = inet_ntop(AF_INET, &in->sin_addr, out, (socklen_t)cap) != NULL;
    }
    freeifaddrs(all);
    return found;
}

/* A peer on a non-loopback address needs the token, whoever it is. */
static void test_peer_remote_address(void **state)
{
    struct sbd_config cfg = {0};
    struct sockaddr_storage lsa;
    char host[INET_ADDRSTRLEN];
    int lfd, c;

    (void)state;
    if (!other_address(host, sizeof(host)))
        skip(); /* loopback only */
    lfd = listen_on(AF_INET, host, &lsa);
    assert_true(lfd >= 0);
    c = connect_to(AF_INET, host, &lsa);
    assert_int_equal(accept_check(lfd, &cfg).verdict, SBB_PEER_REMOTE);
    close(c);
    close(lfd);
}

#define http_like(lit) sbb_admit_http_like((lit), sizeof(lit) - 1)

/* Request lines and header lines are HTTP as soon as their first word
 * is complete; commands, and words that may still become one, are not. */
/* The peer states that vouch for a uid: those of a live socket at the
 * other end of an accepted connection. A SYN_SENT socket took the port of
 * a peer that closed (tcp_tw_reuse) and is connecting: it must not vouch,
 * nor a listener or a TIME_WAIT socket. (Pure: the SYN_SENT window lasts
 * microseconds on a live connection.) */
static void test_peer_states(void **state)
{
    static const unsigned live[] = {TCP_ESTABLISHED, TCP_FIN_WAIT1, TCP_FIN_WAIT2};
    static const unsigned dead[] = {TCP_SYN_SENT,   TCP_SYN_RECV, TCP_TIME_WAIT, TCP_CLOSE,
                                    TCP_CLOSE_WAIT, TCP_LAST_ACK, TCP_LISTEN,    TCP_CLOSING};

    (void)state;
    for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
        assert_true(sbb_peer_state_live(live[i]));
    for (size_t i = 0; i < sizeof(dead) / sizeof(dead[0]); i++)
        assert_false(sbb_peer_state_live(dead[i]));
}

static void test_http_like_first_words(void **state)
{
    (void)state;
    assert_int_equal(http_like("POST / HTTP/1.1\r\nHost: x\r\n"), 1);
    assert_int_equal(http_like("POST "), 1);
    assert_int_equal(http_like("GET /index.html HTTP/1.0\r\n"), 1);
    assert_int_equal(http_like("put /x"), 1);
    assert_int_equal(http_like("HEAD /"), 1);
    assert_int_equal(http_like("OPTIONS * HTTP/1.1"), 1);
    assert_int_equal(http_like("Host: 127.0.0.1:7379\r\n"), 1);
    assert_int_equal(http_like("host:x"), 1);
    assert_int_equal(http_like("Content-Length: 10\r\n"), 1);
    /* Not yet known: the word may go on. */
    assert_int_equal(http_like("POS"), -1);
    assert_int_equal(http_like("POST"), -1);
    assert_int_equal(http_like("Ho"), -1);
    /* Commands, and what no HTTP request starts with. */
    assert_int_equal(http_like("PUBLISH orders x\r\n"), 0);
    assert_int_equal(http_like("PING\r\n"), 0);
    assert_int_equal(http_like("GET\r\n"), 0);
    assert_int_equal(http_like("POSTS / x"), 0);
    assert_int_equal(http_like(":x"), 0);
    assert_int_equal(http_like("a.b: x"), 0);
    assert_int_equal(http_like("\"POST\" /"), 0);
    /* A first word longer than any method or header name. */
    char longw[80];
    memset(longw, 'A', sizeof(longw));
    assert_int_equal(sbb_admit_http_like(longw, sizeof(longw)), 0);
    assert_int_equal(sbb_admit_http_word("POST", 4), 1);
    assert_int_equal(sbb_admit_http_word("host:", 5), 1);
    assert_int_equal(sbb_admit_http_word("post", 4), 1);
    assert_int_equal(sbb_admit_http_word("PUBLISH", 7), 0);
    /* Later in the stream, only POST and headers: GET and the other
     * methods are Redis commands or mistakes that get an error reply. */
    assert_int_equal(sbb_admit_http_word("GET", 3), 0);
    assert_int_equal(sbb_admit_http_word("PUT", 3), 0);
    assert_int_equal(sbb_admit_http_word("DELETE", 6), 0);
    assert_int_equal(sbb_admit_http_word(":", 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_zeroed_not_ok),
        cmocka_unit_test(test_peer_loopback_own_uid),
        cmocka_unit_test(test_peer_ipv6_and_mapped),
        cmocka_unit_test(test_peer_closed_before_check),
        cmocka_unit_test(test_peer_reset_port_reused),
        cmocka_unit_test(test_peer_time_wait),
        cmocka_unit_test(test_peer_other_uid),
        cmocka_unit_test(test_peer_overflow_uid),
        cmocka_unit_test(test_peer_remote_address),
        cmocka_unit_test(test_peer_states),
        cmocka_unit_test(test_http_like_first_words),
    };

    tu_init();
    return cmocka_run_group_tests_name("bridge_peer", tests, NULL, NULL);
}
