/* Words -> the settings parser (src/settings.c): every flag's value via settings_parse_argv()
 * with a fuzzed argv, $GUNICORN_CMD_ARGS through the shell-style tokenizer, and the config
 * file's path (settings_set(), settings_set_list(), settings_set_dict()) to each typed value;
 * then the cross-field checks and --print-config over whatever was set.
 *
 * Input: a mode byte, a setting byte (which setting, by its index in the table), then words
 * separated by NUL bytes. Run with -close_fd_mask=3: bad values print their one line on
 * stderr, as they should. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "gcorn/macro.h"
#include "gcorn/settings.h"

#define WORDS_MAX 24

static const char *names[512];
static size_t n_names;
static FILE *devnull;
static char env_args[sizeof("GUNICORN_CMD_ARGS=") + 65536];

static int collect(const char *name, _unused_ SettingValueKind kind, _unused_ const void *value,
                   _unused_ void *userdata) {
        if (n_names < ELEMENTSOF(names))
                names[n_names++] = name;
        return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(_unused_ int *argc, _unused_ char ***argv) {
        static Settings s;

        unsetenv("GUNICORN_CMD_ARGS");
        unsetenv("GCORN_CMD_ARGS");
        unsetenv("PORT");
        unsetenv("WEB_CONCURRENCY");
        FUZZ_CHECK(settings_init(&s) == 0);
        /* The names are static strings of the table; s stays alive for the run. */
        FUZZ_CHECK(settings_foreach(&s, collect, NULL) == 0);
        FUZZ_CHECK(n_names > 0);
        devnull = fopen("/dev/null", "we");
        FUZZ_CHECK(devnull != NULL);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
        uint8_t mode = fuzz_byte(&data, &len), which = fuzz_byte(&data, &len);
        const char *name = names[which % n_names];
        char *words[WORDS_MAX + 2] = { (char *) "gcorn" }, *copy, *error = NULL, **lines = NULL;
        size_t n = 1;
        Settings s;
        int r;

        /* The words, NUL-terminated, at most WORDS_MAX of them. */
        copy = malloc(len + 1);
        FUZZ_CHECK(copy != NULL);
        memcpy(copy, data, len);
        copy[len] = 0;
        for (char *w = copy; n <= WORDS_MAX && w <= copy + len; w += strlen(w) + 1)
                words[n++] = w;
        words[n] = NULL;

        FUZZ_CHECK(settings_init(&s) == 0);
        switch (mode % 5) {
        case 0:
                r = settings_parse_argv(&s, (int) n, words);
                FUZZ_CHECK(r == 1 || r == 0 || r == -EINVAL || r == -ENOMEM);
                break;
        case 1: {
                char **split = NULL;

                /* The tokenizer alone, then the whole path from the environment. */
                r = settings_shell_split(copy, &split);
                FUZZ_CHECK(r == 0 || r == -EINVAL);
                if (r == 0)
                        for (char **w = split; *w; w++)
                                FUZZ_CHECK(strlen(*w) <= len);
                strv_free(split);
                /* putenv() of one buffer: glibc's setenv() keeps every value it was ever
                 * given, which a fuzzer would take for the parser's memory growing. */
                snprintf(env_args, sizeof(env_args), "GUNICORN_CMD_ARGS=%s", copy);
                FUZZ_CHECK(putenv(env_args) == 0);
                r = settings_parse_env_args(&s);
                unsetenv("GUNICORN_CMD_ARGS");
                FUZZ_CHECK(r == 1 || r == 0 || r == -EINVAL || r == -ENOMEM);
                break;
        }
        case 2:
                r = settings_set(&s, name, words[1], &error);
                FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
                FUZZ_CHECK(r != -EINVAL || (error && error[0]));
                break;
        case 3:
                r = settings_set_list(&s, name, (const char *const *) words + 1, &error);
                FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
                break;
        default:
                /* Pairs: an odd count leaves the last name without its value, so cut it. */
                if ((n - 1) % 2)
                        words[--n] = NULL;
                r = settings_set_dict(&s, name, (const char *const *) words + 1, &error);
                FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
                break;
        }
        free(error);
        error = NULL;

        if (r >= 0) {
                (void) settings_validate(&s, &error);
                free(error);
                FUZZ_CHECK(settings_no_effect_lines(&s, &lines) == 0);
                strv_free(lines);
                settings_print_config(&s, devnull, NULL);
        }
        settings_done(&s);
        free(copy);
        return 0;
}
