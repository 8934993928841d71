/*
 * Who may do what on a bus (docs/design.md "Threat model"), tried as
 * another local user would: user nobody plants segments in /dev/shm. The
 * daemon serves only files of its own uid that nobody else can write, and
 * a name taken by someone else never blocks a topic. Every test runs its
 * own daemon (daemonutil.h); the planting runs in a child that drops to
 * nobody's uid. Also what a client's control calls do when the daemon
 * hangs: they end at a deadline, whatever signals arrive, and a slot
 * asked for in vain is not left taken.
 */
#include "daemonutil.h"

#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "registry/admin.h"

#define WAIT_NS 10000000000ll /* only a hang reaches it */

/* nobody's uid and gid; the test is skipped without root or without the
 * user (it cannot act as another user then). */
static void nobody_ids(uid_t *uid, gid_t *gid)
{
    struct passwd *pw = getpwnam("nobody");

    if (geteuid() != 0 || pw == NULL)
        skip();
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
}

/* Become nobody in a child. @return 0 or -errno. */
static int become_nobody(void)
{
    uid_t uid;
    gid_t gid;
    struct passwd *pw = getpwnam("nobody");

    if (pw == NULL)
        return -ENOENT;
    uid = pw->pw_uid;
    gid = pw->pw_gid;
    if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
        return -errno;
    return 0;
}

/* Child: as nobody, create segment arg with a valid header, mode 0666
 * (so that the planter could read whatever another user publishes). */
static int plant_as_nobody(void *arg)
{
    shmbus_topic_opts o = {.capacity = 16, .max_msg_size = 64, .perm = 0666};
    shmbus_topic *t;

    if (become_nobody() < 0 || shmbus_topic_create(arg, &o, &t) < 0)
        return 1;
    shmbus_topic_destroy(t);
    return 0;
}

static void plant(const char *seg)
{
    pid_t kid = tu_fork(plant_as_nobody, (void *)seg);

    assert_int_equal(du_wait_ms(kid, DU_READY_MS), 0);
}

/* Restart the daemon with --log-level info and its log in @p path. */
static void launch_logged(struct du_daemon *d, char *path, size_t cap)
{
    const char *info[] = {"--log-level", "info", NULL};
    int fd;

    snprintf(path, cap, "%s/daemon.log", d->dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(du_launch_out(d, info, fd), 0);
    close(fd);
}

static void assert_mode_group(const char *path, mode_t mode, gid_t gid)
{
    struct stat st;

    assert_int_equal(lstat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, mode);
    assert_int_equal(st.st_gid, gid);
}

static int seg_exists(const char *seg)
{
    char path[SHMBUS_NAME_MAX + 16];

    snprintf(path, sizeof(path), "/dev/shm/%s", seg);
    return access(path, F_OK) == 0;
}

/* Publish @p text on topic @p name through the daemon and receive it. */
static void roundtrip(shmbus_bus *bus, const char *name, const char *text)
{
    shmbus_topic_opts o = {.capacity = 16, .max_msg_size = 64};
    shmbus_topic *t;
    shmbus_pub *pub;
    shmbus_sub *sub;
    char buf[64];

    assert_shmbus_ok(shmbus_open(bus, name, &o, 0, &t));
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub));
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(shmbus_publish(pub, text, strlen(text), 0));
    assert_int_equal(shmbus_recv(sub, buf, sizeof(buf), NULL, WAIT_NS), (int)strlen(text));
    assert_memory_equal(buf, text, strlen(text));
    shmbus_pub_destroy(pub);
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(t);
}

/*
 * Files in /dev/shm under the bus's segment names that the daemon did not
 * create: nobody's with a valid header and mode 0666, one of the daemon's
 * uid that anyone may write, a symbolic link to a segment. None is taken
 * over at start (each is logged; another user's file and the link are
 * removed, as a root daemon may, and the daemon uid's own is left to its
 * maker), and their topics work afterwards.
 */
static void test_trust_foreign_segments_not_adopted(void **state)
{
    struct du_daemon *d = *state;
    char planted[SHMBUS_NAME_MAX + 1], open_seg[SHMBUS_NAME_MAX + 1], link_seg[SHMBUS_NAME_MAX + 1];
    char path[PATH_MAX], target[PATH_MAX], log[PATH_MAX];
    shmbus_topic_opts o = {.capacity = 16, .max_msg_size = 64, .perm = 0666};
    shmbus_topic_entry e;
    shmbus_topic *mine;
    shmbus_bus *bus;
    uid_t uid;
    gid_t gid;

    nobody_ids(&uid, &gid);
    assert_int_equal(du_stop(d), 0);
    snprintf(planted, sizeof(planted), "shmbus.%s.planted", d->bus);
    snprintf(open_seg, sizeof(open_seg), "shmbus.%s.open", d->bus);
    snprintf(link_seg, sizeof(link_seg), "shmbus.%s.link", d->bus);
    plant(planted);
    assert_shmbus_ok(shmbus_topic_create(open_seg, &o, &mine));
    shmbus_topic_destroy(mine);
    snprintf(path, sizeof(path), "/dev/shm/%s", link_seg);
    snprintf(target, sizeof(target), "/dev/shm/%s", open_seg);
    assert_int_equal(symlink(target, path), 0);

    launch_logged(d, log, sizeof(log));
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_int_equal(shmbus_list(bus, NULL, &e, 1), 0);
    assert_int_equal(du_log_wait(log, "another user's file", 1), 1);
    assert_int_equal(du_log_wait(log, "others may read or write it", 1), 1);
    assert_int_equal(du_log_wait(log, "a symbolic link", 1), 1);
    assert_false(seg_exists(planted));
    assert_true(seg_exists(open_seg)); /* ours: left to whoever opened it up */
    assert_false(seg_exists(link_seg));
    roundtrip(bus, "planted", "after");
    roundtrip(bus, "link", "after");
    roundtrip(bus, "open", "after"); /* under another name */
    shmbus_close(bus);
    assert_shmbus_ok(shmbus_topic_unlink(open_seg));
}

