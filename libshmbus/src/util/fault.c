/* SPDX-License-Identifier: Apache-2.0 */
/* Fault injection points (fault.h); built only with SHMBUS_FAULT_INJECTION. */
#include "util/fault.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

void sb_fault_point(const char *point)
{
    const char *want = getenv("SHMBUS_FAULT");

    if (want != NULL && strcmp(want, point) == 0)
        raise(SIGSTOP);
}
