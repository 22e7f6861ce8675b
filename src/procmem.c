/* Reads /proc/PID/smaps_rollup: one file, summed by the kernel, instead of smaps. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "gcorn/macro.h"
#include "gcorn/procmem.h"

int procmem_own_kib(pid_t pid, uint64_t *ret) {
        char path[64], line[256];
        uint64_t total = 0;
        bool found = false;
        FILE *f;

        if (pid > 0)
                snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int) pid);
        else
                snprintf(path, sizeof(path), "/proc/self/smaps_rollup");
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                uint64_t kib;

                if ((sscanf(line, "Private_Clean: %" SCNu64 " kB", &kib) == 1 ||
                     sscanf(line, "Private_Dirty: %" SCNu64 " kB", &kib) == 1)) {
                        total += kib;
                        found = true;
                }
        }
        fclose(f);
        if (!found)
                return -ENODATA;
        *ret = total;
        return 0;
}