/* The segment of topic @p topic of bus @p bus of another generation than
 * the first (shmbus.BUS..GEN.TOPIC), if any: its name into @p out. */
static int other_generation(const char *bus, const char *topic, char *out, size_t cap)
{
    char prefix[SHMBUS_NAME_MAX + 1], suffix[SHMBUS_NAME_MAX + 1];
    DIR *dir = opendir("/dev/shm");
    struct dirent *e;
    int n = 0;

    assert_non_null(dir);
    snprintf(prefix, sizeof(prefix), "shmbus.%s..", bus);
    snprintf(suffix, sizeof(suffix), ".%s", topic);
    while ((e = readdir(dir)) != NULL) {
        size_t len = strlen(e->d_name);

        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && len > strlen(suffix) &&
            strcmp(e->d_name + len - strlen(suffix), suffix) == 0) {
            snprintf(out, cap, "%s", e->d_name);
            n++;
        }
    }
    closedir(dir);
    return n;
}

/*
 * nobody squats the segment name of a topic the daemon has not created
 * yet, with a valid header and mode 0666, hoping to read what is
 * published. The daemon creates the topic under another name, never
 * hands out the planted one, and a restarted daemon takes the topic over
 * from that name while the planted file is not taken (and is removed).
 */
static void test_trust_squatted_segment_name(void **state)
{
    struct du_daemon *d = *state;
    char planted[SHMBUS_NAME_MAX + 1], gen[SHMBUS_NAME_MAX + 1];
    shmbus_topic_opts o = {.capacity = 16, .max_msg_size = 64};
    shmbus_topic_info info;
    shmbus_topic *spy, *t;
    shmbus_topic_entry e;
    shmbus_pub *pub;
    shmbus_bus *bus;
    uid_t uid;
    gid_t gid;

    nobody_ids(&uid, &gid);
    snprintf(planted, sizeof(planted), "shmbus.%s.squat", d->bus);
    plant(planted);
    assert_shmbus_ok(shmbus_topic_attach(planted, &spy));

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    roundtrip(bus, "squat", "secret");
    assert_shmbus_ok(shmbus_topic_info_get(spy, &info));
    assert_int_equal(info.published, 0);
    assert_int_equal(other_generation(d->bus, "squat", gen, sizeof(gen)), 1);

    /* Kept through a crash of the daemon by a live publisher, taken over
     * from its name by the next one; the planted file is not. */
    assert_shmbus_ok(shmbus_open(bus, "squat", &o, 0, &t));
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    du_stop_sig(d, SIGKILL);
    assert_int_equal(du_launch(d, NULL), 0);
    shmbus_close(bus);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_int_equal(shmbus_list(bus, NULL, &e, 1), 1);
    assert_string_equal(e.name, "squat");
    assert_false(seg_exists(planted));
    assert_true(seg_exists(gen));
    roundtrip(bus, "squat", "again");
    assert_shmbus_ok(shmbus_topic_info_get(spy, &info));
    assert_int_equal(info.published, 0);
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(t);
    shmbus_topic_destroy(spy);
    shmbus_close(bus);
}

/* Receive @p text on @p sub within WAIT_NS. */
static void expect_msg(shmbus_sub *sub, const char *text)
{
    char buf[64];

    assert_int_equal(shmbus_recv(sub, buf, sizeof(buf), NULL, WAIT_NS), (int)strlen(text));
    assert_memory_equal(buf, text, strlen(text));
}

/*
 * A process of the daemon's uid created a topic's segment by name (the
 * daemonless API) before any client opened the topic through the bus:
 * the daemon serves that segment rather than a second one, so both kinds
 * of user share the topic.
 */
static void test_trust_first_name_ours_served(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.capacity = 16, .max_msg_size = 64, .perm = 0600};
    shmbus_topic_opts via_bus = {.capacity = 16, .max_msg_size = 64};
    char seg[SHMBUS_NAME_MAX + 1], gen[SHMBUS_NAME_MAX + 1];
    shmbus_topic *direct, *t;
    shmbus_pub *pub;
    shmbus_sub *sub;
    shmbus_bus *bus;

    snprintf(seg, sizeof(seg), "shmbus.%s.direct", d->bus);
    assert_shmbus_ok(shmbus_topic_create(seg, &o, &direct));
    assert_shmbus_ok(shmbus_pub_create(direct, &pub));
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "direct", &via_bus, 0, &t));
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub));
    assert_shmbus_ok(shmbus_publish(pub, "shared", 6, 0));
    expect_msg(sub, "shared");
    assert_int_equal(other_generation(d->bus, "direct", gen, sizeof(gen)), 0);
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(direct);
}

/*
 * Two segments of one topic that the daemon may serve, found at start: a
 * generation it made while the first name was unusable, and a file of its
 * uid at the first name made after it (so listed first by tmpfs). The
 * generation is served whatever the listing order (its clients used it),
 * the other is left to whoever opens it by name, and the log says so.
 */
