/* SPDX-License-Identifier: Apache-2.0 */
/* shmbus_version(), shmbus_version_number(): the library's own version, as
 * built, for a program to compare with the header's SHMBUS_VERSION. */
#include "shmbus/shmbus.h"

const char *shmbus_version(void)
{
    return SHMBUS_VERSION_STRING;
}

int shmbus_version_number(void)
{
    return SHMBUS_VERSION;
}
