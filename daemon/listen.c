/* SPDX-License-Identifier: Apache-2.0 */
/* TCP listening sockets of the daemon (listen.h). */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

int sbd_listen_tcp(const char *what, const char *host, const char *port, int backlog, char *text,
                   size_t cap)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai;
    struct sockaddr_storage sa;
    socklen_t sl = sizeof(sa);
    char h[INET6_ADDRSTRLEN], p[8];
    int one = 1, rc, fd;

    rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        sbd_log(SBD_ERROR, "%s: address %s: %s", what, host, gai_strerror(rc));
        return -EINVAL;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
        rc = -errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return rc;
    }
    freeaddrinfo(ai);
    getnameinfo((struct sockaddr *)&sa, sl, h, sizeof(h), p, sizeof(p),
                NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(text, cap, sa.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", h, p);
    return fd;
}