static void test_trust_second_segment_chosen(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts open = {.capacity = 16, .max_msg_size = 64, .perm = 0666};
    shmbus_topic_opts o = {.capacity = 16, .max_msg_size = 64, .perm = 0600};
    shmbus_topic_opts via_bus = {.capacity = 16, .max_msg_size = 64};
    char seg[SHMBUS_NAME_MAX + 1], gen[SHMBUS_NAME_MAX + 1], log[PATH_MAX];
    shmbus_topic *direct, *t, *mine;
    shmbus_sub *sub;
    shmbus_bus *bus;

    snprintf(seg, sizeof(seg), "shmbus.%s.two", d->bus);
    assert_shmbus_ok(shmbus_topic_create(seg, &open, &direct)); /* 0666: not served */
    shmbus_topic_destroy(direct);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "two", &via_bus, 0, &t));
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    assert_int_equal(other_generation(d->bus, "two", gen, sizeof(gen)), 1);
    assert_shmbus_ok(shmbus_topic_unlink(seg));
    assert_shmbus_ok(shmbus_topic_create(seg, &o, &direct));
    shmbus_topic_destroy(direct);

    du_stop_sig(d, SIGKILL); /* the generation outlives it */
    launch_logged(d, log, sizeof(log));
    assert_shmbus_ok(shmbus_topic_attach(gen, &mine));
    assert_shmbus_ok(shmbus_sub_create(mine, NULL, &sub));
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    roundtrip(bus, "two", "served");
    expect_msg(sub, "served");
    assert_int_equal(du_log_wait(log, "a second segment of topic two", 1), 1);
    assert_true(seg_exists(seg));
    assert_shmbus_ok(shmbus_topic_unlink(seg)); /* left to its maker: us */
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(mine);
    shmbus_close(bus);
}

/*
 * A hard link of a segment under another topic's name would have the
 * daemon serve one file as two topics: a restarted daemon serves neither
 * name, says why, and removes neither.
 */
static void test_trust_hard_link_not_served(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.capacity = 16, .max_msg_size = 64};
    char seg[PATH_MAX], alias[PATH_MAX], log[PATH_MAX];
    shmbus_topic_entry e[2];
    shmbus_topic *t;
    shmbus_bus *bus;

    snprintf(seg, sizeof(seg), "/dev/shm/shmbus.%s.linked", d->bus);
    snprintf(alias, sizeof(alias), "/dev/shm/shmbus.%s.alias", d->bus);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "linked", &o, 0, &t));
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    assert_int_equal(link(seg, alias), 0);
    du_stop_sig(d, SIGKILL);
    launch_logged(d, log, sizeof(log));
    assert_int_equal(du_log_wait(log, "(hard links)", 2), 2);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_int_equal(shmbus_list(bus, NULL, e, 2), 0);
    shmbus_close(bus);
    assert_int_equal(unlink(alias), 0);
    assert_int_equal(unlink(seg), 0);
}

/* Point the bus at runtime directory @p run (SHMBUS_RUNTIME_DIR) and
 * resolve the daemon's socket there. */
static void use_runtime_dir(struct du_daemon *d, const char *run)
{
    assert_int_equal(setenv("SHMBUS_RUNTIME_DIR", run, 1), 0);
    assert_shmbus_ok(shmbus_bus_resolve(d->bus, NULL, d->sock, sizeof(d->sock)));
}

/* Start a daemon that must refuse to start: its exit status, and in
 * @p log its stderr. */
static int launch_refused(struct du_daemon *d, const char *log, const char *const *extra)
{
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    pid_t pid;

    assert_true(fd >= 0);
    pid = du_spawn(d, extra, fd);
    close(fd);
    assert_true(pid > 0);
    return du_wait_ms(pid, DU_READY_MS);
}

/*
 * The socket and lock live in a runtime directory that must be the
 * daemon's and writable by nobody else: one another user made, one that
 * others may write, or a link there is refused with a message saying so,
 * and the daemon starts once the directory is sound.
 */
static void test_trust_runtime_dir_checked(void **state)
{
    struct du_daemon *d = *state;
    char run[PATH_MAX], log[PATH_MAX], other[PATH_MAX];
    uid_t uid;
    gid_t gid;

    nobody_ids(&uid, &gid);
    assert_int_equal(du_stop(d), 0);
    snprintf(run, sizeof(run), "%s/run", d->dir);
    snprintf(log, sizeof(log), "%s/daemon.log", d->dir);
    snprintf(other, sizeof(other), "%s/other", d->dir);
    use_runtime_dir(d, run);
    assert_int_equal(mkdir(run, 0700), 0);

    assert_int_equal(chown(run, uid, gid), 0);
    assert_int_equal(launch_refused(d, log, NULL), 1);
    assert_int_equal(du_log_wait(log, "it belongs to another user", 1), 1);

    assert_int_equal(chown(run, 0, 0), 0);
    assert_int_equal(chmod(run, 0777), 0);
    assert_int_equal(launch_refused(d, log, NULL), 1);
    assert_int_equal(du_log_wait(log, "group or others may write it", 1), 1);

    assert_int_equal(rename(run, other), 0);
    assert_int_equal(symlink(other, run), 0);
    assert_int_equal(launch_refused(d, log, NULL), 1);
    assert_int_equal(du_log_wait(log, "not a directory", 1), 1);

    assert_int_equal(unlink(run), 0);
    assert_int_equal(rmdir(other), 0);
    assert_int_equal(du_launch(d, NULL), 0);
}

