#!/bin/sh
# PID 1 of a private systemd, before it becomes systemd: run by sdboot.py inside fresh
# PID, mount, UTS, IPC, network and cgroup namespaces. Everything it mounts lives in that
# mount namespace only; the state dir ($SDB_DIR) holds what sdboot.py staged:
#   units/    → /run/systemd/system        payload/ → /run/sdboot
#   etc/      → copied over /etc (overlay) masks    → unit names to mask
#   generators → generator names to mask   binds    → "HOST INSIDE" lines
#   console.log → bound over /dev/console
set -eu

S=${SDB_DIR:?}

ip link set lo up

# systemd gets a pure cgroup2 tree rooted at our own sub-cgroup (the cgroup namespace root).
mount -t cgroup2 -o nsdelegate sdb-cgroup2 /sys/fs/cgroup 2>/dev/null ||
        mount -t cgroup2 sdb-cgroup2 /sys/fs/cgroup

# Upper dirs on a tmpfs of our own: works whatever the state dir's file system is.
mkdir -p "$S/ov"
mount -t tmpfs -o mode=0700 sdb-ov "$S/ov"
for d in etc var; do
        mkdir -p "$S/ov/$d.up" "$S/ov/$d.wk"
        mount -t overlay "sdb-$d" -o "lowerdir=/$d,upperdir=$S/ov/$d.up,workdir=$S/ov/$d.wk" "/$d"
        # Never touch /etc or /var below unless they are our overlay.
        fstype=$(stat -f -c %T "/$d")
        if [ "$fstype" != overlayfs ]; then
                echo "sdboot-init: /$d is $fstype, not our overlay" >&2
                exit 90
        fi
done

# Host enablement (postgresql, nginx, timers...) must not start: whiteouts in the overlay.
rm -rf /etc/systemd/system/*
if [ -d "$S/etc" ]; then
        cp -a "$S/etc/." /etc/
fi

# Bind sources may live in the host's /tmp, which is hidden below: stage them first.
mount -t tmpfs -o mode=0755 sdb-run /run
mkdir -p /run/.sdb-binds
cp "$S/binds" /run/.sdb-binds/list
n=0
if [ -s "$S/binds" ]; then
        while read -r src dst; do
                [ -n "$src" ] || continue
                n=$((n + 1))
                mkdir -p "/run/.sdb-binds/$n"
                mount --bind "$src" "/run/.sdb-binds/$n"
        done < "$S/binds"
fi

mkdir -p /run/systemd/system /run/systemd/system-generators /run/systemd/journald.conf.d /run/sdboot
if [ -d "$S/payload" ]; then
        cp -a "$S/payload/." /run/sdboot/
fi
chmod -R a+rX /run/sdboot
if [ -d "$S/units" ]; then
        cp -a "$S/units/." /run/systemd/system/
fi
while read -r u; do
        if [ -n "$u" ]; then ln -sfn /dev/null "/run/systemd/system/$u"; fi
done < "$S/masks"
while read -r g; do
        if [ -n "$g" ]; then ln -sfn /dev/null "/run/systemd/system-generators/$g"; fi
done < "$S/generators"

cat > /run/systemd/journald.conf.d/sdboot.conf <<'CONF'
[Journal]
Storage=volatile
ReadKMsg=no
ForwardToWall=no
ForwardToConsole=no
RateLimitBurst=0
CONF

cat > /run/systemd/system/sdboot.target <<'UNIT'
[Unit]
Description=Private test boot
Wants=systemd-journald.socket systemd-journald.service
After=systemd-journald.socket systemd-journald.service
AllowIsolate=yes
UNIT

# PID 1's console output goes to the state dir, never to the machine's console.
mount --bind "$S/console.log" /dev/console

mount -t tmpfs -o mode=1777 sdb-tmp /tmp

# $S is hidden now: the list was copied to /run.
if [ -s /run/.sdb-binds/list ]; then
        n=0
        while read -r src dst; do
                [ -n "$src" ] || continue
                n=$((n + 1))
                mkdir -p "$dst"
                mount --move "/run/.sdb-binds/$n" "$dst"
        done < /run/.sdb-binds/list
fi
rm -f /run/.sdb-binds/list
rmdir /run/.sdb-binds/* /run/.sdb-binds 2>/dev/null || true

exec env -i container=sdboot TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        /lib/systemd/systemd --system --unit=sdboot.target --show-status=no --log-color=no
