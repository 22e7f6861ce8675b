#!/usr/bin/env bash
# User and system CPU per request of one server, pinned: the server's processes on CPU 0,
# wrk on CPU 1, a 1 s warm-up, then 5 s of wrk -t2 -cCONNS on PATH; utime and stime of the
# whole process tree (master, workers, their children) from /proc.
#
#   contrib/bench/cpusplit.sh NAME PORT PATH CONNS COMMAND...
#
# e.g. (from contrib/bench, where the apps are):
#   cpusplit.sh responder 18603 / 64 "$build/bench-responder" 127.0.0.1 18603 2
#   cpusplit.sh gcorn-asgi 18601 / 64 gcorn -k asgi -w 2 -b 127.0.0.1:18601 asgi_app:app
#   cpusplit.sh uvicorn 18602 / 64 /usr/bin/python3 -m uvicorn --workers 2 --loop uvloop \
#           --http httptools --no-access-log --port 18602 asgi_app:app
# Run it under the benchmark lock, nothing else on the machine.
set -euo pipefail
[ $# -ge 5 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
name=$1 port=$2 path=$3 conns=$4
shift 4
py=/usr/bin/python3
log=$(mktemp /tmp/gcorn-cpusplit.XXXXXX)
taskset -c 0 "$@" > "$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port$path" && break
        sleep 0.1
done
taskset -c 1 wrk -t2 -c"$conns" -d1s "http://127.0.0.1:$port$path" > /dev/null
ticks() {
        "$py" - "$pid" <<'EOF'
import os, sys
def tree(p):
        out = [p]
        try:
                for t in os.listdir("/proc/%d/task" % p):
                        with open("/proc/%d/task/%s/children" % (p, t)) as f:
                                for c in f.read().split():
                                        out += tree(int(c))
        except OSError:
                pass
        return out
u = s = 0
for p in tree(int(sys.argv[1])):
        try:
                with open("/proc/%d/stat" % p) as f:
                        st = f.read()
        except OSError:
                continue
        fields = st[st.rindex(")") + 2:].split()
        u += int(fields[11])
        s += int(fields[12])
print(u, s)
EOF
}
read -r u0 s0 < <(ticks)
out=$(taskset -c 1 wrk -t2 -c"$conns" -d5s "http://127.0.0.1:$port$path")
read -r u1 s1 < <(ticks)
requests=$(awk '/requests in/ {print $1}' <<< "$out")
"$py" -c "
import os, sys
tck = os.sysconf('SC_CLK_TCK')
n = int(sys.argv[2])
u, s = (int(sys.argv[4]) - int(sys.argv[3])) * 1e6 / tck / n, (int(sys.argv[6]) - int(sys.argv[5])) * 1e6 / tck / n
print('%s: %d req/s, CPU per request %.2f us user + %.2f us system = %.2f us' % (sys.argv[1], n / 5, u, s, u + s))
" "$name" "$requests" "$u0" "$u1" "$s0" "$s1"
