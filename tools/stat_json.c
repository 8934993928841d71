/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `shmbus stat --json`: a sample of the bus (stat.h) as one JSON object
 * per refresh, on one line. Keys come from the lists that define the
 * numbers (STAT_TOPIC_COUNTERS, and monitor.h's SHMBUS_GROUP_COUNTERS,
 * SHMBUS_BRIDGE_TOTALS, SHMBUS_NATS_TOPIC_COUNTERS) wherever there is one.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "stat.h"

/* A JSON string, or null for NULL or "". */
static void json_str_or_null(const char *s)
{
    if (s == NULL || s[0] == '\0')
        printf("null");
    else
        cli_json_str(s);
}

static void json_slots(const struct stat_topic *t)
{
    printf("\"slots\":[");
    for (unsigned i = 0; i < t->n_slots; i++) {
        const shmbus_slot_info *s = &t->slots[i];

        printf("%s{\"index\":%u,\"pid\":%u,\"group\":", i ? "," : "", s->index, s->pid);
        if (s->group == 0)
            printf("null");
        else
            cli_json_str(s->group_name);
        printf(",\"group_id\":%u,\"position\":%llu,\"lag\":%llu,\"lost\":%llu,\"received\":%llu,"
               "\"observer\":%s,\"evicted\":%s}",
               s->group, (unsigned long long)s->position, (unsigned long long)s->lag,
               (unsigned long long)s->lost, (unsigned long long)s->received,
               (s->flags & SHMBUS_SLOT_OBSERVER) ? "true" : "false",
               (s->flags & SHMBUS_SLOT_EVICTED) ? "true" : "false");
    }
    printf("]");
}

/* The processes with publisher records, and how many each holds. */
static void json_procs(const struct stat_topic *t)
{
    printf("\"publisher_pids\":[");
    for (unsigned i = 0; i < t->n_procs; i++)
        printf("%s{\"pid\":%u,\"publishers\":%u,\"dead\":%u}", i ? "," : "", t->procs[i].pid,
               t->procs[i].records, t->procs[i].dead);
    printf("]");
}

/* One group number, as ,"key":value. */
#define JSON_GROUP(kind, field, key, doc) printf(",\"" key "\":%llu", (unsigned long long)g->field);

/* The consumer groups in use; name and dead_letter null when there is none. */
static void json_groups(const struct stat_topic *t)
{
    printf("\"groups\":[");
    for (unsigned i = 0; i < t->n_groups; i++) {
        const shmbus_group_info *g = &t->groups[i];

        printf("%s{\"index\":%u,\"name\":", i ? "," : "", g->index);
        json_str_or_null(g->name);
        printf(",\"members\":%u,\"max_deliveries\":%u,\"dead_letter\":", g->members,
               g->max_deliveries);
        json_str_or_null(g->dead_letter);
        SHMBUS_GROUP_COUNTERS(JSON_GROUP)
        putchar('}');
    }
    printf("]");
}