/*
 * A directory that exists is used as it is, never changed: given /run (or
 * any shared directory of its uid) by mistake, a daemon that let other
 * uids in or had a --group would lock everyone else out of it. It says
 * when the peers it lets in cannot reach the socket.
 */
static void test_trust_runtime_dir_kept(void **state)
{
    struct du_daemon *d = *state;
    const char *opts[] = {"--allow-uid", "nobody", "--group", "nogroup", NULL};
    char run[PATH_MAX], log[PATH_MAX];
    uid_t uid;
    gid_t gid;
    int fd;

    nobody_ids(&uid, &gid);
    assert_int_equal(du_stop(d), 0);
    snprintf(run, sizeof(run), "%s/shared", d->dir);
    snprintf(log, sizeof(log), "%s/daemon.log", d->dir);
    use_runtime_dir(d, run);
    assert_int_equal(mkdir(run, 0755), 0);
    assert_int_equal(chmod(run, 0755), 0);
    fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(du_launch_out(d, opts, fd), 0);
    close(fd);
    assert_mode_group(run, 0755, 0);
    assert_int_equal(du_stop(d), 0);

    assert_int_equal(chmod(run, 0700), 0);
    fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(du_launch_out(d, opts, fd), 0);
    close(fd);
    assert_mode_group(run, 0700, 0);
    assert_int_equal(du_log_wait(log, "cannot reach the socket", 1), 1);
}

/* fs.protected_regular as it was before a test set it, or -1. */
static int trust_protected_regular = -1;

/* Set fs.protected_regular to @p v if we may (trust_teardown() restores
 * it). */
static void set_protected_regular(int v)
{
    const char *path = "/proc/sys/fs/protected_regular";
    FILE *f = fopen(path, "r");
    int old;

    if (f == NULL)
        return;
    if (fscanf(f, "%d", &old) != 1)
        old = -1;
    fclose(f);
    f = old >= 0 ? fopen(path, "w") : NULL;
    if (f == NULL)
        return; /* read-only /proc/sys (a container): as the host has it */
    if (trust_protected_regular < 0)
        trust_protected_regular = old;
    fprintf(f, "%d\n", v);
    fclose(f);
}

/* A directory outside the test's own (removed at teardown, also after a
 * failure: trust_teardown()). */
static char trust_extra_dir[PATH_MAX - 16]; /* room for /shmbus below it */

static int trust_teardown(void **state)
{
    struct du_daemon *d = *state;

    du_stop(d); /* it removes its socket and lock from the directory first */
    if (trust_extra_dir[0] != '\0')
        du_remove_dir(trust_extra_dir);
    trust_extra_dir[0] = '\0';
    if (trust_protected_regular >= 0) {
        set_protected_regular(trust_protected_regular);
        trust_protected_regular = -1;
    }
    return du_teardown(state);
}

struct squatter {
    char lock[PATH_MAX]; /* the bus-wide lock's name in /dev/shm */
    int ready;
};

/* Child: as nobody, hold a lock on a file at the bus's /dev/shm lock
 * name; stay. */
static int squat_run(void *arg)
{
    const struct squatter *q = arg;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int fd;

    if (become_nobody() < 0)
        return 1;
    fd = open(q->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || fcntl(fd, F_OFD_SETLK, &fl) < 0)
        return 1;
    du_signal(q->ready);
    pause();
    return 0;
}

/*
 * nobody squats the bus-wide lock's name in /dev/shm (locked, too). It does
 * not block the bus: a root daemon removes the planted lock and takes it,
 * also with fs.protected_regular (stock distributions), under which the
 * kernel refuses even root an O_CREAT open of another user's file there.
 */
static void test_trust_squatted_lock(void **state)
{
    struct du_daemon *d = *state;
    struct squatter q;
    shmbus_bus *bus;
    uid_t uid;
    gid_t gid;
    struct stat st;

    nobody_ids(&uid, &gid);
    assert_int_equal(du_stop(d), 0);
    set_protected_regular(1);
    snprintf(q.lock, sizeof(q.lock), "/dev/shm/shmbus-%s.lock", d->bus);
    du_fork_ready(squat_run, &q, &q.ready);
    assert_int_equal(du_launch(d, NULL), 0);
    assert_int_equal(stat(q.lock, &st), 0);
    assert_int_equal(st.st_uid, geteuid()); /* replaced, and ours */
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    roundtrip(bus, "t", "through");
    shmbus_close(bus);
}

/*
 * A second daemon of the bus started with another runtime directory (as
 * the same uid would be with and without XDG_RUNTIME_DIR) is refused: the
 * bus-wide lock in /dev/shm excludes it, and it leaves the first one's
 * files alone.
 */
static void test_trust_second_daemon_other_dir_refused(void **state)
{
    struct du_daemon *d = *state, other = *d;
    char run[PATH_MAX], log[PATH_MAX];
    shmbus_bus *bus;

    snprintf(run, sizeof(run), "%s/other", d->dir);
    snprintf(log, sizeof(log), "%s/other.log", d->dir);
    use_runtime_dir(&other, run);
    assert_int_equal(launch_refused(&other, log, NULL), 1);
    assert_int_equal(du_log_wait(log, "is already served by shmbusd pid", 1), 1);
    assert_int_equal(unsetenv("SHMBUS_RUNTIME_DIR"), 0);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    shmbus_close(bus);
}

