/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The uid of a loopback TCP peer (peer.h). The kernel keeps both
 * ends of a loopback connection; inet_diag's exact lookup
 * (SOCK_DIAG_BY_FAMILY without NLM_F_DUMP) finds the socket whose local
 * end is the connection's remote address and port and whose remote end is
 * ours, and reports the uid that created it (idiag_uid). A socket its
 * process already closed has no inode (idiag_inode 0), and a TIME_WAIT
 * one reports uid 0: both are refused, as is a listening socket (the
 * lookup's fallback), so a peer cannot pass for root by closing early.
 */
#include "peer.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "access.h"
#include "bridge.h"
#include "log.h"

/* Is @p sa a loopback address (127.0.0.0/8, ::1, or 127.x mapped in
 * IPv6)? */
static int peer_loopback(const struct sockaddr_storage *sa)
{
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

/* Copy the address and port of @p sa into @p addr (4 words) and @p port. */
static void peer_endpoint(const struct sockaddr_storage *sa, __be32 addr[4], __be16 *port)
{
    memset(addr, 0, 4 * sizeof(__be32));
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

        addr[0] = in->sin_addr.s_addr;
        *port = in->sin_port;
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;

        memcpy(addr, &in6->sin6_addr, 16);
        *port = in6->sin6_port;
    }
}

/* Ask for the socket whose local end is @p remote and remote end @p local
 * on netlink socket @p nl. @return 0 with *msg filled, or -errno. */
static int peer_query(int nl, const struct sockaddr_storage *remote,
                      const struct sockaddr_storage *local, struct inet_diag_msg *msg)
{
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 r;
    } req = {.nlh = {.nlmsg_len = sizeof(req),
                     .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                     .nlmsg_flags = NLM_F_REQUEST,
                     .nlmsg_seq = 1},
             .r = {.sdiag_family = (__u8)remote->ss_family,
                   .sdiag_protocol = IPPROTO_TCP,
                   .idiag_states = ~0u,
                   .id.idiag_cookie = {INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE}}};
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK}, from;
    socklen_t from_len;
    union {
        struct nlmsghdr h;
        char buf[1024];
    } ans;
    ssize_t n;

    peer_endpoint(remote, req.r.id.idiag_src, &req.r.id.idiag_sport);
    peer_endpoint(local, req.r.id.idiag_dst, &req.r.id.idiag_dport);
    if (sendto(nl, &req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
        return -errno;
    do {
        from_len = sizeof(from);
        n = recvfrom(nl, &ans, sizeof(ans), 0, (struct sockaddr *)&from, &from_len);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    /* Only the kernel (port 0) answers, and only this request. */
    if (from_len < sizeof(from) || from.nl_pid != 0 || !NLMSG_OK(&ans.h, (size_t)n) ||
        ans.h.nlmsg_seq != req.nlh.nlmsg_seq)
        return -EPROTO;
    if (ans.h.nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = NLMSG_DATA(&ans.h);

        /* Not found (-ENOENT), or inet_diag missing from the kernel. */
        return ans.h.nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error < 0 ? e->error : -EPROTO;
    }
    if (ans.h.nlmsg_type != SOCK_DIAG_BY_FAMILY || ans.h.nlmsg_len < NLMSG_LENGTH(sizeof(*msg)))
        return -EPROTO;
    memcpy(msg, NLMSG_DATA(&ans.h), sizeof(*msg));
    return 0;
}

int sbb_peer_state_live(unsigned state)
{
    return state == TCP_ESTABLISHED || state == TCP_FIN_WAIT1 || state == TCP_FIN_WAIT2;
}

/* The uid of the live socket at the other end of @p fd. @return 0 or
 * -errno (-ENOENT: none, or one that cannot vouch for a uid). */
static int peer_uid(int fd, const struct sockaddr_storage *remote, uid_t *uid)
{
    struct sockaddr_storage local;
    socklen_t sl = sizeof(local);
    struct timeval tv = {.tv_sec = 1};
    struct inet_diag_msg msg = {0};
    int nl, rc;

    if (getsockname(fd, (struct sockaddr *)&local, &sl) < 0)
        return -errno;
    if (local.ss_family != remote->ss_family)
        return -EAFNOSUPPORT;
    nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0)
        return -errno;
    /* The kernel answers at once; the bound only guards the I/O thread. */
    setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    rc = peer_query(nl, remote, &local, &msg);
    close(nl);
    if (rc < 0)
        return rc;
    /* Closed by its process (a FIN_WAIT2 or TIME_WAIT mini-socket, uid
     * reported as 0), or not in a state the other end of our connection
     * can be in (sbb_peer_state_live()): no live owner vouches for it. */
    if (msg.idiag_inode == 0 || !sbb_peer_state_live(msg.idiag_state))
        return -ENOENT;
    *uid = (uid_t)msg.idiag_uid;
    return 0;
}

/*
 * Is our end @p fd of the connection still one the peer's 4-tuple belongs
 * to? A connection reset (RST) while it waited to be accepted is accepted
 * all the same, its data still readable, and its 4-tuple is free: another
 * socket (of another uid) can bind the same port and connect, and the
 * lookup then finds that one. While our end is ESTABLISHED or CLOSE_WAIT
 * (the peer sent FIN) our socket holds the 4-tuple, but not exclusively:
 * a peer that closed leaves a FIN_WAIT2 mini-socket, which with
 * tcp_tw_reuse (2: loopback) lets another socket bind its port and
 * connect a second later; that one shows as SYN_SENT with its own uid
 * until our end answers its SYN and it resets both (microseconds). The
 * lookup refuses any peer state but ESTABLISHED, FIN_WAIT1 and FIN_WAIT2
 * of a live socket, which that one is not. Our end in SYN_RECV (a TCP
 * Fast Open accept: the bridge never enables it, but net.ipv4.tcp_fastopen
 * 0x400 does for every listener) is refused as reset. Read after the
 * lookup, so a reset before or during it is seen. @return 0 or
 * -ECONNRESET.
 */
static int peer_still_ours(int fd)
{
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);

    memset(&ti, 0, sizeof(ti));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) < 0)
        return -errno;
    if (ti.tcpi_state != TCP_ESTABLISHED && ti.tcpi_state != TCP_CLOSE_WAIT)
        return -ECONNRESET;
    return 0;
}

