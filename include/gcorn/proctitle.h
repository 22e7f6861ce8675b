/* Process titles as ps shows them: "gcorn: master [myapp]", "gcorn: worker [myapp]".
 * The title is written over the memory of argv and environ, as setproctitle does. */
#pragma once

#include "gcorn/macro.h"

/* Call first in main(): copies argv and environ out of the way. Returns the argv copy to use
 * from then on (owned by this module, lives as long as the process), or NULL when out of
 * memory (then titles are not set and the original argv stays usable). */
char **proctitle_init(int argc, char **argv);

void proctitle_set(const char *fmt, ...) _printf_(1, 2);