/* Make @p run a runtime directory of nobody's, mode @p mode, group @p g. */
static void nobody_run_dir(struct du_daemon *d, const char *run, gid_t g, mode_t mode)
{
    assert_int_equal(chmod(d->dir, 0711), 0); /* nobody must reach it */
    if (mkdir(run, mode) < 0)
        assert_int_equal(errno, EEXIST);
    assert_int_equal(chown(run, d->uid, g), 0);
    assert_int_equal(chmod(run, mode), 0);
}

/*
 * A non-root daemon given a --group its user is not a member of cannot
 * give the bus's files to it: it refuses to start, naming the membership
 * it needs.
 */
static void test_trust_group_not_member(void **state)
{
    struct du_daemon *d = *state;
    const char *group_root[] = {"--group", "0", NULL};
    char run[PATH_MAX], log[PATH_MAX];

    nobody_ids(&d->uid, &d->gid);
    assert_int_equal(du_stop(d), 0);
    snprintf(run, sizeof(run), "%s/run", d->dir);
    snprintf(log, sizeof(log), "%s/daemon.log", d->dir);
    nobody_run_dir(d, run, d->gid, 0700);
    use_runtime_dir(d, run);
    assert_int_equal(launch_refused(d, log, group_root), 1);
    assert_int_equal(du_log_wait(log, "is not a member of group root", 1), 1);
}

/*
 * A bus of several uids served by a non-root daemon (nobody's): a client
 * of another uid (root here) trusts it when $SHMBUS_DAEMON_UID names it,
 * or when it owns a socket directory nobody else may write that belongs to
 * one of the client's groups; else it refuses it. The /dev/shm lock name,
 * taken by a file the daemon may not remove, does not stop it either.
 */
static void test_trust_daemon_uid_configured(void **state)
{
    struct du_daemon *d = *state;
    const char *allow_root[] = {"--allow-uid", "0", NULL};
    char run[PATH_MAX], lock[PATH_MAX], uidstr[16];
    shmbus_bus *bus = NULL;
    int fd;

    nobody_ids(&d->uid, &d->gid);
    assert_int_equal(du_stop(d), 0);
    snprintf(run, sizeof(run), "%s/run", d->dir);
    snprintf(lock, sizeof(lock), "/dev/shm/shmbus-%s.lock", d->bus);
    fd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600); /* root's */
    assert_true(fd >= 0);
    close(fd);
    nobody_run_dir(d, run, d->gid, 0700);
    use_runtime_dir(d, run);
    snprintf(uidstr, sizeof(uidstr), "%u", (unsigned)d->uid);
    assert_int_equal(setenv("SHMBUS_DAEMON_UID", uidstr, 1), 0);
    assert_int_equal(du_launch(d, allow_root), 0);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    roundtrip(bus, "shared", "across uids");
    shmbus_close(bus);

    assert_int_equal(setenv("SHMBUS_DAEMON_UID", "nobody", 1), 0);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    shmbus_close(bus);
    assert_int_equal(setenv("SHMBUS_DAEMON_UID", "12345", 1), 0);
    assert_shmbus_rc(shmbus_connect(d->bus, &bus), SHMBUS_ERR_UNTRUSTED);
    assert_int_equal(setenv("SHMBUS_DAEMON_UID", "no-such-user-here", 1), 0);
    assert_shmbus_rc(shmbus_connect(d->bus, &bus), SHMBUS_ERR_INVALID);
    assert_int_equal(unsetenv("SHMBUS_DAEMON_UID"), 0);
    assert_shmbus_rc(shmbus_connect(d->bus, &bus), SHMBUS_ERR_UNTRUSTED);

    assert_int_equal(du_stop(d), 0);
    assert_int_equal(unlink(lock), 0); /* still root's: the daemon could not remove it */
}

/* Child: as nobody, make directory arg, mode 0755. */
static int mkdir_as_nobody(void *arg)
{
    return become_nobody() < 0 || mkdir(arg, 0755) < 0;
}

/* Child: connect as root with nobody's group as a supplementary one.
 * @return 0 if shmbus_connect() returned *arg, else 1. */
static int connect_in_nogroup(void *arg)
{
    const struct du_daemon *d = arg;
    shmbus_bus *bus = NULL;
    int rc;

    if (setgroups(1, &d->gid) < 0)
        return 1;
    rc = shmbus_connect(d->bus, &bus);
    if (rc == 0)
        roundtrip(bus, "shared", "by the directory");
    shmbus_close(bus);
    return rc == d->status ? 0 : 1;
}

/* Does a client of nobody's group get @p want from shmbus_connect()? */
static void connect_nogroup(const struct du_daemon *d, int want)
{
    struct du_daemon c = *d;

    c.status = want;
    assert_int_equal(du_wait_ms(tu_fork(connect_in_nogroup, &c), DU_READY_MS), 0);
}

/* Restart the daemon (nobody's, allowing root) with runtime directory
 * @p run, then see what a client of nobody's group makes of it. */
static void connect_by_dir(struct du_daemon *d, const char *run, int want)
{
    const char *allow_root[] = {"--allow-uid", "0", NULL};

    assert_int_equal(du_stop(d), 0);
    use_runtime_dir(d, run);
    assert_int_equal(setenv("SHMBUS_DAEMON_UID", "nobody", 1), 0); /* to see it up */
    assert_int_equal(du_launch(d, allow_root), 0);
    assert_int_equal(unsetenv("SHMBUS_DAEMON_UID"), 0);
    connect_nogroup(d, want);
}

