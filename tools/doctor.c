/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The checks of `shmbus doctor` (doctor.h) and the parsers they use for
 * /proc/self/mounts and logind.conf. Each check fills one doctor_result;
 * none of them changes the machine.
 */
#include "doctor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* Most drop-ins of logind.conf.d read; more are ignored. */
#define DOCTOR_DROPINS_MAX 64

const char *doctor_level_name(enum doctor_level l)
{
    return l == DOCTOR_OK ? "OK" : l == DOCTOR_WARN ? "WARN" : "FAIL";
}

static void doctor_set(struct doctor_result *r, enum doctor_level l, const char *fix)
{
    r->level = l;
    snprintf(r->fix, sizeof(r->fix), "%s", fix);
}

ssize_t doctor_read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t len = 0;
    ssize_t n;

    if (fd < 0)
        return -errno;
    while (len + 1 < cap && (n = read(fd, buf + len, cap - 1 - len)) != 0) {
        /* Interrupted: read again; another error ends the file here. */
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            n = -errno;
            close(fd);
            return n;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(fd);
    return (ssize_t)len;
}

int doctor_kernel_parse(const char *release, unsigned *major, unsigned *minor)
{
    char *end;
    unsigned long ma, mi;

    errno = 0;
    ma = strtoul(release, &end, 10);
    /* Not "digits." at the start: not a release we can compare. */
    if (end == release || *end != '.' || errno != 0 || ma > UINT_MAX)
        return -1;
    release = end + 1;
    mi = strtoul(release, &end, 10);
    if (end == release || errno != 0 || mi > UINT_MAX)
        return -1;
    *major = (unsigned)ma;
    *minor = (unsigned)mi;
    return 0;
}

int doctor_mounts_find(const char *text, const char *mountpoint, struct doctor_mount *out)
{
    char dev[256], mnt[256], type[32], opts[256];
    int found = -1;

    while (*text != '\0') {
        const char *nl = strchr(text, '\n');
        size_t len = nl ? (size_t)(nl - text) : strlen(text);
        char line[1024];

        /* A line longer than any mount of interest is skipped. */
        if (len < sizeof(line)) {
            memcpy(line, text, len);
            line[len] = '\0';
            if (sscanf(line, "%255s %255s %31s %255s", dev, mnt, type, opts) == 4 &&
                strcmp(mnt, mountpoint) == 0) {
                snprintf(out->fstype, sizeof(out->fstype), "%s", type);
                snprintf(out->options, sizeof(out->options), "%s", opts);
                found = 0;
            }
        }
        text += len + (nl != NULL);
    }
    return found;
}

