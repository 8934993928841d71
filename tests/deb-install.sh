#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the packages `make deb` built (DEB_DIR, default build-deb/) in a
# throwaway root and uses them, as CI does after `make deb` (.ci/run): dpkg
# -i of the four packages with their maintainer scripts (the shmbus user and
# group), both binaries' --version, pkg-config, the man pages, the installed
# shmbusd in the foreground on the default system bus, one message through
# the installed `shmbus` and one through examples/pubsub.c built with
# pkg-config's flags against the packages, then dpkg --purge and no
# packaged file left. About 6 s.
#
# The root: the script runs itself again in a private mount namespace
# (unshare --mount), mounts an overlay over / (lower: /, upper and work in a
# temporary directory) and chroots into it, with its own /dev/shm, /run and
# /tmp (tmpfs) and the host's /dev and /proc bound in. The host's files,
# its dpkg database among them (checked), and its /dev/shm never change,
# and every mount goes away with the namespace. dpkg --root was not picked:
# it runs maintainer scripts outside the root unless they follow DPKG_ROOT,
# which adduser does not, and the binaries would still have to run in a
# chroot to find their library. Needs root (CI runs as root).
# Usage: tests/deb-install.sh [DEB_DIR]
set -euo pipefail

if [ "${1:-}" = --inside ]; then
  tmp=$2
  debs=$3
  root=$tmp/root
  daemon=
  sub=
  # stop PID: SIGTERM, SIGKILL after 5 s, and reaped.
  stop() {
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  }
  cleanup() {
    if [ -n "$sub" ]; then stop "$sub"; fi
    if [ -n "$daemon" ]; then stop "$daemon"; fi
  }
  trap cleanup EXIT
  # chroot and env exec what they run: a command started in the background
  # with these has the pid $! names.
  in_root=(chroot "$root" env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root LANG=C.UTF-8)
  in_root() { "${in_root[@]}" "$@"; }

  mkdir -p "$tmp/upper" "$tmp/work" "$root"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$tmp/upper,workdir=$tmp/work" "$root"
  mount --bind /dev "$root/dev"
  mount --rbind /proc "$root/proc"
  for d in dev/shm run tmp; do mount -t tmpfs -o mode=1777 tmpfs "$root/$d"; done
  mkdir "$root/tmp/debs"
  for deb in "$debs"/*.deb; do
    case $deb in *-dbgsym_*) ;; *) cp "$deb" "$root/tmp/debs/" ;; esac
  done
  cp examples/pubsub.c "$root/tmp/pubsub.c"

  echo "-- dpkg -i"
  in_root sh -c 'dpkg -i /tmp/debs/*.deb' >/dev/null
  in_root getent group shmbus >/dev/null || { echo "no shmbus group after postinst"; exit 1; }
  in_root getent passwd shmbus >/dev/null || { echo "no shmbus user after postinst"; exit 1; }

  echo "-- versions"
  version=$(dpkg-deb -f "$(ls "$debs"/shmbusd_*.deb)" Version)
  in_root shmbus --version | grep -F "$version"
  in_root shmbusd --version | grep -F "$version"
  [ "$(in_root pkg-config --modversion shmbus)" = "$version" ] || {
    echo "pkg-config --modversion shmbus is not $version"
    exit 1
  }
  in_root test -d "/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/cmake/shmbus"
  if in_root sh -c 'command -v man' >/dev/null; then
    for page in shmbus shmbusd libshmbus; do in_root man -w "$page"; done
  fi

  echo "-- the installed daemon, the CLI and a C program built with pkg-config"
  "${in_root[@]}" /usr/sbin/shmbusd --foreground --log-level warn &
  daemon=$!
  for _ in $(seq 100); do
    [ -S "$root/run/shmbus/default.sock" ] && break
    kill -0 "$daemon" || { echo "shmbusd exited"; exit 1; }
    sleep 0.1
  done
  echo "deb-install" | in_root timeout 10 shmbus pub deb-cli
  in_root timeout 10 shmbus sub deb-cli --from oldest --count 1 | grep -F deb-install
  # examples/pubsub.c (the README's example), its subscriber seated before
  # its publisher sends, on the topic the CLI made.
  in_root sh -c 'cc -o /tmp/pubsub /tmp/pubsub.c $(pkg-config --cflags --libs shmbus)'
  "${in_root[@]}" /tmp/pubsub sub deb-cli 1 >"$root/tmp/sub.out" &
  sub=$!
  for _ in $(seq 100); do
    grep -q '^subscribed to deb-cli$' "$root/tmp/sub.out" && break
    kill -0 "$sub" || { echo "pubsub sub exited"; exit 1; }
    sleep 0.1
  done
  in_root timeout 10 /tmp/pubsub pub deb-cli "from C"
  for _ in $(seq 100); do kill -0 "$sub" 2>/dev/null || break; sleep 0.1; done
  wait "$sub" || { echo "pubsub sub: exit status $?"; exit 1; }
  sub=
  grep -F "from C" "$root/tmp/sub.out"
  stop "$daemon"
  daemon=

  echo "-- dpkg --purge"
  mapfile -t pkgs < <(for deb in "$root"/tmp/debs/*.deb; do dpkg-deb -f "$deb" Package; done)
  in_root dpkg --purge "${pkgs[@]}" >/dev/null
  left=()
  for deb in "$root"/tmp/debs/*.deb; do
    while IFS= read -r f; do
      [ -e "$root/$f" ] || [ -L "$root/$f" ] && left+=("$f")
    done < <(dpkg-deb --fsys-tarfile "$deb" | tar -t | grep -v '/$' | sed 's|^\./||')
  done
  if [ "${#left[@]}" -gt 0 ]; then
    echo "left after purge:"
    printf '  /%s\n' "${left[@]}"
    exit 1
  fi
  exit 0
fi

self=$(realpath "$0")
debs=$(realpath "${1:-build-deb}")
cd "$(dirname "$self")/.."
[ "$(id -u)" = 0 ] || { echo "deb-install.sh: needs root (mounts and chroot)"; exit 1; }
ls "$debs"/shmbusd_*.deb >/dev/null || { echo "deb-install.sh: no packages in $debs (make deb)"; exit 1; }
# What the host's dpkg says of these packages (other engineers may install
# other packages meanwhile).
host_dpkg() {
  for deb in "$debs"/*.deb; do
    dpkg-query -W -f '${Package} ${Version} ${Status}\n' "$(dpkg-deb -f "$deb" Package)" 2>&1 || true
  done
}
status_before=$(host_dpkg)
tmp=$(mktemp -d /tmp/shmbus-deb-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
unshare --mount --propagation private "$self" --inside "$tmp" "$debs"
[ "$(host_dpkg)" = "$status_before" ] || {
  echo "the host's dpkg database changed for these packages"
  exit 1
}
echo "deb-install: packages installed, used and purged in a throwaway root in $(($(date +%s) - start)) s"
