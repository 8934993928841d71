/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Federation's link to NATS: the cnats options from the configuration,
 * the connection and its callbacks (state, server, reconnects, errors,
 * each logged once, a repeated error with its count), and the link
 * thread, which makes the connection again when cnats closes it for good
 * and runs the core-NATS import (import.c) between its checks.
 */
#ifndef SHMBUSD_FED_LINK_H
#define SHMBUSD_FED_LINK_H

#include <nats/nats.h>

struct sbd_fed;
struct sbf_link;

/* Build the cnats options from f->cfg. @return 0 or -errno (logged). */
int sbf_link_init(struct sbd_fed *f);

/* Start the link thread, which connects in the background.
 * @return 0 or -errno. */
int sbf_link_start(struct sbd_fed *f);

/* Stop and join the link thread, close and destroy the connection, free
 * the options. The other threads that use the connection ended first.
 * Accepts a link never started. */
void sbf_link_stop(struct sbd_fed *f);

/* The connection, or NULL: under urcu_memb_read_lock(), valid until it
 * is released. */
natsConnection *sbf_link_conn(struct sbf_link *l);

/* Count and log error @p what (a cnats status's text and detail): once,
 * then, if it comes again and again, with its count when it changes or
 * the link heals. Any thread. */
void sbf_link_error(struct sbf_link *l, const char *what);

#endif
