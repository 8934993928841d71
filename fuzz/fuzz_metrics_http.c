/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the metrics endpoint's HTTP request reader,
 * sbm_http_parse() (daemon/metrics/http.h): any bytes, as a client may
 * send them. It must read only inside the bytes it is given (a copy of
 * exactly the input: ASan sees any read past it); a request it accepts
 * has its token, if any, inside the input; every prefix of an accepted
 * request is incomplete or the same answer, never "malformed" (the
 * server parses each prefix as it arrives).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "metrics/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    struct sbm_http_req r, p;
    int rc;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    rc = sbm_http_parse(buf, size, &r);
    CHECK(rc == SBM_HTTP_MORE || rc == SBM_HTTP_OK || rc == SBM_HTTP_BAD || rc == SBM_HTTP_LARGE);
    if (rc == SBM_HTTP_OK) {
        CHECK(r.method == SBM_HTTP_GET || r.method == SBM_HTTP_HEAD || r.method == SBM_HTTP_OTHER);
        CHECK(r.token == NULL || (r.token >= buf && r.token + r.token_len <= buf + size));
        for (size_t n = 0; n < size; n++) {
            int prc = sbm_http_parse(buf, n, &p);

            CHECK(prc == SBM_HTTP_MORE || prc == SBM_HTTP_OK);
        }
    }
    free(buf);
    return 0;
}
