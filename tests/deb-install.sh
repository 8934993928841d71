#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the packages `make deb` built (DEB_DIR, default build-deb/) in a
# throwaway root and uses them, as CI does after `make deb` (.ci/run): dpkg
# -i of the four packages twice (install and reinstall) with their
# maintainer scripts, over a shmbus group made beforehand (one shmbus
# user after), both binaries' --version, pkg-config, the man pages; then
# the installed shmbusd run as its unit runs it (User=, RuntimeDirectory=,
# UMask=, ExecStart= with --group shmbus), one message through the
# installed `shmbus` and one through examples/pubsub.c built with
# pkg-config's flags, as a member of group shmbus, a user outside it
# refused, the segments the group's and closed to others; then dpkg
# --purge: no packaged file left, the user kept. About 20 s, 180 at most.
#
# The root: the script runs itself again in private mount and pid
# namespaces (unshare), mounts an overlay over / (lower: /, upper and work
# in a temporary directory) and chroots into it, with its own /dev/shm,
# /run and /tmp (tmpfs) and /proc, and the host's /dev bound in. The host's
# files, its dpkg database, /etc/passwd and /etc/group among them
# (checked), and its /dev/shm never change, every mount goes away with
# the namespace and every process with the pid namespace, on any exit.
# Needs root (CI runs as root), util-linux's unshare and setpriv, and
# overlayfs with /tmp on a file system it takes as upper layer (ext4,
# xfs, tmpfs; not an overlay, as / is in a Docker container). dpkg --root
# was not picked: it runs maintainer scripts outside the root unless they
# follow DPKG_ROOT, which adduser does not, and the binaries would still
# have to run in a chroot to find their library.
# Usage: tests/deb-install.sh [DEB_DIR]
set -euo pipefail

