/* SPDX-License-Identifier: Apache-2.0 */
/*
 * doctor.h - the checks of `shmbus doctor`: each looks at one trap of this
 * machine (kernel, system calls, /dev/shm, logind's RemoveIPC, descriptor
 * limit, the bus's runtime directory) and fills a doctor_result with a
 * level, what it found and what to change. Files and environment come in
 * as arguments, so that tests point them at fixtures; every file is read
 * with a size cap (DOCTOR_FILE_MAX).
 */
#ifndef SHMBUS_TOOLS_DOCTOR_H
#define SHMBUS_TOOLS_DOCTOR_H

#include <stdint.h>
#include <sys/types.h>

/* Longest file a check reads; a longer one is read up to this size. */
#define DOCTOR_FILE_MAX (64 * 1024)
/* Oldest kernel with futex_waitv(2), which the library needs. */
#define DOCTOR_KERNEL_MAJOR 5
#define DOCTOR_KERNEL_MINOR 16
/* /dev/shm free space below which doctor warns: a default topic
 * (capacity 1024 x max-msg 4096 with its slots) takes about 4 MiB, so
 * 64 MiB is room for a dozen topics. */
#define DOCTOR_SHM_FREE_MIN (64ull << 20)
/* Descriptors shmbusd needs with its defaults (daemon/config.h
 * sbd_config_fds(): 1024 clients x 3 + 4096 topics + 64). */
#define DOCTOR_NOFILE_MIN (1024u * 3 + 4096 + 64)
/* First uid logind treats as a regular user (Debian's SYS_UID_MAX + 1). */
#define DOCTOR_UID_MIN_REGULAR 1000

enum doctor_level { DOCTOR_OK, DOCTOR_WARN, DOCTOR_FAIL };

struct doctor_result {
    enum doctor_level level;
    char found[256]; /* what the check saw */
    char fix[256];   /* what to change; empty when OK */
};

/* One line of /proc/self/mounts, as doctor_mounts_find() returns it. */
struct doctor_mount {
    char fstype[32];
    char options[256];
};

/* "OK", "WARN" or "FAIL". */
const char *doctor_level_name(enum doctor_level l);

/*
 * Read at most @p cap - 1 bytes of @p path into @p buf, NUL-terminated.
 * @return the length; -errno.
 */
ssize_t doctor_read_file(const char *path, char *buf, size_t cap);

/* Parse "MAJOR.MINOR..." of a kernel release. @return 0; -1 if malformed. */
int doctor_kernel_parse(const char *release, unsigned *major, unsigned *minor);

/*
 * Find the last mount of @p mountpoint in @p text (the format of
 * /proc/self/mounts; the last one is the one on top).
 * @return 0 with *out filled; -1 when it is not mounted.
 */
int doctor_mounts_find(const char *text, const char *mountpoint, struct doctor_mount *out);

/* Whether comma-separated @p options hold @p opt exactly. */
int doctor_option_has(const char *options, const char *opt);

/*
 * RemoveIPC= of the [Login] section of logind.conf text @p text, if set.
 * Lines starting with '#' or ';' are comments; the last setting wins.
 * @return 1 with *value set (1 yes, 0 no); 0 when unset; -1 when the value
 *         is not a boolean.
 */
int doctor_logind_removeipc(const char *text, int *value);

/* The checks. The real machine's inputs are in cmd_doctor.c. */
void doctor_check_kernel(const char *release, struct doctor_result *r);
void doctor_check_syscalls(struct doctor_result *r);
void doctor_check_shm(const char *mounts_path, const char *shm_dir, struct doctor_result *r);
/* @p conf logind.conf; @p dropin_dir its drop-in directory (its .conf files, read in
 * name order after it). */
void doctor_check_removeipc(const char *conf, const char *dropin_dir, uid_t uid,
                            struct doctor_result *r);
void doctor_check_nofile(uint64_t soft, uint64_t hard, struct doctor_result *r);
/* @p sock the control socket shmbus_bus_resolve() gives. */
void doctor_check_rundir(const char *sock, struct doctor_result *r);

#endif /* SHMBUS_TOOLS_DOCTOR_H */
