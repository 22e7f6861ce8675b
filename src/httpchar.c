/* The byte-class table behind include/gcorn/httpchar.h. */
#include "gcorn/httpchar.h"

#define TF (HTTP_CHAR_TOKEN | HTTP_CHAR_FIELD | HTTP_CHAR_NAME)
#define F HTTP_CHAR_FIELD
const uint8_t http_char_class[256] = {
        ['\t'] = F, [' '] = F,
        ['!'] = TF, ['"'] = F, ['#' ... '\''] = TF, ['('] = F, [')'] = F, ['*'] = TF, ['+'] = TF,
        [','] = F, ['-'] = TF, ['.'] = TF, ['/'] = F, ['0' ... '9'] = TF, [':' ... '@'] = F,
        ['A' ... 'Z'] = TF, ['['] = F, ['\\'] = F, [']'] = F, ['^'] = TF, ['`'] = TF,
        ['_'] = HTTP_CHAR_TOKEN | HTTP_CHAR_FIELD,
        ['a' ... 'z'] = TF, ['{'] = F, ['|'] = TF, ['}'] = F, ['~'] = TF,
        [0x80 ... 0xff] = F,
};
