/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Held subscribers: a plain subscriber of a reliable topic whose slot's
 * position (what publishers wait for) moves only when its owner says so,
 * while it reads ahead at a private position; and kept slots, which
 * outlive their owner for another process to adopt. The ring side of
 * registry/relay.h's sb_relay_sub_* calls (the daemon's exporter to
 * JetStream: it releases what JetStream acknowledged, rewinds to resend
 * what it did not, and a daemon that dies leaves its slot gating for the
 * next one). The publish and read protocols are unchanged: the slot's pos
 * still only grows and only its owner writes it.
 */
#ifndef SHMBUS_RING_HOLD_H
#define SHMBUS_RING_HOLD_H

#include <stdint.h>

#include "shmbus/shmbus.h"

/* Hold @p sub (plain, not an observer, on a reliable topic; the creating
 * process). @return 0 (also if held already), or SHMBUS_ERR_INVALID. */
int sb_sub_hold(shmbus_sub *sub);

/* Where @p sub holds publishers: its held position, or for a subscriber
 * not held its read position. 0 for NULL. */
uint64_t sb_sub_held(const shmbus_sub *sub);

/* Let publishers reuse the cells below @p seq (held <= seq <= read
 * position). @return 0; SHMBUS_ERR_INVALID (out of bounds, not held:
 * nothing changes); SHMBUS_ERR_EVICTED. */
int sb_sub_release(shmbus_sub *sub, uint64_t seq);

/* Read again from @p seq (held <= seq <= read position). @return 0 or
 * SHMBUS_ERR_INVALID (nothing changes). */
int sb_sub_rewind(shmbus_sub *sub, uint64_t seq);

/* Mark held @p sub's slot kept (layout.h SB_KEEP_KEPT). @return 0 or
 * SHMBUS_ERR_INVALID (not held). */
int sb_sub_keep(shmbus_sub *sub);

/* Take over @p t's kept slot whose owner is dead (or whose adopter died
 * adopting it). @return 0 with *out a held, kept subscriber reading from
 * the slot's position; -ENOENT if there is none; SHMBUS_ERR_INVALID;
 * -ENOMEM. */
int sb_sub_adopt(shmbus_topic *t, shmbus_sub **out);

#endif
