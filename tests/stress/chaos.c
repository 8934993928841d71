/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Chaos (issues 4 and 10, "kill -9 never stalls the bus"): a private
 * shmbusd with its TCP bridge (--bridge 127.0.0.1:0), one reliable and one
 * lossy topic of 64 cells, and processes that the test kills with SIGKILL
 * at random moments (one every 50-300 ms) and replaces, for
 * $SHMBUS_CHAOS_SECONDS (default 30 s, 15 s under a sanitizer; `make soak`
 * runs it for longer): publishers and subscribers of both topics, members
 * of the consumer group "chaos-group" of the reliable topic, and a remote
 * subscriber of the reliable topic (a JSON-lines client of the bridge).
 * Killable publishers sometimes hold a zero-copy claim open and killable
 * members sometimes linger in their poll callback, so that kills land
 * between claim and commit and while a member holds a message. Every 3-6 s
 * the daemon itself is bounced: stopped by SIGTERM or SIGKILL in turn,
 * kept away for 50-500 ms while the killing goes on, and started again on
 * the same bus; the parent reconnects and hands the new bridge port to the
 * remote subscribers. Never killed: per topic one sentinel subscriber and
 * one sentinel publisher, and on the reliable topic one sentinel member of
 * the group and one sentinel remote subscriber. Every child but the remote
 * ones calls shmbus_bus_check() every CH_CHECK_MS, as a long-lived client
 * would, and so re-registers with each new daemon.
 *
 * Checked all along: the daemon answers (a LIST shows both topics, also
 * right after each bounce: the new daemon adopted them); a daemon stopped
 * by SIGTERM exits 0, and a new one serves within CH_DAEMON_MS; the
 * sentinels keep receiving and publishing: no gap longer than CH_STALL_MS,
 * on the reliable topic counted from when the bounced daemon serves again
 * (a SIGKILLed daemon's bridge slot, and the holds and claims of processes
 * killed while no daemon ran, gate it until the new daemon reaps them);
 * without a daemon for CH_FLOW_MS or more, the lossy topic's sentinels
 * moved meanwhile; killable processes started at any time, during a bounce
 * too, come up and work; every payload is intact and comes from a
 * publisher of its topic (with that publisher's pid, where the reader sees
 * one), no further than that publisher went.
 *
 * Plain subscribers: each message's seq and lost agree with the
 * subscriber's position, and each publisher's messages come in order.
 * Reliable: the sentinel subscriber gets every message of every publisher
 * but at most the last of a killed one (its unfinished claim), and its
 * losses are exactly the topic's skipped claims, all ended by the daemon,
 * at most one per killed publisher. It records each seq as a message or a
 * loss in a per-seq map (the first CH_SEQS seqs, over an hour of this
 * test), against which the group and the remote subscribers are checked.
 * Lossy: delivered + lost = the sequence numbers the sentinel passed.
 *
 * Group (reliable): the sentinel member is in the group from before the
 * first message to the end, so the group holds every message. A member
 * marks a message taken in the map when its callback starts and done
 * (delivered) when the callback returns; killable members sometimes
 * linger in between. Let C be the committed seqs (the sentinel
 * subscriber's messages), D those done, A the topic's abandoned count and
 * K the members killed. No seq is taken twice (checked at once), only a
 * committed seq is taken and only a taken one is done: D is a subset of C,
 * without duplicates. C - D <= A: a message no member finished was in the
 * hand of a member killed before its callback returned, which the daemon
 * counts abandoned. A <= K: the daemon counts at most one message per dead
 * member (one too many for a member that died between storing its hold
 * and losing the take, or after its callback but before clearing the
 * hold). Nothing is evicted (no stall timeout). Each member gets its
 * messages in seq order, each publisher's in that publisher's order; at
 * the end the sentinel member drains the group to the tail.
 *
 * Remote (reliable, JSON lines): within a connection each delivery's seq
 * is the previous one + 1 + its lost, each publisher's messages come
 * without a gap from the first one seen, and every seq the bridge reports
 * lost is one the sentinel subscriber saw skipped: the losses are exactly
 * the skipped claims, as the sentinel's. The sentinel remote subscriber's
 * first connection starts at seq 0 and at each publisher's first message.
 * Its connections end only at bounces (the daemon generation changed);
 * it then subscribes anew on the new daemon's bridge, whose slot starts
 * at the next message: what lies between two connections is counted
 * (missed), not checked. At the end its last connection reaches the tail:
 * it got every message from that connection's start on. It reads
 * continuously, far below --bridge-max-output (32 MiB); the killable one
 * is sometimes slow and reconnects whenever its connection ends (being
 * disconnected for overflow is allowed for it alone). Killing a remote
 * subscriber stalls nothing: the bridge drops it within the stall bounds.
 *
 * Work queue (reliable, issue 14): the acknowledging group "chaos-ack"
 * (max_deliveries 3) has a sentinel member from before the first message
 * to the end and two killable ones (max_inflight 1 and 3), which linger
 * now and then between take and ack; one message in 1024 is poison,
 * nacked every time. The parent reads the dead-letter topic all along
 * (chaos_ack.c). Each delivery is checked as the plain members' are, and
 * never seen twice with the same delivery number; each dead letter
 * parses and carries the topic, the group, 3 deliveries and a reason
 * (nacked: poison only; or died). At the end, once the sentinel member
 * has drained the queue: exact accounting by seq (ack_ledger.h), every
 * message acknowledged or dead-lettered, exactly one of them, nothing
 * pending; a message redelivered without a nack was held by a killed
 * member; at most one seq dead-lettered twice per daemon SIGKILL.
 *
 * At the end every publisher is gone, and each sentinel publisher
 * published after the last kill, so that the last seq is a message the
 * remote sentinel must reach; no slot or publisher is left to a dead
 * process (the slots are exactly the sentinel readers' and the bridge's,
 * in the segment and, the bridge's aside, in the daemon's books), then
 * none at all; the last daemon exits 0 on SIGTERM leaving no segment
 * (du_teardown). Children report through shared mappings and their exit
 * status; $SHMBUS_CHAOS_SEED replays the test's own random choices (not
 * the scheduler's).
 */
#include "stress/chaos.h"

/* ------------------------------------------------------------------ parent */

static unsigned ch_env(const char *name, unsigned dflt)
{
    const char *s = getenv(name);
    char *end;
    unsigned long v;

    if (s == NULL || *s == '\0')
        return dflt;
    v = strtoul(s, &end, 10);
    return *end == '\0' && v > 0 && v < UINT32_MAX ? (unsigned)v : dflt;
}

/* Forget a child reaped outside tu_wait() (daemonutil.h du_wait_ms()). */
static void ch_forget(pid_t pid)
{
    for (int i = 0; i < TU_MAX_KIDS; i++)
        if (tu_kids[i] == pid)
            tu_kids[i] = 0;
}

/* The topic and role of killable child @p i. */
static void ch_churn_role(int i, int *topic, enum ch_role *role)
{
    if (i < CH_TOPICS * CH_PER_TOPIC) {
        *topic = i / CH_PER_TOPIC;
        *role = i % CH_PER_TOPIC < CH_CHURN_PUBS ? CH_PUB : CH_SUB;
        return;
    }
    *topic = CH_RELIABLE;
    if (i >= CH_CHURN_FIRST_ACKER)
        *role = CH_ACKER;
    else
        *role = i - CH_TOPICS * CH_PER_TOPIC < CH_CHURN_MEMBERS ? CH_MEMBER : CH_REMOTE;
}

/* Fork child @p c: a publisher gets a fresh id (none left: no child); an
 * acknowledging member its hand and max_inflight (killable ones 1 and
 * CH_ACK_INFLIGHT in turn). */
static void ch_spawn(struct ch_run *run, struct ch_child *c, int topic, enum ch_role role,
                     int sentinel)
{
    static int (*const fns[CH_ROLES])(void *) = {ch_pub_run, ch_sub_run, ch_member_run,
                                                 ch_remote_run, ch_acker_run};
    int j = (int)(c - run->churn) - CH_CHURN_FIRST_ACKER;

    c->k = (struct ch_kid){.sh = run->sh,
                           .bus = run->d->bus,
                           .topic = topic,
                           .role = role,
                           .sentinel = sentinel,
                           .seed = ch_rand(&run->rng)};
    c->pid = 0;
    if (role == CH_ACKER) {
        c->k.hand = sentinel ? CH_CHURN_ACKERS : j;
        c->k.inflight = sentinel ? CH_ACK_INFLIGHT_S : j % 2 ? CH_ACK_INFLIGHT : 1;
    }
    if (role == CH_PUB) {
        if (run->next_id >= CH_IDS)
            return; /* a very long soak: the killed publishers stay dead */
        c->k.id = run->next_id++;
        /* relaxed: the fork orders it before the child. */
        atomic_store_explicit(&run->sh->pubs[c->k.id].topic, (uint32_t)topic + 1,
                              memory_order_relaxed);
    }
    c->pid = tu_fork(fns[role], &c->k);
}

/* Print what the topics look like now (evidence for a failure). */
void ch_dump(const struct ch_run *run)
{
    for (int i = 0; i < CH_TOPICS; i++) {
        shmbus_slot_info si[CH_SLOTS];
        shmbus_topic_info ti;
        int n = shmbus_topic_slots_get(run->t[i], si, CH_SLOTS);

        shmbus_topic_info_get(run->t[i], &ti);
        print_error("%s: published %llu skipped %llu unblocked %llu overruns %llu reaped %llu "
                    "abandoned %llu evicted %llu, %d slots:\n",
                    ch_topic_names[i], (unsigned long long)ti.published,
                    (unsigned long long)ti.skipped, (unsigned long long)ti.unblocked,
                    (unsigned long long)ti.overruns, (unsigned long long)ti.reaped,
                    (unsigned long long)ti.abandoned, (unsigned long long)ti.evicted, n);
        for (int s = 0; s < n && s < CH_SLOTS; s++)
            print_error("  slot %u pid %u group %u position %llu received %llu lost %llu\n",
                        si[s].index, si[s].pid, si[s].group, (unsigned long long)si[s].position,
                        (unsigned long long)si[s].received, (unsigned long long)si[s].lost);
    }
    print_error("daemon pid %d (bounces: %u by SIGTERM, %u by SIGKILL); seed %llu "
                "(SHMBUS_CHAOS_SEED)\n",
                (int)run->d->pid, run->bounces[0], run->bounces[1], (unsigned long long)run->seed);
}

/* A child reported a failure: fail with its text. */
static void ch_check_failures(const struct ch_run *run)
{
    int64_t end = du_now_ms() + 1000;

    /* relaxed: see ch_fail(). */
    if (atomic_load_explicit(&run->sh->failures, memory_order_relaxed) == 0)
        return;
    /* acquire: pairs with the release in ch_fail(); the writer may have
     * been killed while writing, so wait only a little. */
    while (atomic_load_explicit(&run->sh->why_done, memory_order_acquire) == 0 && du_now_ms() < end)
        du_sleep_ms(10);
    ch_dump(run);
    fail_msg("%u failure(s) in children; first: %s",
             atomic_load_explicit(&run->sh->failures, memory_order_relaxed), run->sh->why);
}

/* A child that ended other than by our SIGKILL. */
static void ch_child_ended(const struct ch_run *run, const struct ch_child *c, int st)
{
    ch_check_failures(run);
    ch_dump(run);
    fail_msg("%s %s %s (pid %d) ended by itself: status %d", ch_topic_names[c->k.topic],
             c->k.sentinel ? "sentinel" : "killable", ch_role_names[c->k.role], (int)c->pid, st);
}

/* Children that ended by themselves, and the daemon. */
static void ch_check_alive(struct ch_run *run)
{
    struct ch_child *all[CH_CHURN + CH_SENTINELS];
    int n = 0, st;

    for (int i = 0; i < CH_CHURN; i++)
        all[n++] = &run->churn[i];
    for (int i = 0; i < CH_SENTINELS; i++)
        all[n++] = &run->sent[i];
    for (int i = 0; i < n; i++) {
        if (all[i]->pid > 0 && waitpid(all[i]->pid, &st, WNOHANG) == all[i]->pid) {
            ch_forget(all[i]->pid);
            ch_child_ended(run, all[i], WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        }
    }
    if (waitpid(run->d->pid, &st, WNOHANG) == run->d->pid) {
        run->d->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        run->d->pid = 0;
        ch_dump(run);
        fail_msg("shmbusd died during the chaos: status %d", run->d->status);
    }
}

/* The sentinels move: a message received and published within
 * CH_STALL_MS (on the reliable topic, of the daemon serving again). */
static void ch_check_stalls(struct ch_run *run)
{
    int64_t now = du_now_ms();

    for (int i = 0; i < CH_SENTINELS; i++) {
        const struct ch_kid *k = &run->sent[i].k;
        /* relaxed: monitoring. */
        int64_t last = atomic_load_explicit(&run->sh->sent[i].last_ms, memory_order_relaxed);
        int64_t since = ch_since(run->sh, k->topic, last);

        if (now - last > run->gap[i])
            run->gap[i] = now - last;
        if (since < 0 || now - since <= CH_STALL_MS)
            continue;
        ch_check_failures(run);
        ch_dump(run);
        fail_msg("%s: the sentinel %s has not %s for %lld ms", ch_topic_names[k->topic],
                 ch_role_names[k->role], k->role == CH_PUB ? "published" : "received anything",
                 (long long)(now - since));
    }
}

/* Topics a LIST may show: ours, the dead-letter topic and the daemon's
 * own (_shmbus.*). */
#define CH_LIST_MAX 8

/* Does @p bus's LIST show exactly both topics and the dead-letter topic,
 * besides the daemon's own? @return 0, or the LIST's error or -1. */
static int ch_list_ok(shmbus_bus *bus)
{
    shmbus_topic_entry e[CH_LIST_MAX];
    int n = shmbus_list(bus, NULL, e, CH_LIST_MAX), ours = 0;

    for (int i = 0; i < n; i++) {
        int known = strcmp(e[i].name, CH_DLQ) == 0;

        for (int t = 0; t < CH_TOPICS; t++)
            known += strcmp(e[i].name, ch_topic_names[t]) == 0;
        if (!known && strncmp(e[i].name, "_shmbus.", 8) != 0)
            return -1;
        ours += known;
    }
    return n < 0 ? n : ours == CH_TOPICS + 1 ? 0 : -1;
}

/* The daemon answers a LIST with both topics, once per CH_LIST_MS. */
static void ch_check_daemon_answers(struct ch_run *run)
{
    int rc;

    if (du_now_ms() - run->list_ms < CH_LIST_MS)
        return;
    rc = ch_list_ok(run->bus);
    if (rc != 0) {
        ch_dump(run);
        fail_msg("shmbus_list: %s; want both topics and %s", rc < -1 ? shmbus_strerror(rc) : "",
                 CH_DLQ);
    }
    run->list_ms = du_now_ms();
}

static void ch_watch(struct ch_run *run)
{
    ch_acks_read_dlq(&run->acks, run->sh);
    ch_check_failures(run);
    ch_check_alive(run);
    ch_check_stalls(run);
    ch_check_daemon_answers(run);
}

/* SIGKILL killable child @p i and reap it; @p respawn a replacement. */
static void ch_kill(struct ch_run *run, int i, int respawn)
{
    struct ch_child *c = &run->churn[i];
    enum ch_role role;
    int topic, st;

    ch_churn_role(i, &topic, &role);
    if (c->pid > 0) {
        kill(c->pid, SIGKILL);
        st = tu_wait(c->pid);
        if (st != 128 + SIGKILL)
            ch_child_ended(run, c, st);
        run->kills[topic][role]++;
        c->pid = 0;
        if (role == CH_ACKER)
            ch_acks_killed(&run->acks, run->sh, i - CH_CHURN_FIRST_ACKER);
    }
    if (respawn)
        ch_spawn(run, c, topic, role, 0);
}

/* The daemon serves (it just started): our connection is back and has
 * re-registered our topics (the very segments we map), and the bridge's
 * port goes to the remote subscribers. */
static void ch_serve(struct ch_run *run)
{
    int64_t end = du_now_ms() + CH_DAEMON_MS;
    shmbus_bridge_info bi;
    const char *colon;
    int rc;

    while ((rc = shmbus_bus_check(run->bus)) == SHMBUS_ERR_DAEMON_LOST && du_now_ms() < end)
        du_sleep_ms(5);
    if (rc == 0)
        rc = shmbus_bridge_stat(run->bus, 0, &bi, NULL, 0);
    if (rc < 0) {
        ch_dump(run);
        fail_msg("shmbusd (pid %d) does not serve: %s", (int)run->d->pid, shmbus_strerror(rc));
    }
    colon = strrchr(bi.listen, ':');
    if (colon == NULL || atoi(colon + 1) <= 0)
        fail_msg("the bridge listens on '%s'", bi.listen);
    /* relaxed: published by the release store of bridge_gen. */
    atomic_store_explicit(&run->sh->bridge_port, (uint32_t)atoi(colon + 1), memory_order_relaxed);
    /* release: pairs with the acquire loads in ch_remote_connect(); the
     * parent is the only writer of daemon_gen (relaxed load). */
    atomic_store_explicit(&run->sh->bridge_gen,
                          atomic_load_explicit(&run->sh->daemon_gen, memory_order_relaxed),
                          memory_order_release);
    /* relaxed, both: monitoring (ch_since()); back_ms first. */
    atomic_store_explicit(&run->sh->back_ms, du_now_ms(), memory_order_relaxed);
    atomic_store_explicit(&run->sh->down, 0, memory_order_relaxed);
}

/* No daemon for @p ms: kill (and replace) 0-2 children meanwhile, whose
 * slots, claims and holds wait for the next daemon; the lossy topic's
 * sentinels are watched all along (ch_since()). */
static void ch_without_daemon(struct ch_run *run, unsigned ms)
{
    unsigned kills = ch_between(&run->rng, 0, 2);
    int64_t start = du_now_ms();

    for (unsigned i = 0; i <= kills; i++) {
        while (du_now_ms() - start < (int64_t)(ms * (i + 1) / (kills + 1))) {
            du_sleep_ms(10);
            ch_check_failures(run);
            ch_check_stalls(run);
        }
        if (i < kills)
            ch_kill(run, (int)(ch_rand(&run->rng) % CH_CHURN), 1);
    }
}

/* With no daemon since @p gone_ms for CH_FLOW_MS or more, the lossy
 * topic's sentinels published and received meanwhile: the data path does
 * not need the daemon. */
static void ch_check_flow(const struct ch_run *run, int64_t gone_ms)
{
    if (du_now_ms() - gone_ms < CH_FLOW_MS)
        return;
    for (int role = CH_PUB; role <= CH_SUB; role++) {
        /* relaxed: monitoring. */
        int64_t last = atomic_load_explicit(&run->sh->sent[ch_sidx(role, CH_LOSSY)].last_ms,
                                            memory_order_relaxed);

        if (last > gone_ms)
            continue;
        ch_dump(run);
        fail_msg("%s: the sentinel %s did nothing in the %lld ms without a daemon",
                 ch_topic_names[CH_LOSSY], ch_role_names[role], (long long)(du_now_ms() - gone_ms));
    }
}

/* Stop the daemon (SIGTERM and SIGKILL in turn), go on killing without
 * one for a while, start a new one on the same bus and serve again. */
static void ch_bounce(struct ch_run *run)
{
    unsigned kill9 = (run->bounces[0] + run->bounces[1] + run->kill9_first) % 2;
    int want = kill9 ? 128 + SIGKILL : 0, st;
    int64_t gone_ms;

    /* relaxed: polled (ch_since()); the release below orders it too. */
    atomic_store_explicit(&run->sh->down, 1, memory_order_relaxed);
    /* release: pairs with the acquire loads in ch_remote_closed(). */
    atomic_fetch_add_explicit(&run->sh->daemon_gen, 1, memory_order_release);
    st = du_stop_sig(run->d, kill9 ? SIGKILL : SIGTERM);
    gone_ms = du_now_ms();
    if (st != want) {
        ch_dump(run);
        fail_msg("shmbusd stopped by %s: status %d, want %d", kill9 ? "SIGKILL" : "SIGTERM", st,
                 want);
    }
    ch_without_daemon(run, ch_between(&run->rng, CH_DOWN_MIN_MS, CH_DOWN_MAX_MS));
    ch_check_flow(run, gone_ms);
    if (du_launch(run->d, run->extra) < 0) {
        ch_dump(run);
        fail_msg("no new shmbusd after a bounce");
    }
    ch_serve(run);
    run->bounces[kill9]++;
    if (du_now_ms() - gone_ms > run->away_ms)
        run->away_ms = du_now_ms() - gone_ms;
    run->list_ms = 0; /* the new daemon lists both topics: it adopted them */
    ch_check_daemon_answers(run);
}

/* Wait until a sentinel says it is ready. */
static void ch_await_ready(struct ch_run *run, _Atomic uint32_t *flag, const char *what)
{
    int64_t end = du_now_ms() + CH_READY_MS;

    /* relaxed: a flag; what it stands for is checked through the daemon. */
    while (atomic_load_explicit(flag, memory_order_relaxed) == 0) {
        ch_check_failures(run);
        if (du_now_ms() > end)
            fail_msg("the %s did not start within %d ms", what, CH_READY_MS);
        du_sleep_ms(5);
    }
}

/* Start sentinel @p role of @p topic and wait until it is ready. */
static void ch_start_sentinel(struct ch_run *run, enum ch_role role, int topic)
{
    int i = ch_sidx(role, topic);

    ch_spawn(run, &run->sent[i], topic, role, 1);
    if (role == CH_PUB) {
        /* relaxed: the sentinel subscriber reads it after the end. */
        atomic_store_explicit(&run->sh->sent[i].id, run->sent[i].k.id, memory_order_relaxed);
    }
    ch_await_ready(run, &run->sh->sent[i].ready, ch_role_names[role]);
}

/* Our connection, both topics, the bridge's port, the sentinel readers
 * (before anyone publishes: they see every message, and the group and the
 * bridge's slot start at seq 0), the sentinel publishers, then the
 * killable children. */
static void ch_start(struct ch_run *run)
{
    for (int i = 0; i < CH_TOPICS; i++) {
        shmbus_topic_opts o = {.mode = i == CH_RELIABLE ? SHMBUS_RELIABLE : SHMBUS_LOSSY,
                               .capacity = CH_CAPACITY,
                               .max_msg_size = CH_MSG_MAX,
                               .max_subscribers = CH_SLOTS,
                               .max_publishers = CH_SLOTS};

        assert_shmbus_ok(shmbus_open(run->bus, ch_topic_names[i], &o, 0, &run->t[i]));
    }
    ch_acks_open(&run->acks, run->bus);
    ch_serve(run);
    for (int i = 0; i < CH_TOPICS; i++)
        ch_start_sentinel(run, CH_SUB, i);
    ch_start_sentinel(run, CH_MEMBER, CH_RELIABLE);
    ch_start_sentinel(run, CH_ACKER, CH_RELIABLE);
    ch_start_sentinel(run, CH_REMOTE, CH_RELIABLE);
    for (int i = 0; i < CH_TOPICS; i++)
        ch_start_sentinel(run, CH_PUB, i);
    for (int i = 0; i < CH_CHURN; i++)
        ch_kill(run, i, 1);
}

/* Kill a random killable child every 50-300 ms for @p seconds, and bounce
 * the daemon every 3-6 s (not in the last 1.5 s). */
static void ch_chaos(struct ch_run *run, unsigned seconds)
{
    int64_t end = du_now_ms() + (int64_t)seconds * 1000;

    run->bounce_ms = du_now_ms() + ch_between(&run->rng, CH_BOUNCE_MIN_MS, CH_BOUNCE_MAX_MS);
    while (du_now_ms() < end) {
        du_sleep_ms(ch_between(&run->rng, CH_KILL_MIN_MS, CH_KILL_MAX_MS));
        ch_watch(run);
        if (du_now_ms() >= run->bounce_ms && end - du_now_ms() > CH_BOUNCE_MIN_MS / 2) {
            ch_bounce(run);
            run->bounce_ms =
                du_now_ms() + ch_between(&run->rng, CH_BOUNCE_MIN_MS, CH_BOUNCE_MAX_MS);
            continue;
        }
        ch_kill(run, (int)(ch_rand(&run->rng) % CH_CHURN), 1);
    }
    ch_watch(run);
}

/* Wait for a sentinel told to finish; it must exit 0. */
static void ch_reap_sentinel(struct ch_run *run, struct ch_child *c)
{
    int st = du_wait_ms(c->pid, CH_EXIT_MS + CH_DRAIN_MS);

    if (st != 0) {
        ch_check_failures(run);
        ch_dump(run);
        fail_msg("%s sentinel %s: status %d (-1: did not finish)", ch_topic_names[c->k.topic],
                 ch_role_names[c->k.role], st);
    }
    c->pid = 0;
}

/* After the last kill each sentinel publisher claims again: the last seq
 * of each topic is then its message (index count + 1 is claimed after the
 * kills, since index count was not done before them). */
static void ch_await_last_publish(struct ch_run *run)
{
    for (int i = 0; i < CH_TOPICS; i++) {
        _Atomic uint64_t *count = &run->sh->sent[ch_sidx(CH_PUB, i)].count;
        /* relaxed, both: monitoring; the publisher is reaped before its
         * messages are counted. */
        uint64_t c0 = atomic_load_explicit(count, memory_order_relaxed);
        int64_t end = du_now_ms() + CH_EXIT_MS;

        while (atomic_load_explicit(count, memory_order_relaxed) < c0 + 2) {
            ch_watch(run);
            if (du_now_ms() > end)
                fail_msg("%s: the sentinel publisher is stuck at %llu", ch_topic_names[i],
                         (unsigned long long)c0);
            du_sleep_ms(5);
        }
    }
}

static shmbus_topic_entry ch_entry(const struct ch_run *run, int topic)
{
    shmbus_topic_entry e[CH_LIST_MAX];
    int n = shmbus_list(run->bus, NULL, e, CH_LIST_MAX);

    assert_shmbus_ok(n);
    for (int i = 0; i < n; i++)
        if (strcmp(e[i].name, ch_topic_names[topic]) == 0)
            return e[i];
    fail_msg("topic %s not listed", ch_topic_names[topic]);
    return e[0];
}

/* Does @p topic show exactly the slots of the sentinel readers (with
 * @p readers; else none) and no publisher, in the segment and in the
 * daemon's books? The readers: the sentinel subscriber, and on the
 * reliable topic the sentinel members (plain and acknowledging) and the
 * bridge's slot (the daemon's, not in its books) for the sentinel remote
 * subscriber. */
static int ch_slots_are(const struct ch_run *run, int topic, int readers)
{
    shmbus_slot_info si[CH_SLOTS];
    shmbus_topic_entry e = ch_entry(run, topic);
    int n = shmbus_topic_slots_get(run->t[topic], si, CH_SLOTS), nw = 0, books = 0, found;
    uint32_t want[4];

    if (readers) {
        want[nw++] = (uint32_t)run->sent[ch_sidx(CH_SUB, topic)].pid;
        if (topic == CH_RELIABLE) {
            want[nw++] = (uint32_t)run->sent[CH_S_MEMBER].pid;
            want[nw++] = (uint32_t)run->sent[CH_S_ACKER].pid;
            want[nw++] = (uint32_t)run->d->pid;
        }
        books = topic == CH_RELIABLE ? 3 : 1;
    }
    if (n != nw || e.subscribers != (uint32_t)books || e.publishers != 0)
        return 0;
    for (int i = 0; i < nw; i++) {
        found = 0;
        for (int s = 0; s < n; s++)
            found += si[s].pid == want[i];
        if (found != 1)
            return 0;
    }
    return 1;
}

/* Within CH_SETTLE_MS every slot of the dead is free again. */
static void ch_expect_slots(const struct ch_run *run, int readers)
{
    int64_t end = du_now_ms() + CH_SETTLE_MS;

    for (int i = 0; i < CH_TOPICS; i++) {
        while (!ch_slots_are(run, i, readers) && du_now_ms() < end)
            du_sleep_ms(10);
        if (!ch_slots_are(run, i, readers)) {
            shmbus_topic_entry e = ch_entry(run, i);

            ch_dump(run);
            fail_msg("%s: %d slots in use, daemon lists %u subscribers and %u publishers; want "
                     "%s and no publisher",
                     ch_topic_names[i], shmbus_topic_slots_get(run->t[i], NULL, 0), e.subscribers,
                     e.publishers, readers ? "the sentinel readers' and the bridge's" : "none");
        }
    }
}

/* Stop everything in order, checking at each step. */
static void ch_finish(struct ch_run *run)
{
    shmbus_topic_info ti;

    for (int i = 0; i < CH_CHURN; i++)
        ch_kill(run, i, 0);
    ch_watch(run);
    ch_await_last_publish(run);
    /* relaxed: polled by the sentinel publishers. */
    atomic_store_explicit(&run->sh->stop, 1, memory_order_relaxed);
    for (int i = 0; i < CH_TOPICS; i++)
        ch_reap_sentinel(run, &run->sent[ch_sidx(CH_PUB, i)]);
    ch_expect_slots(run, 1);
    assert_shmbus_ok(shmbus_topic_info_get(run->t[CH_RELIABLE], &ti));
    /* relaxed, both: published by the release store of drain. */
    atomic_store_explicit(&run->sh->tail, ti.published, memory_order_relaxed);
    atomic_store_explicit(&run->sh->nids, run->next_id, memory_order_relaxed);
    /* release: pairs with the acquire in ch_draining(). */
    atomic_store_explicit(&run->sh->drain, 1, memory_order_release);
    for (int i = CH_TOPICS; i < CH_SENTINELS; i++)
        ch_reap_sentinel(run, &run->sent[i]);
    ch_check_failures(run);
    ch_expect_slots(run, 0);
}

/* The reliable topic's tail. */
static uint64_t ch_published(const struct ch_run *run)
{
    shmbus_topic_info ti;

    assert_shmbus_ok(shmbus_topic_info_get(run->t[CH_RELIABLE], &ti));
    return ti.published;
}

/* The daemon is still there and serves a new client. */
static void ch_check_daemon(const struct ch_run *run)
{
    shmbus_bus *bus = NULL;

    assert_int_equal(kill(run->d->pid, 0), 0);
    assert_int_equal(waitpid(run->d->pid, NULL, WNOHANG), 0);
    assert_shmbus_ok(shmbus_connect(run->d->bus, &bus));
    assert_int_equal(ch_list_ok(bus), 0);
    shmbus_close(bus);
}

/* Shared mappings for the children: the state and the per-seq map. */
static void ch_map(struct ch_run *run)
{
    run->sh =
        mmap(NULL, sizeof(*run->sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(run->sh != MAP_FAILED);
    run->seqs = mmap(NULL, CH_SEQS, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(run->seqs != MAP_FAILED);
    run->sh->seqs = run->seqs;
    run->sh->acks = ak_ledger_map(CH_SEQS);
}

/* The daemon's arguments, at every start: its bridge on a port the kernel
 * picks (ch_serve() asks which), and a connection limit that keeps it from
 * warning about descriptors. */
static const char *const ch_daemon_args[] = {"--bridge", "127.0.0.1:0", "--bridge-max-conns", "64",
                                             NULL};

static void test_chaos_kill9_never_stalls(void **state)
{
    struct ch_run run = {.d = *state, .extra = ch_daemon_args};
    unsigned seconds = ch_env("SHMBUS_CHAOS_SECONDS", CH_SECONDS);
    struct ch_seqsum sum;

    run.seed = ch_env("SHMBUS_CHAOS_SEED", (unsigned)time(NULL) ^ (unsigned)getpid());
    run.rng = run.seed;
    run.kill9_first = (unsigned)(ch_rand(&run.rng) % 2);
    print_message("chaos: %u s, seed %llu, bus %s\n", seconds, (unsigned long long)run.seed,
                  run.d->bus);
    ch_map(&run);
    assert_shmbus_ok(shmbus_connect(run.d->bus, &run.bus));
    ch_start(&run);
    ch_chaos(&run, seconds);
    ch_finish(&run);
    ch_check_reliable(&run);
    ch_check_lossy(&run);
    ch_check_seqs(&run, &sum);
    ch_check_group(&run, &sum);
    ch_check_remote(&run);
    ch_acks_account(&run.acks, run.sh, run.d->bus, ch_published(&run), run.bounces[1]);
    ch_check_daemon(&run);
    ch_summary(&run, seconds, &sum);
    ch_acks_close(&run.acks);
    for (int i = 0; i < CH_TOPICS; i++)
        shmbus_topic_destroy(run.t[i]);
    shmbus_close(run.bus);
    ak_ledger_unmap(run.sh->acks, CH_SEQS);
    munmap(run.seqs, CH_SEQS);
    munmap(run.sh, sizeof(*run.sh));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_chaos_kill9_never_stalls, du_setup,
                                                 du_teardown, (void *)ch_daemon_args),
    };

    tu_init();
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("chaos", tests, NULL, NULL);
}