/*
 * A client trusts the owner of the socket's directory only where nobody
 * else could have made that directory: every directory above it root's
 * and writable by root only. In /tmp anyone may make it first: nobody
 * makes one there and serves the bus from it, and a root client of
 * nobody's group refuses that daemon. The same directory under /run, which
 * root holds, is the admin's setup, and trusted; not when its group may
 * write it.
 */
static void test_trust_socket_dir_root_held(void **state)
{
    struct du_daemon *d = *state;
    char run[PATH_MAX];
    struct stat st;

    nobody_ids(&d->uid, &d->gid);
    snprintf(trust_extra_dir, sizeof(trust_extra_dir), "/tmp/shmbus-sq-%s", d->bus);
    assert_int_equal(du_wait_ms(tu_fork(mkdir_as_nobody, trust_extra_dir), DU_READY_MS), 0);
    assert_int_equal(chown(trust_extra_dir, d->uid, d->gid), 0); /* nogroup, as mkdir gave */
    connect_by_dir(d, trust_extra_dir, SHMBUS_ERR_UNTRUSTED);
    assert_int_equal(du_stop(d), 0);
    du_remove_dir(trust_extra_dir);

    snprintf(trust_extra_dir, sizeof(trust_extra_dir), "/run/shmbus-ttest.XXXXXX");
    if (stat("/run", &st) < 0 || st.st_uid != 0 || (st.st_mode & 022) != 0 ||
        mkdtemp(trust_extra_dir) == NULL) {
        trust_extra_dir[0] = '\0';
        skip(); /* no /run that root holds to stand for the admin's */
    }
    assert_int_equal(chmod(trust_extra_dir, 0755), 0);
    snprintf(run, sizeof(run), "%s/shmbus", trust_extra_dir);
    assert_int_equal(mkdir(run, 0750), 0);
    assert_int_equal(chown(run, d->uid, d->gid), 0);
    connect_by_dir(d, run, 0);
    assert_int_equal(chmod(run, 0770), 0);
    connect_nogroup(d, SHMBUS_ERR_UNTRUSTED);
    assert_int_equal(chmod(run, 0750), 0); /* for the daemon's stop */
}

/* CPU time (user + system) process @p pid has used, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut, st;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* the name may hold spaces */
    assert_non_null(p);
    /* Fields 3.. after the name: state ... utime (14) stime (15). */
    assert_int_equal(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st),
                     2);
    return (long)(ut + st);
}

#define EMFILE_CONNS 8

/*
 * The daemon out of descriptors with connections waiting to be accepted:
 * it pauses accepting instead of spinning on EMFILE (its CPU time over a
 * second stays far below the second a spin takes), and serves again once
 * descriptors are back.
 */
static void test_trust_control_emfile_no_spin(void **state)
{
    struct du_daemon *d = *state;
    struct rlimit low, high;
    int conns[EMFILE_CONNS], n;
    shmbus_bus *bus;
    long before, used;

    assert_int_equal(prlimit(d->pid, RLIMIT_NOFILE, NULL, &high), 0);
    n = du_fd_count(d->pid);
    assert_true(n > 0);
    low = high;
    low.rlim_cur = (rlim_t)n + 2;
    assert_int_equal(prlimit(d->pid, RLIMIT_NOFILE, &low, NULL), 0);
    for (int i = 0; i < EMFILE_CONNS; i++) {
        conns[i] = du_raw_connect(d->sock);
        assert_true(conns[i] >= 0);
    }
    du_sleep_ms(200); /* the daemon takes two, then meets EMFILE */
    before = cpu_ticks(d->pid);
    du_sleep_ms(1000);
    used = cpu_ticks(d->pid) - before;
    print_message("daemon CPU over 1 s at EMFILE: %ld of %ld ticks\n", used, sysconf(_SC_CLK_TCK));
    assert_true(used < sysconf(_SC_CLK_TCK) / 4);
    for (int i = 0; i < EMFILE_CONNS; i++)
        close(conns[i]);
    assert_int_equal(prlimit(d->pid, RLIMIT_NOFILE, &high, NULL), 0);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    shmbus_close(bus);
}

#define HOGS 70 /* more than the daemon's 64 places before hello */

struct hog {
    const char *sock;
    int ready;
};

/* Child: as nobody, open HOGS connections and never say hello. */
static int hog_run(void *arg)
{
    const struct hog *h = arg;

    if (become_nobody() < 0)
        return 1;
    for (int i = 0; i < HOGS; i++)
        if (du_raw_connect(h->sock) < 0)
            return 1;
    du_signal(h->ready);
    pause();
    return 0;
}

/*
 * An allowed uid (nobody) holds more connections without a hello than the
 * daemon has places for them: the daemon's own uid still connects at once;
 * the hog cannot lock it out.
 */
static void test_trust_prehello_places_shared(void **state)
{
    struct du_daemon *d = *state;
    struct hog h = {.sock = d->sock};
    shmbus_bus *bus;
    uid_t uid;
    gid_t gid;

    nobody_ids(&uid, &gid);
    assert_int_equal(chmod(d->dir, 0711), 0); /* nobody must reach the socket */
    du_fork_ready(hog_run, &h, &h.ready);
    du_sleep_ms(100); /* the daemon accepts them all (or refuses the last) */
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    roundtrip(bus, "t", "in");
    shmbus_close(bus);
}

#define OWNER_WAITING 40 /* the owner's connections without a hello */

/*
 * A uid the bus does not allow (nobody, on a bus open to another uid: its
 * socket is 0666) can never say hello, so it takes no place before hello
 * from anyone: the owner's 40 connections waiting for their hello all
 * survive nobody's flood, and each is then served.
 */