if [ "${1:-}" = --inside ]; then
  tmp=$2
  debs=$3
  root=$tmp/root
  # tests/clitest.sh's stop, wait_exit, wait_until and fail, and its
  # wait_socket on $dir/shmbus/$bus.sock: the system bus's socket here.
  # shellcheck source=tests/clitest.sh
  . tests/clitest.sh
  WAIT_TIMEOUT=10
  CLI_TIMEOUT=10
  dir=$root/run
  bus=default
  log=$tmp/shmbusd.log
  daemon=
  sub=
  cleanup() {
    if [ -n "$sub" ]; then stop "$sub" "pubsub sub"; fi
    if [ -n "$daemon" ]; then stop "$daemon" "shmbusd"; fi
  }
  trap cleanup EXIT
  # chroot, env and setpriv exec what they run: a command started in the
  # background with these arrays has the pid $! names (a function's would
  # be a subshell's).
  in_root=(chroot "$root" env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root LANG=C.UTF-8)
  in_root() { "${in_root[@]}" "$@"; }
  # as USER CMD...: CMD in the root as USER, with USER's groups.
  as() { "${in_root[@]}" setpriv --reuid "$1" --regid "$1" --init-groups "${@:2}"; }

  mkdir -p "$tmp/upper" "$tmp/work" "$root"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$tmp/upper,workdir=$tmp/work" "$root"
  mount --bind /dev "$root/dev"
  # This pid namespace's own /proc: the daemon's reaper reads its clients'.
  mount -t proc proc "$root/proc"
  # /run as a host has it, root's and 0755: clients trust the daemon that
  # owns /run/shmbus only when root holds the directories above it.
  mount -t tmpfs -o mode=0755 tmpfs "$root/run"
  for d in dev/shm tmp; do mount -t tmpfs -o mode=1777 tmpfs "$root/$d"; done
  mkdir "$root/tmp/debs"
  for deb in "$debs"/*.deb; do
    case $deb in *-dbgsym_*) ;; *) cp "$deb" "$root/tmp/debs/" ;; esac
  done
  cp examples/pubsub.c "$root/tmp/pubsub.c"

  # The group as an administrator may have made it before the package, to
  # let users in: postinst's adduser makes the user in it.
  in_root groupadd --system shmbus
  echo "-- dpkg -i, twice (install, then reinstall: postinst again)"
  in_root sh -c 'dpkg -i /tmp/debs/*.deb' >/dev/null
  in_root sh -c 'dpkg -i /tmp/debs/*.deb' >/dev/null
  [ "$(in_root getent passwd | grep -c '^shmbus:')" = 1 ] || fail "not one shmbus user after postinst"
  [ "$(in_root id -gn shmbus)" = shmbus ] || fail "the shmbus user's group is not shmbus"

  echo "-- versions"
  version=$(dpkg-deb -f "$(ls "$debs"/shmbusd_*.deb)" Version)
  in_root shmbus --version | grep -F "$version"
  in_root shmbusd --version | grep -F "$version"
  [ "$(in_root pkg-config --modversion shmbus)" = "$version" ] || fail "pkg-config --modversion shmbus is not $version"
  in_root test -d "/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/cmake/shmbus"
  if in_root sh -c 'command -v man' >/dev/null; then
    for page in shmbus shmbusd libshmbus; do in_root man -w "$page"; done
  fi

  echo "-- shmbusd as its unit runs it; a member of group shmbus and a stranger"
  # What systemd would do with the installed unit (no systemd here): its
  # RuntimeDirectory= with RuntimeDirectoryMode=, owned by User= and
  # Group=, then ExecStart= as that user with UMask=.
  unit=$root/lib/systemd/system/shmbusd.service
  key() { sed -n "s/^$1=//p" "$unit"; }
  user=$(key User)
  group=$(key Group)
  in_root install -d -o "$user" -g "$group" -m "$(key RuntimeDirectoryMode)" "/run/$(key RuntimeDirectory)"
  "${in_root[@]}" setpriv --reuid "$user" --regid "$group" --init-groups \
    sh -c "umask $(key UMask) && exec $(key ExecStart) --log-level warn" 2>"$log" &
  daemon=$!
  wait_socket "shmbusd as $user"
  in_root useradd --create-home --groups "$group" alice
  in_root useradd --create-home bob
  echo "deb-install" | as alice timeout 10 shmbus pub deb-cli
  as alice timeout 10 shmbus sub deb-cli --from oldest --count 1 | grep -F deb-install
  if as bob timeout 10 shmbus sub deb-cli --from oldest --count 1 2>/dev/null; then
    fail "bob, not in group $group, read the system bus"
  fi
  # examples/pubsub.c (the README's example) built with pkg-config's flags,
  # its subscriber seated before its publisher sends, on the topic the
  # CLI made.
  in_root sh -c 'cc -o /tmp/pubsub /tmp/pubsub.c $(pkg-config --cflags --libs shmbus)'
  : >"$root/tmp/sub.out"
  "${in_root[@]}" setpriv --reuid alice --regid alice --init-groups \
    /tmp/pubsub sub deb-cli 1 >"$root/tmp/sub.out" &
  sub=$!
  wait_until "pubsub sub seated" grep -q '^subscribed to deb-cli$' "$root/tmp/sub.out"
  as alice timeout 10 /tmp/pubsub pub deb-cli "from C"
  wait_exit "$sub" "pubsub sub" || fail "pubsub sub: exit status $?"
  sub=
  grep -F "from C" "$root/tmp/sub.out"
  # stat here, outside the root, knows the host's groups: compare gids.
  gid=$(in_root getent group "$group" | cut -d: -f3)
  for seg in "$root"/dev/shm/shmbus."$bus".*; do
    [ -e "$seg" ] || fail "no segment of bus $bus in /dev/shm"
    [ "$(stat -c %g "$seg")" = "$gid" ] || fail "$seg belongs to gid $(stat -c %g "$seg"), not $group's $gid"
    [ $((0$(stat -c %a "$seg") & 07)) = 0 ] || fail "$seg is open to others: mode $(stat -c %a "$seg")"
  done
  stop "$daemon" shmbusd
  daemon=

  echo "-- dpkg --purge"
  mapfile -t pkgs < <(for deb in "$root"/tmp/debs/*.deb; do dpkg-deb -f "$deb" Package; done)
  in_root dpkg --purge "${pkgs[@]}" >/dev/null
  # The user and group stay after purge, as Debian Policy 9.2.2 advises.
  in_root getent passwd shmbus >/dev/null || fail "purge removed the shmbus user"
  left=()
  for deb in "$root"/tmp/debs/*.deb; do
    while IFS= read -r f; do
      [ -e "$root/$f" ] || [ -L "$root/$f" ] && left+=("$f")
    done < <(dpkg-deb --fsys-tarfile "$deb" | tar -t | grep -v '/$' | sed 's|^\./||')
  done
  if [ "${#left[@]}" -gt 0 ]; then
    printf '  /%s\n' "${left[@]}"
    fail "packaged files left after purge"
  fi
  exit 0
fi

self=$(realpath "$0")
debs=$(realpath "${1:-build-deb}")
cd "$(dirname "$self")/.."
[ "$(id -u)" = 0 ] || { echo "deb-install.sh: needs root (mounts and chroot)"; exit 1; }
ls "$debs"/shmbusd_*.deb >/dev/null || { echo "deb-install.sh: no packages in $debs (make deb)"; exit 1; }
# What the host's dpkg says of these packages (other engineers may install
# other packages meanwhile), and its users and groups.
host_state() {
  for deb in "$debs"/*.deb; do
    dpkg-query -W -f '${Package} ${Version} ${Status}\n' "$(dpkg-deb -f "$deb" Package)" 2>&1 || true
  done
  cksum /etc/passwd /etc/group
}
state_before=$(host_state)
tmp=$(mktemp -d /tmp/shmbus-deb-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
# A pid namespace too: when its first process (the script --inside) ends,
# the kernel kills whatever it started, daemon included, however it ended;
# unshare kills it when unshare itself is killed (timeout's SIGTERM).
timeout --kill-after=10 180 unshare --mount --pid --fork --mount-proc --kill-child \
  --propagation private "$self" --inside "$tmp" "$debs"
[ "$(host_state)" = "$state_before" ] || {
  echo "the host's dpkg database, /etc/passwd or /etc/group changed"
  exit 1
}
echo "deb-install: packages installed, used and purged in a throwaway root in $(($(date +%s) - start)) s"
