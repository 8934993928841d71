/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the control socket's loop (control.c) and the handlers of its
 * requests (control_cmd.c) share; nothing outside those two includes it.
 * All of it runs on the control thread.
 */
#ifndef SHMBUSD_CONTROL_INT_H
#define SHMBUSD_CONTROL_INT_H

#include <sys/types.h>

#include "control.h"

/*
 * Decode one message @p msg of session @p s, handle it and send the reply.
 * @p n is its length, or < 0 if it was longer than SB_WIRE_MAX (its first
 * SB_WIRE_MAX bytes are in @p msg).
 * @return 0, or -1 if the session is to be dropped (the reply failed, or
 * the request closes it).
 */
int sbd_control_request(struct sbd_control *c, struct sbd_session *s, const uint8_t *msg, long n);

/* 1 if a session of @p uid may say hello now (--max-clients), else 0. */
int sbd_control_client_room(const struct sbd_control *c, uid_t uid);

/* Session @p s no longer waits for its hello (it said it, or is dropped). */
void sbd_control_wait_del(struct sbd_control *c, struct sbd_session *s);

#endif
