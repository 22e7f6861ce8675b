/* How much memory a process holds on its own. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/* The process's unique set size in KiB: the pages no other process shares
 * (Private_Clean + Private_Dirty of /proc/PID/smaps_rollup), so that what a --preload
 * master shares with its workers is not counted in each of them. pid 0 is the caller.
 * Returns 0 or -errno. */
int procmem_own_kib(pid_t pid, uint64_t *ret);