static void test_trust_prehello_not_allowed_last(void **state)
{
    struct du_daemon *d = *state;
    const char *allow_other[] = {"--allow-uid", "12345", NULL};
    struct hog h = {.sock = d->sock};
    struct du_reply r;
    int mine[OWNER_WAITING], last;
    char run[PATH_MAX];
    uid_t uid;
    gid_t gid;

    nobody_ids(&uid, &gid);
    assert_int_equal(du_stop(d), 0);
    assert_int_equal(chmod(d->dir, 0711), 0); /* nobody must reach the socket */
    snprintf(run, sizeof(run), "%s/shmbus", d->dir);
    assert_int_equal(rmdir(run), 0); /* made again 0711: an existing one is kept */
    assert_int_equal(du_launch(d, allow_other), 0);
    for (int i = 0; i < OWNER_WAITING; i++)
        assert_true((mine[i] = du_raw_connect(d->sock)) >= 0);
    du_fork_ready(hog_run, &h, &h.ready);
    /* Answered only once every connection before it was accepted or
     * refused (the daemon accepts in order). */
    last = du_raw_connect(d->sock);
    assert_true(last >= 0);
    assert_int_equal(du_raw_hello(last, 1, (uint32_t)getpid()), 0);
    du_raw_ok(last, 1, &r);
    close(last);
    for (int i = 0; i < OWNER_WAITING; i++) {
        assert_int_equal(du_raw_hello(mine[i], 1, (uint32_t)getpid()), 0);
        du_raw_ok(mine[i], 1, &r);
        close(mine[i]);
    }
}

#define HANG_GIVE_UP_MS 25000 /* a call that answers "timed out" takes 10 s */

static void on_usr1(int sig)
{
    (void)sig;
}

struct hung_call {
    shmbus_bus *bus;
    shmbus_topic *topic; /* NULL: a LIST; else a SUB_ADD on it */
    shmbus_sub *sub;
    int rc;
    _Atomic int done;
};

static void *hung_call_run(void *arg)
{
    struct hung_call *h = arg;
    shmbus_topic_entry e;

    if (h->topic == NULL)
        h->rc = shmbus_list(h->bus, NULL, &e, 1);
    else
        h->rc = shmbus_sub_create(h->topic, NULL, &h->sub);
    /* release: rc before done; pairs with the acquire load below. */
    atomic_store_explicit(&h->done, 1, memory_order_release);
    return NULL;
}

/*
 * Make control call @p h while the daemon is stopped (SIGSTOP), and
 * interrupt the calling thread with a signal every 20 ms (no SA_RESTART)
 * until it returns or HANG_GIVE_UP_MS pass. The daemon is continued
 * either way. @return the time the call took, in ms.
 */
static int64_t call_hung(struct du_daemon *d, struct hung_call *h)
{
    struct sigaction sa = {.sa_handler = on_usr1}, old;
    int64_t start = du_now_ms();
    pthread_t th;

    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    assert_int_equal(kill(d->pid, SIGSTOP), 0);
    assert_int_equal(pthread_create(&th, NULL, hung_call_run, h), 0);
    /* acquire: pairs with the release store of done; rc is visible. */
    while (!atomic_load_explicit(&h->done, memory_order_acquire) &&
           du_now_ms() - start < HANG_GIVE_UP_MS) {
        pthread_kill(th, SIGUSR1);
        du_sleep_ms(20);
    }
    assert_int_equal(kill(d->pid, SIGCONT), 0); /* also ends a call still waiting */
    pthread_join(th, NULL);
    sigaction(SIGUSR1, &old, NULL);
    return du_now_ms() - start;
}

/* A control call to a hung daemon times out 10 s after it was sent,
 * however many signals interrupt the wait (a deadline, not a timeout
 * restarted by every EINTR). */
static void test_trust_control_call_deadline(void **state)
{
    struct du_daemon *d = *state;
    struct hung_call h = {0};
    int64_t took;

    assert_shmbus_ok(shmbus_connect(d->bus, &h.bus));
    took = call_hung(d, &h);
    print_message("LIST to a stopped daemon, signalled every 20 ms: %lld ms\n", (long long)took);
    assert_shmbus_rc(h.rc, SHMBUS_ERR_TIMEOUT);
    assert_true(took < HANG_GIVE_UP_MS);
    shmbus_close(h.bus);
}

/* Subscriber slots of @p t taken (in any state but FREE) by process @p pid. */
static int slots_of(const shmbus_topic *t, pid_t pid)
{
    shmbus_topic_info info;
    uint32_t opid;
    uint64_t start;
    int n = 0;

    assert_shmbus_ok(shmbus_topic_info_get(t, &info));
    for (uint32_t i = 0; i < info.max_subscribers; i++)
        n += sb_admin_owner(t, SB_ADMIN_SLOT, i, &opid, &start) && (pid_t)opid == pid;
    return n;
}

/*
 * A SUB_ADD that times out (the daemon stopped) leaves no slot taken: the
 * daemon, continued, takes one and answers, but the answer cannot reach
 * the client any more, so it frees the slot at once rather than when the
 * client process dies.
 */