int doctor_option_has(const char *options, const char *opt)
{
    size_t n = strlen(opt);

    for (const char *p = options;; p++) {
        if (strncmp(p, opt, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return 1;
        /* On to the next option, if there is one. */
        if ((p = strchr(p, ',')) == NULL)
            return 0;
    }
}

/* systemd's boolean words. @return 1, 0, or -1 for another word. */
static int doctor_bool(const char *s)
{
    static const char *const yes[] = {"1", "yes", "y", "true", "t", "on"};
    static const char *const no[] = {"0", "no", "n", "false", "f", "off"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return 1;
        if (strcasecmp(s, no[i]) == 0)
            return 0;
    }
    return -1;
}

/* Strip leading and trailing blanks of @p s in place. */
static char *doctor_trim(char *s)
{
    size_t n;

    while (*s == ' ' || *s == '\t')
        s++;
    n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* One line of logind.conf: updates *in_login, *rc and *value. */
static void doctor_logind_line(char *line, int *in_login, int *rc, int *value)
{
    char *eq, *s = doctor_trim(line);

    /* Comments and blank lines say nothing. */
    if (*s == '#' || *s == ';' || *s == '\0')
        return;
    if (*s == '[') {
        *in_login = strcmp(s, "[Login]") == 0;
        return;
    }
    eq = strchr(s, '=');
    if (!*in_login || eq == NULL)
        return;
    *eq = '\0';
    if (strcmp(doctor_trim(s), "RemoveIPC") != 0)
        return;
    *value = doctor_bool(doctor_trim(eq + 1));
    *rc = *value < 0 ? -1 : 1;
}

int doctor_logind_removeipc(const char *text, int *value)
{
    int in_login = 0, rc = 0, v = 0;

    while (*text != '\0') {
        const char *nl = strchr(text, '\n');
        size_t len = nl ? (size_t)(nl - text) : strlen(text);
        char line[512];

        /* A line too long for a setting we read is not one. */
        if (len < sizeof(line)) {
            memcpy(line, text, len);
            line[len] = '\0';
            doctor_logind_line(line, &in_login, &rc, &v);
        }
        text += len + (nl != NULL);
    }
    if (rc == 1)
        *value = v;
    return rc;
}

void doctor_check_kernel(const char *release, struct doctor_result *r)
{
    unsigned ma, mi;

    snprintf(r->found, sizeof(r->found), "kernel %s", release);
    if (doctor_kernel_parse(release, &ma, &mi) < 0) {
        doctor_set(r, DOCTOR_WARN, "cannot read the version; the library needs Linux >= 5.16");
        return;
    }
    if (ma > DOCTOR_KERNEL_MAJOR || (ma == DOCTOR_KERNEL_MAJOR && mi >= DOCTOR_KERNEL_MINOR))
        doctor_set(r, DOCTOR_OK, "");
    else
        doctor_set(r, DOCTOR_FAIL, "run Linux >= 5.16 (futex_waitv)");
}

void doctor_check_syscalls(struct doctor_result *r)
{
    /* No waiters and no flags: a kernel with the call says EINVAL. */
    long w = syscall(SYS_futex_waitv, NULL, 0, 0, NULL, 0);
    int werr = w < 0 ? errno : 0;
    long p = syscall(SYS_pidfd_open, getpid(), 0);
    int perr = p < 0 ? errno : 0;

    if (p >= 0)
        close((int)p);
    snprintf(r->found, sizeof(r->found), "futex_waitv: %s; pidfd_open: %s",
             werr == ENOSYS ? "missing" : "present", p >= 0 ? "works" : strerror(perr));
    if (werr == ENOSYS || p < 0)
        doctor_set(r, DOCTOR_FAIL,
                   "run Linux >= 5.16; in a container, allow futex_waitv and pidfd_open in "
                   "its seccomp profile");
    else
        doctor_set(r, DOCTOR_OK, "");
}

/* Size and free space of @p shm_dir into r->found; WARN if short. */
static void doctor_shm_space(const char *shm_dir, const struct doctor_mount *m,
                             struct doctor_result *r)
{
    struct statvfs fs;
    uint64_t size, avail;
    size_t n = strlen(r->found);

    if (statvfs(shm_dir, &fs) < 0) {
        snprintf(r->found + n, sizeof(r->found) - n, "; statvfs: %s", strerror(errno));
        doctor_set(r, DOCTOR_FAIL, "make /dev/shm a readable tmpfs mount");
        return;
    }
    size = (uint64_t)fs.f_blocks * fs.f_frsize;
    avail = (uint64_t)fs.f_bavail * fs.f_frsize;
    snprintf(r->found + n, sizeof(r->found) - n, ", size %llu MiB, %llu MiB free (%s)",
             (unsigned long long)(size >> 20), (unsigned long long)(avail >> 20), m->options);
    if (avail < DOCTOR_SHM_FREE_MIN)
        doctor_set(r, DOCTOR_WARN,
                   "less than 64 MiB free: remount with a larger size= (mount -o "
                   "remount,size=1G /dev/shm) or lower shmbusd --max-shm");
}

void doctor_check_shm(const char *mounts_path, const char *shm_dir, struct doctor_result *r)
{
    static char text[DOCTOR_FILE_MAX];
    struct doctor_mount m;

    doctor_set(r, DOCTOR_OK, "");
    if (doctor_read_file(mounts_path, text, sizeof(text)) < 0 ||
        doctor_mounts_find(text, shm_dir, &m) < 0) {
        snprintf(r->found, sizeof(r->found), "%s is not a mount point", shm_dir);
        doctor_set(r, DOCTOR_FAIL,
                   "mount a tmpfs on /dev/shm (in a container: --shm-size, or "
                   "bind the host's /dev/shm to share a bus)");
        return;
    }
    snprintf(r->found, sizeof(r->found), "%s: %s", shm_dir, m.fstype);
    /* noexec, nosuid and nodev do not matter: segments are only mapped. */
    if (strcmp(m.fstype, "tmpfs") != 0) {
        doctor_set(r, DOCTOR_FAIL, "mount a tmpfs on /dev/shm");
        return;
    }
    if (doctor_option_has(m.options, "ro")) {
        doctor_set(r, DOCTOR_FAIL, "remount /dev/shm read-write");
        return;
    }
    doctor_shm_space(shm_dir, &m, r);
}

/* Apply RemoveIPC= of file @p path, if it sets it, to *value and *from. */
static void doctor_removeipc_file(const char *path, int *value, char *from, size_t cap)
{
    static char text[DOCTOR_FILE_MAX];
    int v;

    /* A file that is missing or unreadable sets nothing. */
    if (doctor_read_file(path, text, sizeof(text)) < 0)
        return;
    if (doctor_logind_removeipc(text, &v) == 1) {
        *value = v;
        snprintf(from, cap, "%s", path);
    }
}

static int doctor_conf_name(const struct dirent *d)
{
    size_t n = strlen(d->d_name);

    return n > 5 && strcmp(d->d_name + n - 5, ".conf") == 0;
}

/* RemoveIPC as logind sees it: its default (yes), logind.conf, drop-ins. */
static int doctor_removeipc(const char *conf, const char *dropin_dir, char *from, size_t cap)
{
    struct dirent **names = NULL;
    char path[PATH_MAX];
    int value = 1, n;

    snprintf(from, cap, "the default");
    doctor_removeipc_file(conf, &value, from, cap);
    n = scandir(dropin_dir, &names, doctor_conf_name, alphasort);
    for (int i = 0; i < n; i++) {
        if (i < DOCTOR_DROPINS_MAX &&
            snprintf(path, sizeof(path), "%s/%s", dropin_dir, names[i]->d_name) < (int)sizeof(path))
            doctor_removeipc_file(path, &value, from, cap);
        free(names[i]);
    }
    free(names);
    return value;
}

void doctor_check_removeipc(const char *conf, const char *dropin_dir, uid_t uid,
                            struct doctor_result *r)
{
    char from[PATH_MAX];
    int on = doctor_removeipc(conf, dropin_dir, from, sizeof(from));

    snprintf(r->found, sizeof(r->found), "RemoveIPC=%s (%.200s), uid %u", on ? "yes" : "no", from,
             (unsigned)uid);
    /* logind spares root and system users (uid < 1000). */
    if (!on || uid < DOCTOR_UID_MIN_REGULAR) {
        doctor_set(r, DOCTOR_OK, "");
        return;
    }
    doctor_set(r, DOCTOR_WARN,
               "logout deletes this user's /dev/shm segments: put the lines \"[Login]\" and "
               "\"RemoveIPC=no\" in /etc/systemd/logind.conf.d/shmbus.conf and restart "
               "systemd-logind, or run the bus as a system user");
}

void doctor_check_nofile(uint64_t soft, uint64_t hard, struct doctor_result *r)
{
    snprintf(r->found, sizeof(r->found),
             "RLIMIT_NOFILE soft %llu, hard %llu; shmbusd's defaults need %u",
             (unsigned long long)soft, (unsigned long long)hard, DOCTOR_NOFILE_MIN);
    if (soft >= DOCTOR_NOFILE_MIN)
        doctor_set(r, DOCTOR_OK, "");
    else if (hard >= DOCTOR_NOFILE_MIN)
        doctor_set(r, DOCTOR_WARN, "shmbusd raises its soft limit itself; or ulimit -n 8192");
    else
        doctor_set(r, DOCTOR_WARN,
                   "raise the hard limit (LimitNOFILE= in the unit, nofile in "
                   "limits.conf) or lower shmbusd --max-clients/--max-topics");
}

/* The socket in an existing directory: may this user connect? */
static void doctor_rundir_socket(const char *sock, struct doctor_result *r)
{
    struct stat st;
    size_t n = strlen(r->found);

    if (stat(sock, &st) < 0) {
        snprintf(r->found + n, sizeof(r->found) - n, "; no socket %.100s", sock);
        doctor_set(r, DOCTOR_WARN,
                   "no daemon serves this bus: start shmbusd with the same "
                   "$SHMBUS_RUNTIME_DIR or $XDG_RUNTIME_DIR as this user");
        return;
    }
    snprintf(r->found + n, sizeof(r->found) - n, "; socket owner %u mode %04o", (unsigned)st.st_uid,
             (unsigned)(st.st_mode & 07777));
    /* connect(2) on a unix socket needs write permission on it. */
    if (access(sock, W_OK) < 0)
        doctor_set(r, DOCTOR_FAIL,
                   "this user may not connect: join the socket's group "
                   "(shmbusd --group) or run as its owner");
    else
        doctor_set(r, DOCTOR_OK, "");
}

void doctor_check_rundir(const char *sock, struct doctor_result *r)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(sock, '/');
    struct stat st;

    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - sock) : 1, slash ? sock : ".");
    if (stat(dir, &st) < 0) {
        snprintf(r->found, sizeof(r->found), "%.200s: %s", dir, strerror(errno));
        doctor_set(r, DOCTOR_WARN,
                   "shmbusd creates it when it starts; set $SHMBUS_RUNTIME_DIR "
                   "or $XDG_RUNTIME_DIR to the daemon's directory");
        return;
    }
    snprintf(r->found, sizeof(r->found), "%.200s: owner %u mode %04o", dir, (unsigned)st.st_uid,
             (unsigned)(st.st_mode & 07777));
    if (!S_ISDIR(st.st_mode)) {
        doctor_set(r, DOCTOR_FAIL, "remove it: the bus's runtime directory must be a directory");
        return;
    }
    /* Reaching the socket needs search permission on its directory. */
    if (access(dir, X_OK) < 0) {
        doctor_set(r, DOCTOR_FAIL, "this user may not enter it: join its group");
        return;
    }
    doctor_rundir_socket(sock, r);
}
