/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ring's hooks (ring/hooks.h) for topic handles opened through the
 * daemon, and the record behind them (client.h struct sb_topic_reg): the
 * daemon is told of each publisher and slot, and the record keeps count
 * of them for re-registration with a daemon that replaces a lost one
 * (client.c bus_reconnect_locked()). The record's counts and the bus's
 * list change under the bus's lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "registry/client.h"
#include "ring/hooks.h"
#include "ring/ring.h"
#include "util/vec.h"

int sb_topic_reg_attach(shmbus_bus *bus, shmbus_topic *t, uint32_t id, const char *name)
{
    struct sb_topic_reg *reg = calloc(1, sizeof(*reg));

    if (reg == NULL)
        return -ENOMEM;
    sb_bus_ref_get(bus);
    reg->bus = bus;
    reg->topic = t;
    reg->id = id;
    snprintf(reg->name, sizeof(reg->name), "%s", name);
    t->reg = reg;
    pthread_mutex_lock(&bus->lock);
    reg->next = bus->topics;
    bus->topics = reg;
    pthread_mutex_unlock(&bus->lock);
    return 0;
}

/* Unlink @p reg from its bus's list. */
static void reg_unlink(struct sb_topic_reg *reg)
{
    shmbus_bus *bus = reg->bus;

    pthread_mutex_lock(&bus->lock);
    for (struct sb_topic_reg **pp = &bus->topics; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == reg) {
            *pp = reg->next;
            break;
        }
    }
    pthread_mutex_unlock(&bus->lock);
}

/* Count a publisher (+1/-1) of @p reg, for re-registration. */
static void reg_pubs(struct sb_topic_reg *reg, int delta)
{
    pthread_mutex_lock(&reg->bus->lock);
    reg->npubs += (uint32_t)delta;
    pthread_mutex_unlock(&reg->bus->lock);
}

/* Note slot @p slot of @p reg taken, for re-registration.
 * @return 0 or -ENOMEM. */
static int reg_slot_add(struct sb_topic_reg *reg, uint32_t slot)
{
    int rc;

    pthread_mutex_lock(&reg->bus->lock);
    rc = SB_VEC_RESERVE(reg->slots, reg->slots_cap, reg->nslots, 1, 4);
    if (rc == 0)
        reg->slots[reg->nslots++] = slot;
    pthread_mutex_unlock(&reg->bus->lock);
    return rc;
}

/* Note slot @p slot of @p reg given back. */
static void reg_slot_drop(struct sb_topic_reg *reg, uint32_t slot)
{
    pthread_mutex_lock(&reg->bus->lock);
    for (uint32_t i = 0; i < reg->nslots; i++) {
        if (reg->slots[i] == slot) {
            reg->slots[i] = reg->slots[--reg->nslots];
            break;
        }
    }
    pthread_mutex_unlock(&reg->bus->lock);
}

int sb_hook_pub_added(shmbus_topic *t)
{
    int rc = sb_bus_ref(t, SB_MSG_PUB_ADD);

    if (rc < 0)
        return rc;
    reg_pubs(t->reg, +1);
    return 0;
}

void sb_hook_pub_removed(shmbus_topic *t)
{
    reg_pubs(t->reg, -1);
    sb_bus_ref(t, SB_MSG_PUB_DEL);
}

int sb_hook_slot_want(shmbus_topic *t, const char *group_name, const struct sb_hook_ack *ack,
                      uint32_t *slot, uint32_t *group)
{
    struct sb_wire_sub req = {0}; /* the topic id is filled in by the call */
    struct sb_wire_sub_ok ok;
    int rc;

    snprintf(req.group, sizeof(req.group), "%s", group_name ? group_name : "");
    if (ack != NULL) {
        /* The daemon checks the rest (range, name, the group's kind). */
        req.flags = SB_WIRE_SUB_ACK;
        req.max_deliveries = ack->max_deliveries;
        if (ack->dead_letter != NULL &&
            sb_wire_put_name(req.dead_letter, sizeof(req.dead_letter), ack->dead_letter) < 0)
            return SHMBUS_ERR_BAD_NAME;
    }
    rc = sb_bus_topic_call(t, SB_MSG_SUB_ADD, &req, sizeof(req), &ok, sizeof(ok));
    if (rc < 0)
        return rc;
    if (rc != (int)sizeof(ok))
        return SHMBUS_ERR_PROTOCOL; /* nothing known to give back */
    if (ok.slot >= t->seg.g.max_subs || ok.group > t->seg.g.max_groups ||
        (ok.group == 0) != (group_name == NULL)) {
        sb_bus_slot_release(t, ok.slot);
        return SHMBUS_ERR_PROTOCOL;
    }
    if (reg_slot_add(t->reg, ok.slot) < 0) {
        sb_bus_slot_release(t, ok.slot);
        return -ENOMEM;
    }
    *slot = ok.slot;
    *group = ok.group;
    return 0;
}

void sb_hook_slot_give_back(shmbus_topic *t, uint32_t slot)
{
    reg_slot_drop(t->reg, slot);
    sb_bus_slot_release(t, slot);
}

int sb_hook_journal_dir(shmbus_topic *t, char *dir, size_t cap, char *name)
{
    int rc = sb_bus_journal_dir(t, dir, cap);

    if (rc == 0)
        snprintf(name, SHMBUS_TOPIC_NAME_MAX + 1, "%s", t->reg->name);
    return rc;
}

void sb_hook_topic_closing(shmbus_topic *t)
{
    struct sb_topic_reg *reg = t->reg;
    shmbus_bus *bus = reg->bus;

    reg_unlink(reg); /* a reconnect from now on does not re-register it */
    sb_bus_ref(t, SB_MSG_CLOSE);
    t->reg = NULL;
    free(reg->slots);
    free(reg);
    sb_bus_ref_put(bus);
}