/* A topic counter as "key":value, (the key is the field's name). */
#define JSON_COUNTER(field, header, width)                                                         \
    printf("\"" #field "\":%llu,", (unsigned long long)in->field);

static void json_topic(const struct stat_topic *t, double rate)
{
    const shmbus_topic_info *in = &t->info;

    printf("{\"name\":");
    cli_json_str(t->e.name);
    printf(",\"mode\":\"%s\",\"exclusive\":%s,\"capacity\":%u,\"max_msg_size\":%u,"
           "\"max_subscribers\":%u,\"max_groups\":%u,\"segment_size\":%llu,",
           in->mode == SHMBUS_RELIABLE ? "reliable" : "lossy",
           (in->flags & SHMBUS_TOPIC_EXCLUSIVE) ? "true" : "false", in->capacity, in->max_msg_size,
           in->max_subscribers, in->max_groups, (unsigned long long)in->segment_size);
    printf("\"clients\":%u,\"publishers\":%u,\"subscribers\":%u,", t->e.clients, t->e.publishers,
           t->e.subscribers);
    STAT_TOPIC_COUNTERS(JSON_COUNTER)
    printf("\"stall_timeout_ms\":%u,", in->stall_timeout_ms);
    if (rate < 0)
        printf("\"rate\":null,");
    else
        printf("\"rate\":%.3f,", rate);
    json_slots(t);
    putchar(',');
    json_procs(t);
    putchar(',');
    json_groups(t);
    printf("}");
}

static void json_conn(const shmbus_bridge_conn *c)
{
    printf("{\"id\":%llu,\"peer\":", (unsigned long long)c->id);
    cli_json_str(c->peer);
    printf(",\"protocol\":");
    json_str_or_null(cli_stat_conn_proto(c));
    printf(",\"name\":");
    json_str_or_null(c->name);
    printf(",\"authed\":%s,\"paused\":%s,\"channels\":%u,\"patterns\":%u,\"subscriptions\":",
           (c->flags & SHMBUS_BRIDGE_AUTHED) ? "true" : "false",
           (c->flags & SHMBUS_BRIDGE_PAUSED) ? "true" : "false", c->channels, c->patterns);
    cli_json_str(c->subs);
    printf(",\"buffered\":%llu,\"memory\":%llu,\"msgs_in\":%llu,\"msgs_out\":%llu,"
           "\"age_ms\":%llu}",
           (unsigned long long)c->buffered, (unsigned long long)c->memory,
           (unsigned long long)c->msgs_in, (unsigned long long)c->msgs_out,
           (unsigned long long)c->age_ms);
}

/* One bridge total, as ,"key":value. */
#define JSON_TOTAL(kind, field, key, doc)                                                          \
    printf(",\"" key "\":%llu", (unsigned long long)in->field);

/* The bridge's totals and connections; null when the daemon runs none. */
static void json_bridge(const struct stat_sample *s)
{
    const shmbus_bridge_info *in = &s->bridge;

    if (in->listen[0] == '\0') {
        printf("null");
        return;
    }
    printf("{\"listen\":");
    cli_json_str(in->listen);
    SHMBUS_BRIDGE_TOTALS(JSON_TOTAL)
    printf(",\"connections\":[");
    for (size_t i = 0; i < s->n_conns; i++) {
        if (i > 0)
            putchar(',');
        json_conn(&s->conns[i]);
    }
    printf("]}");
}

/* One counter, as ,"key":value. */
#define JSON_FED(kind, field, key, doc) printf(",\"" key "\":%llu", (unsigned long long)c->field);

static void json_fed(const shmbus_nats_topic *c)
{
    printf("{\"id\":%llu,\"name\":", (unsigned long long)c->id);
    cli_json_str(c->name);
    printf(",\"export\":%s,\"import\":%s,\"persist\":%s",
           (c->flags & SHMBUS_NATS_EXPORT) ? "true" : "false",
           (c->flags & SHMBUS_NATS_IMPORT) ? "true" : "false",
           (c->flags & SHMBUS_NATS_PERSIST) ? "true" : "false");
    SHMBUS_NATS_TOPIC_COUNTERS(JSON_FED)
    putchar('}');
}

/* The NATS link, its totals and topics; null when the daemon does not federate. */
static void json_nats(const struct stat_sample *s)
{
    const shmbus_nats_info *c = &s->nats;

    if (c->state == SHMBUS_NATS_OFF) {
        printf("null");
        return;
    }
    printf("{\"state\":\"%s\",\"server\":", cli_stat_nats_states[c->state]);
    json_str_or_null(c->server);
    printf(",\"origin\":");
    cli_json_str(c->origin);
    printf(",\"prefix\":");
    cli_json_str(c->prefix);
    printf(",\"federated\":%u,\"reconnects\":%llu,\"refused\":%llu,\"errors\":%llu", c->topics,
           (unsigned long long)c->reconnects, (unsigned long long)c->refused,
           (unsigned long long)c->errors);
    SHMBUS_NATS_TOPIC_COUNTERS(JSON_FED)
    printf(",\"topics\":[");
    for (size_t i = 0; i < s->n_fed; i++) {
        if (i > 0)
            putchar(',');
        json_fed(&s->fed[i]);
    }
    printf("]}");
}

void cli_stat_json_show(const char *bus, const struct stat_sample *cur,
                        const struct stat_sample *prev)
{
    printf("{\"bus\":");
    cli_json_str(bus);
    printf(",\"time\":%llu.%09llu,\"interval\":%.3f,\"topics\":[",
           (unsigned long long)(cur->realtime_ns / 1000000000ull),
           (unsigned long long)(cur->realtime_ns % 1000000000ull),
           (double)(cur->realtime_ns - prev->realtime_ns) / 1e9);
    for (size_t i = 0; i < cur->n; i++) {
        if (i > 0)
            putchar(',');
        json_topic(&cur->v[i], cli_stat_rate(&cur->v[i], prev));
    }
    printf("],\"limits\":{\"shm_bytes\":%llu,\"max_shm\":%llu,\"max_segment\":%llu,"
           "\"topics\":%u,\"max_topics\":%u,\"clients\":%u,\"max_clients\":%u}",
           (unsigned long long)cur->limits.shm_bytes, (unsigned long long)cur->limits.max_shm,
           (unsigned long long)cur->limits.max_segment, cur->limits.topics, cur->limits.max_topics,
           cur->limits.clients, cur->limits.max_clients);
    printf(",\"bridge\":");
    json_bridge(cur);
    printf(",\"nats\":");
    json_nats(cur);
    printf("}\n");
}
