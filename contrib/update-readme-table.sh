#!/usr/bin/env bash
# Rewrites the README's settings table from the settings table in the binary:
#   contrib/update-readme-table.sh [GCORN_BINARY]      (default build-test/src/gcorn)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
gcorn=${1:-$top/build-test/src/gcorn}
/usr/bin/python3 - "$top/README.md" "$("$gcorn" --settings-table-markdown)" <<'PY'
import re, sys
path, table = sys.argv[1], sys.argv[2] + "\n"
text = open(path).read()
new, n = re.subn(r"(<!-- settings-table:begin[^>]*-->\n).*?(<!-- settings-table:end -->)",
                 lambda m: m.group(1) + table + m.group(2), text, flags=re.S)
if n != 1:
        sys.exit("README.md has no settings table markers")
open(path, "w").write(new)
PY
