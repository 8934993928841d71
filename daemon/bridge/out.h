/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge's output buffers: each connection's bounded output, which
 * the I/O thread's replies and the pumps' deliveries are appended to
 * under the connection's mutex; a connection whose output would pass
 * --bridge-max-output (or the memory budget) is doomed and closed. Also
 * the growable byte buffers a pump round encodes into.
 */
#ifndef SHMBUSD_BRIDGE_OUT_H
#define SHMBUSD_BRIDGE_OUT_H

#include <stddef.h>

struct sbb_conn;

/* A drained output buffer larger than this is freed within a second
 * (sbb_out_trim()): 10 000 idle connections hold 40 MiB of buffers at most. */
#define SBB_OUT_KEEP 4096u

/* Room for @p len more bytes of @p c's output. Under c->mu. @return where
 * to write them (then sbb_out_commit() what was written), or NULL: the
 * connection is dead, or doomed now for passing the limit. */
char *sbb_out_reserve(struct sbb_conn *c, size_t len);
void sbb_out_commit(struct sbb_conn *c, size_t len);
/* Append @p len bytes to @p c's output (sbb_out_flush() writes it); drops
 * the output and dooms the connection when it would pass the limit. Under c->mu.
 * @return 0, or -1 if the connection is dead or doomed. */
int sbb_out_put(struct sbb_conn *c, const void *data, size_t len);
/* Write what @p c has buffered; arm EPOLLOUT for the rest. Under c->mu. */
void sbb_out_flush(struct sbb_conn *c);
/* Free @p c's output buffer (the connection is closing). Under c->mu. */
void sbb_out_release(struct sbb_conn *c);
/* Free @p c's output buffer if it is drained and larger than SBB_OUT_KEEP.
 * Under c->mu. */
void sbb_out_trim(struct sbb_conn *c);
/* Close @p c's output for a full buffer: the I/O thread sees the hang-up
 * and closes. Under c->mu. */
void sbb_out_doom(struct sbb_conn *c);

/* Make room for @p len more bytes in @p *buf (@p used in use, @p *cap
 * allocated), which is never NULL after (an empty message is copied to it
 * too: no offset from a null pointer). @return 0 or -1. */
int sbb_out_buf_reserve(char **buf, size_t *cap, size_t used, size_t len);

#endif
