/* fuzz.h -- helpers shared by the libFuzzer targets: NUL-terminated copies, invariant checks,
 * and a file descriptor path for the loaders that only take a path. */
#ifndef BG_FUZZ_H
#define BG_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A malloc'd, NUL-terminated copy of the input (the caller frees). Inputs that contain a NUL
 * are cut there, as a C string would be. */
char *bg_fuzz_cstr(const uint8_t *data, size_t size);

/* Abort (a finding) with msg when s is not valid UTF-8 text that jansson would accept as a
 * JSON string: every reason and echoed value ends up in a JSON answer or a znode. */
void bg_fuzz_require_json_safe(const char *s, const char *what);

/* Abort with msg when cond is false: a broken contract is a finding like a crash. */
void bg_fuzz_require(bool cond, const char *msg);

/* Write the input to an anonymous in-memory file and return "/proc/self/fd/N" in path (the
 * descriptor in *fd; close it when done). Returns 0, or -1 when no memfd can be made. */
int bg_fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t pathlen, int *fd);

#endif
