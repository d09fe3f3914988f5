#!/usr/bin/env bash
# Installs the peer brokers that `npm run bench` measures Ferry against: Debian's nats-server
# (JetStream) and redis-server (Redis Streams). The benchmark starts its own instances on free
# ports with temp data dirs, so a system-wide service left running by the package would only
# compete for the two shared cores and hold port 6379: this script keeps the packages from
# starting one, and stops one that runs anyway.
#
# Idempotent: a second run installs nothing and stops nothing that is not there. Needs root.
set -euo pipefail

REDIS_SYSTEM_PORT=6379          # where Debian's redis-server service listens
REDIS_PID_FILE=/run/redis/redis-server.pid
POLICY_RC=/usr/sbin/policy-rc.d # Debian's hook that lets an installer refuse service starts

if [ "$(id -u)" -ne 0 ]; then
  echo "install-peers: run as root (apt-get install needs it)" >&2
  exit 1
fi

have_all() {
  command -v nats-server >/dev/null && command -v redis-server >/dev/null && command -v redis-cli >/dev/null
}

if have_all; then
  echo "install-peers: nats-server and redis-server already installed"
else
  # Exit code 101 from policy-rc.d means "action forbidden": invoke-rc.d then skips starting the
  # services during the install. Only add the hook if none exists, and remove only our own.
  added_policy=0
  if [ ! -e "$POLICY_RC" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
    chmod +x "$POLICY_RC"
    added_policy=1
  fi
  cleanup_policy() { if [ "$added_policy" -eq 1 ]; then rm -f "$POLICY_RC"; fi; }
  trap cleanup_policy EXIT
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y nats-server redis-server
  cleanup_policy
  trap - EXIT
fi

# Disable the services for the next boot where systemd is in charge (no-op in a container).
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl disable --now redis-server.service 2>/dev/null || true
  systemctl disable --now nats-server.service 2>/dev/null || true
fi

# A system redis may still be running (installed earlier, or started without invoke-rc.d).
# Stop it by its own PID file or its own shutdown command, never by process name.
if ss -ltn "sport = :$REDIS_SYSTEM_PORT" | grep -q LISTEN; then
  if [ -s "$REDIS_PID_FILE" ]; then
    pid=$(cat "$REDIS_PID_FILE")
    echo "install-peers: stopping the system redis-server (pid $pid from $REDIS_PID_FILE)"
    kill "$pid" 2>/dev/null || true
  else
    echo "install-peers: stopping the system redis-server on port $REDIS_SYSTEM_PORT"
    redis-cli -p "$REDIS_SYSTEM_PORT" shutdown nosave || true
  fi
  for _ in $(seq 1 50); do
    ss -ltn "sport = :$REDIS_SYSTEM_PORT" | grep -q LISTEN || break
    sleep 0.1
  done
fi

echo "install-peers: $(nats-server --version 2>&1 | head -1); $(redis-server --version | head -1)"
ss -ltnp | grep -E ":(${REDIS_SYSTEM_PORT}|4222)\b" && echo "install-peers: warning: a peer port is still in use" >&2 || true