/* The kernel's overflow uid, read once. */
static uid_t overflow_uid = 65534;
static pthread_once_t overflow_once = PTHREAD_ONCE_INIT;

static void overflow_read(void)
{
    FILE *f = fopen("/proc/sys/kernel/overflowuid", "re");
    unsigned v;

    if (f == NULL)
        return; /* no /proc: the kernel's default stands */
    if (fscanf(f, "%u", &v) == 1)
        overflow_uid = (uid_t)v;
    fclose(f);
}

uid_t sbb_peer_overflow_uid(void)
{
    pthread_once(&overflow_once, overflow_read);
    return overflow_uid;
}

void sbb_peer_warn(const struct sbd_config *cfg)
{
    uid_t ov = sbb_peer_overflow_uid();

    for (unsigned i = 0; i < cfg->n_allow_uid; i++)
        if (cfg->allow_uid[i] == ov)
            sbd_log(SBD_WARN,
                    "bridge: --allow-uid %u is the kernel's overflow uid: the bridge refuses it "
                    "without a token (the control socket lets it in)",
                    (unsigned)ov);
    if (geteuid() == ov)
        sbd_log(SBD_WARN,
                "bridge: the daemon runs as the kernel's overflow uid %u: the bridge refuses "
                "every loopback peer without a token, its own uid's too",
                (unsigned)ov);
}

void sbb_peer_check(const struct sbd_config *cfg, int fd, const struct sockaddr_storage *addr,
                    struct sbb_peer *out)
{
    memset(out, 0, sizeof(*out));
    if (!peer_loopback(addr)) {
        out->verdict = SBB_PEER_REMOTE;
        return;
    }
    out->err = peer_uid(fd, addr, &out->uid);
    if (out->err == 0)
        out->err = peer_still_ours(fd);
    if (out->err == 0 && out->uid == sbb_peer_overflow_uid())
        out->err = -EOVERFLOW;
    if (out->err < 0)
        out->verdict = SBB_PEER_UNKNOWN;
    else
        out->verdict = sbd_access_uid_allowed(cfg, out->uid) ? SBB_PEER_OK : SBB_PEER_UID;
}

void sbb_peer_why(const struct sbb_peer *p, const char *door, const char *opt, char *out,
                  size_t cap)
{
    switch (p->verdict) {
    case SBB_PEER_OK:
        snprintf(out, cap, "allowed");
        break;
    case SBB_PEER_UNCHECKED:
        snprintf(out, cap, "this connection's peer was not checked");
        break;
    case SBB_PEER_UID:
        snprintf(out, cap,
                 "uid %u may not use this bus: allow it with shmbusd --allow-uid or "
                 "--allow-gid, or give the %s a token (%s)",
                 (unsigned)p->uid, door, opt);
        break;
    case SBB_PEER_REMOTE:
        snprintf(out, cap,
                 "connections from other hosts need the %s token, and this "
                 "%s has none (shmbusd %s)",
                 door, door, opt);
        break;
    default:
        if (p->err == -EOVERFLOW)
            snprintf(out, cap,
                     "uid %u is the kernel's overflow uid, which any uid not mapped in the "
                     "daemon's user namespace shows as: never let in without a token",
                     (unsigned)p->uid);
        else
            snprintf(out, cap, "the uid of this loopback connection could not be learned (%s)",
                     strerror(-p->err));
    }
}

int sbd_bridge_peer_allowed(const struct sbd_config *cfg, int fd,
                            const struct sockaddr_storage *addr, const char *door, const char *opt,
                            char *why, size_t cap)
{
    struct sbb_peer p;

    sbb_peer_check(cfg, fd, addr, &p);
    if (p.verdict == SBB_PEER_OK)
        return 1;
    sbb_peer_why(&p, door, opt, why, cap);
    return 0;
}
