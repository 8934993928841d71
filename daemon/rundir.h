/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where the daemon keeps its files: the runtime directory of the bus
 * (shmbus_bus_resolve(): the control socket NAME.sock and the lock
 * NAME.lock), which must be the daemon uid's and writable by nobody else,
 * and the bus lock that lets one daemon serve the bus.
 */
#ifndef SHMBUSD_RUNDIR_H
#define SHMBUSD_RUNDIR_H

#include "config.h"

/*
 * Make sure the runtime directory cfg->run_dir exists and can be trusted:
 * created if missing (its parent must exist), with the mode the options
 * ask for: 0700; 0710 and the --group; 0711 when other uids are allowed in
 * (they must reach the socket). An existing one must be a directory (not a
 * link) of our euid that neither group nor others may write, else it is
 * refused with a message saying why; it is never changed (it may be /run
 * given by mistake), only warned about when the peers the options let in
 * cannot reach the socket through it. @return 0 or -1 (logged).
 */
int sbd_rundir_prepare(const struct sbd_config *cfg);

/*
 * Take the bus lock: an OFD write lock on cfg->lock_path in the runtime
 * directory, and one on cfg->shm_lock_path in /dev/shm, keyed by the bus
 * name alone, so that two daemons of the bus started with different
 * runtime directories (with and without XDG_RUNTIME_DIR) exclude each
 * other too. A file at the /dev/shm name that another user planted is
 * removed if we may (root), else we go on with the directory's lock alone,
 * with a warning. @return 0 with both descriptors in @p fds (-1 for a
 * /dev/shm lock we could not have), or -1 (logged: the bus is served, or a
 * lock cannot be had).
 */
int sbd_bus_lock(const struct sbd_config *cfg, int fds[2]);

/* Remove and release the locks (still ours: see sbd_bus_lock()). */
void sbd_bus_unlock(const struct sbd_config *cfg, int fds[2]);

#endif
