#!/usr/bin/env bash
# Installs the system packages the integration tests need, only when something is missing:
#   postgresql-15   -> /usr/lib/postgresql/15/bin (initdb, pg_ctl, pg_basebackup, postgres)
#   patroni         -> /usr/bin/patroni, /usr/bin/patronictl
#   python3-consul  -> Patroni's Consul client
#   haproxy         -> /usr/sbin/haproxy
#   iproute2        -> ip (the network-fault lab: namespaces, veth pairs)
# and makes sure the `postgres` OS user exists (PostgreSQL refuses to run as root).
# Idempotent; prints nothing when everything is already present. Runs as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

PG_BIN_DIR=/usr/lib/postgresql/15/bin

fail() {
  echo "install-deps: $*" >&2
  exit 1
}

# package -> file that proves it is installed
declare -A PROBE=(
  [postgresql-15]="$PG_BIN_DIR/initdb $PG_BIN_DIR/pg_ctl $PG_BIN_DIR/pg_basebackup $PG_BIN_DIR/postgres $PG_BIN_DIR/pg_rewind"
  [patroni]="/usr/bin/patroni /usr/bin/patronictl"
  [haproxy]="/usr/sbin/haproxy"
  [iproute2]="/usr/sbin/ip /sbin/ip /usr/bin/ip /bin/ip"
)

missing=()
for pkg in postgresql-15 patroni haproxy; do
  for f in ${PROBE[$pkg]}; do
    if [ ! -x "$f" ]; then
      missing+=("$pkg")
      break
    fi
  done
done
# iproute2: any one of its usual paths will do.
if ! command -v ip >/dev/null 2>&1; then
  missing+=(iproute2)
fi
# Patroni runs /usr/bin/python3 (not whatever python3 is first in PATH).
if ! /usr/bin/python3 -c 'import consul' >/dev/null 2>&1; then
  missing+=(python3-consul)
fi

if [ "${#missing[@]}" -gt 0 ] && [ "$(id -u)" -ne 0 ]; then
  # Without root nothing can be installed. Only PostgreSQL is indispensable: without Patroni
  # the lab plays Patroni's role itself, and the benchmarks skip HAProxy when it is absent.
  if [[ " ${missing[*]} " == *" postgresql-15 "* ]]; then
    fail "missing Debian packages: ${missing[*]} — install them as root: apt-get install -y ${missing[*]}"
  fi
  echo "install-deps: not installed: ${missing[*]} (the Patroni lab falls back to playing Patroni itself; benchmarks skip HAProxy) — as root: apt-get install -y ${missing[*]}" >&2
  missing=()
fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  if ! apt-get update -qq >/dev/null; then
    fail "apt-get update failed (needed to install: ${missing[*]})"
  fi
  for pkg in "${missing[@]}"; do
    if ! apt-get install -y -qq --no-install-recommends "$pkg" >/tmp/install-deps-"$pkg".log 2>&1; then
      tail -n 20 /tmp/install-deps-"$pkg".log >&2 || true
      fail "could not install Debian package '$pkg' (apt-get install -y $pkg)"
    fi
    rm -f /tmp/install-deps-"$pkg".log
  done
  # Re-check that what was installed provides what the tests use.
  command -v ip >/dev/null 2>&1 || fail "iproute2 is installed but 'ip' is missing"
  for pkg in postgresql-15 patroni haproxy; do
    for f in ${PROBE[$pkg]}; do
      [ -x "$f" ] || fail "package '$pkg' is installed but $f is missing"
    done
  done
  /usr/bin/python3 -c 'import consul' >/dev/null 2>&1 || fail "package 'python3-consul' is installed but 'import consul' fails"
fi

# The Debian postgresql packages create this user; make sure of it either way.
if [ "$(id -u)" -eq 0 ] && ! getent passwd postgres >/dev/null; then
  getent group postgres >/dev/null || groupadd --system postgres
  useradd --system --gid postgres --home-dir /var/lib/postgresql --create-home \
    --shell /bin/bash --comment 'PostgreSQL administrator' postgres \
    || fail "could not create the 'postgres' OS user"
fi