static void test_trust_sub_add_timeout_frees_slot(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.capacity = 16, .max_msg_size = 64};
    struct hung_call h = {0};
    shmbus_topic_entry e;
    shmbus_bus *other;

    assert_shmbus_ok(shmbus_connect(d->bus, &h.bus));
    assert_shmbus_ok(shmbus_open(h.bus, "late", &o, 0, &h.topic));
    call_hung(d, &h);
    assert_shmbus_rc(h.rc, SHMBUS_ERR_TIMEOUT);
    du_sleep_ms(300); /* the daemon has read the request and answered */
    assert_shmbus_ok(shmbus_connect(d->bus, &other));
    assert_int_equal(shmbus_list(other, NULL, &e, 1), 1);
    assert_int_equal(slots_of(h.topic, getpid()), 0);
    shmbus_close(other);
    shmbus_topic_destroy(h.topic);
    shmbus_close(h.bus);
}

/* Child: as nobody, publish and receive one message on topic "g" of the
 * bus arg. @return 0, or 1 + the failing step. */
static int group_member_run(void *arg)
{
    shmbus_topic_opts o = {.capacity = 16, .max_msg_size = 64};
    shmbus_bus *bus = NULL;
    shmbus_topic *t = NULL;
    shmbus_pub *pub = NULL;
    shmbus_sub *sub = NULL;
    char buf[64];

    if (become_nobody() < 0)
        return 1;
    if (shmbus_connect(arg, &bus) < 0 || shmbus_open(bus, "g", &o, 0, &t) < 0)
        return 2;
    if (shmbus_sub_create(t, NULL, &sub) < 0 || shmbus_pub_create(t, &pub) < 0)
        return 3;
    if (shmbus_publish(pub, "member", 6, 0) < 0 ||
        shmbus_recv(sub, buf, sizeof(buf), NULL, WAIT_NS) != 6)
        return 4;
    shmbus_pub_destroy(pub);
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    return 0;
}

/* Mode and group of @p path. */
/*
 * A bus given to a group (--group): its runtime directory, socket and
 * segments are the group's (0710, 0660, 0660), a member of another uid
 * uses a topic, and a restarted daemon takes the group's segments over
 * (0660 and the bus's group pass its trust check).
 */
static void test_trust_group_bus(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.capacity = 16, .max_msg_size = 64};
    const char *group[] = {"--group", NULL, NULL};
    char gidstr[16], run[PATH_MAX], seg[PATH_MAX];
    shmbus_topic_entry e;
    shmbus_topic *t;
    shmbus_pub *pub;
    shmbus_bus *bus;
    pid_t kid;
    uid_t uid;
    gid_t gid;

    nobody_ids(&uid, &gid);
    snprintf(gidstr, sizeof(gidstr), "%u", (unsigned)gid);
    group[1] = gidstr;
    assert_int_equal(du_stop(d), 0);
    assert_int_equal(chmod(d->dir, 0711), 0); /* nobody must reach the socket */
    snprintf(run, sizeof(run), "%s/shmbus", d->dir);
    assert_int_equal(rmdir(run), 0); /* an existing one would keep its mode */
    assert_int_equal(du_launch(d, group), 0);
    assert_mode_group(run, 0710, gid);
    assert_mode_group(d->sock, 0660, gid);

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "g", &o, 0, &t));
    assert_shmbus_ok(shmbus_pub_create(t, &pub)); /* keeps the topic through a crash */
    snprintf(seg, sizeof(seg), "/dev/shm/shmbus.%s.g", d->bus);
    assert_mode_group(seg, 0660, gid);
    kid = tu_fork(group_member_run, d->bus);
    assert_int_equal(du_wait_ms(kid, DU_READY_MS), 0);

    du_stop_sig(d, SIGKILL);
    assert_int_equal(du_launch(d, group), 0);
    shmbus_close(bus);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_int_equal(shmbus_list(bus, NULL, &e, 1), 1);
    assert_string_equal(e.name, "g");
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

#define TRUST_TEST(f) cmocka_unit_test_setup_teardown(f, du_setup, du_teardown)
#define TRUST_TEST_ARGS(f, extra)                                                                  \
    cmocka_unit_test_prestate_setup_teardown(f, du_setup, du_teardown, (void *)(extra))

static const char *const allow_nobody[] = {"--allow-uid", "nobody", NULL};

int main(void)
{
    const struct CMUnitTest tests[] = {
        TRUST_TEST(test_trust_foreign_segments_not_adopted),
        TRUST_TEST(test_trust_squatted_segment_name),
        TRUST_TEST(test_trust_first_name_ours_served),
        TRUST_TEST(test_trust_second_segment_chosen),
        TRUST_TEST(test_trust_hard_link_not_served),
        TRUST_TEST(test_trust_runtime_dir_checked),
        TRUST_TEST(test_trust_runtime_dir_kept),
        cmocka_unit_test_setup_teardown(test_trust_squatted_lock, du_setup, trust_teardown),
        TRUST_TEST(test_trust_second_daemon_other_dir_refused),
        TRUST_TEST(test_trust_daemon_uid_configured),
        TRUST_TEST(test_trust_group_not_member),
        cmocka_unit_test_setup_teardown(test_trust_socket_dir_root_held, du_setup, trust_teardown),
        TRUST_TEST(test_trust_control_emfile_no_spin),
        TRUST_TEST_ARGS(test_trust_prehello_places_shared, allow_nobody),
        TRUST_TEST(test_trust_prehello_not_allowed_last),
        TRUST_TEST(test_trust_control_call_deadline),
        TRUST_TEST(test_trust_sub_add_timeout_frees_slot),
        TRUST_TEST(test_trust_group_bus),
    };

    tu_init();
    return cmocka_run_group_tests_name("trust", tests, NULL, NULL);
}
