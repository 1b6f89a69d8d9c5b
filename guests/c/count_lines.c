/*
 * A guest program in C: counts the non-empty lines of each file named on its command line
 * (by default /input/hospital-a.txt) and writes "PATH COUNT" lines to /output/counts.txt and
 * to stdout. Errors go to stderr with exit code 1.
 *
 * Build with Debian's clang and wasi-libc (see docs/guest-programs.md):
 *   clang --target=wasm32-wasi --sysroot=/usr -O2 -Wl,--strip-all -o count_lines.wasm count_lines.c
 */
#include <stdio.h>
#include <string.h>

static long count_lines(const char *path) {
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        perror(path);
        return -1;
    }
    char line[4096];
    long count = 0;
    while (fgets(line, sizeof line, file) != NULL) {
        if (strspn(line, " \t\r\n") != strlen(line)) {
            count++;
        }
    }
    fclose(file);
    return count;
}

int main(int argc, char **argv) {
    const char *fallback[] = {"/input/hospital-a.txt"};
    const char **paths = argc > 1 ? (const char **)argv + 1 : fallback;
    int count = argc > 1 ? argc - 1 : 1;
    FILE *out = fopen("/output/counts.txt", "w");
    if (out == NULL) {
        perror("/output/counts.txt");
        return 1;
    }
    for (int i = 0; i < count; i++) {
        long lines = count_lines(paths[i]);
        if (lines < 0) {
            return 1;
        }
        fprintf(out, "%s %ld\n", paths[i], lines);
        printf("%s %ld\n", paths[i], lines);
    }
    if (fclose(out) != 0) {
        perror("/output/counts.txt");
        return 1;
    }
    return 0;
}
