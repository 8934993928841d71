/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The systemd notify protocol (notify.h), written out: one datagram of
 * "KEY=VALUE\n" lines to the socket $NOTIFY_SOCKET names. These few lines
 * spare the daemon a libsystemd dependency on hosts and in containers
 * without systemd; the protocol is a stable interface systemd documents
 * for reimplementation (sd_notify(3), "Notes").
 */
#include "notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

/* Fill @p a from $NOTIFY_SOCKET's value @p name: "/path", or "@name" for
 * an abstract socket. @return the address length, or -EINVAL when the
 * name is neither or does not fit sun_path. */
static int notify_addr(const char *name, struct sockaddr_un *a)
{
    size_t n = strlen(name);

    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    if ((name[0] != '/' && name[0] != '@') || n < 2 || n >= sizeof(a->sun_path))
        return -EINVAL;
    memcpy(a->sun_path, name, n);
    if (name[0] == '@')
        a->sun_path[0] = '\0'; /* abstract: the length, not a NUL, ends it */
    return (int)(offsetof(struct sockaddr_un, sun_path) + n);
}

/* Send @p msg (@p len bytes) to @p name. @return 0 or -errno. */
static int notify_send(const char *name, const char *msg, size_t len)
{
    struct timeval tv = {.tv_sec = 1};
    struct sockaddr_un a;
    int alen = notify_addr(name, &a), s, rc = 0;

    if (alen < 0)
        return alen;
    s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    /* A manager that does not read: a second's wait, not a hung daemon. */
    if (setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
        sendto(s, msg, len, MSG_NOSIGNAL, (struct sockaddr *)&a, (socklen_t)alen) < 0)
        rc = -errno;
    close(s);
    return rc;
}

int sbd_notify(const char *fmt, ...)
{
    const char *name = getenv("NOTIFY_SOCKET");
    char msg[SBD_NOTIFY_MAX];
    va_list ap;
    int n, rc;

    if (name == NULL || name[0] == '\0')
        return 0; /* not run by a service manager that listens */
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    rc = notify_send(name, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
    if (rc < 0) {
        sbd_log(SBD_WARN, "cannot notify the service manager at %s: %s", name, strerror(-rc));
        return rc;
    }
    return 1;
}
