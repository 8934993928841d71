/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A daemon's TCP listening socket (listen.c), for the doors that take
 * TCP: the bridge (--bridge) and the metrics endpoint (--metrics).
 */
#ifndef SHMBUSD_LISTEN_H
#define SHMBUSD_LISTEN_H

#include <stddef.h>

/* Listen on numeric address @p host (IPv4, or IPv6 without brackets) and
 * port @p port with @p backlog: a non-blocking, close-on-exec socket with
 * SO_REUSEADDR. @p what names the door in the log line of a bad address.
 * The address bound goes into @p text ("ADDR:PORT", "[ADDR6]:PORT"; the
 * port the kernel chose for port 0). @return the socket, -EINVAL (not a
 * numeric address, logged) or -errno. Any thread. */
int sbd_listen_tcp(const char *what, const char *host, const char *port, int backlog, char *text,
                   size_t cap);

#endif
