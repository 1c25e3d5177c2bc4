/* fuzz_util.c -- helpers shared by the libFuzzer targets (see fuzz.h). */
#include "fuzz.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

char *bg_fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

void bg_fuzz_require(bool cond, const char *msg)
{
    if (!cond) {
        fprintf(stderr, "fuzz: contract broken: %s\n", msg);
        abort();
    }
}

void bg_fuzz_require_json_safe(const char *s, const char *what)
{
    bg_fuzz_require(s != NULL, what);
    json_t *j = json_string(s);
    if (j == NULL) {
        /* Escaped, so that the message itself stays one printable line. */
        fprintf(stderr, "fuzz: contract broken: %s is not valid UTF-8 (json_string refuses it): \"",
                what);
        for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
            fprintf(stderr, *p >= 0x20 && *p < 0x7f ? "%c" : "\\x%02x", *p);
        fprintf(stderr, "\"\n");
        abort();
    }
    json_decref(j);
}

int bg_fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t pathlen, int *fd)
{
    *fd = memfd_create("bg-fuzz", MFD_CLOEXEC);
    if (*fd < 0)
        return -1;
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(*fd, data + off, size - off);
        if (n <= 0) {
            close(*fd);
            return -1;
        }
        off += (size_t)n;
    }
    snprintf(path, pathlen, "/proc/self/fd/%d", *fd);
    return 0;
}
