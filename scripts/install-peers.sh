#!/usr/bin/env bash
# Installs the peer brokers that `npm run bench` measures Ferry against: Debian's nats-server
# (JetStream) and redis-server (Redis Streams), and for `npm run bench -- --cluster` and
# `npm run bench:failover` rabbitmq-server (quorum queues on three local nodes) and etcd-server
# (the store a Ferry cluster keeps its membership in). The benchmark starts its own instances on
# free ports with temp data dirs, so a system-wide service left running by a package would only
# compete for the two shared cores and hold well-known ports (6379, 5672, 2379, epmd's 4369): this
# script keeps the packages from starting one, and stops one that runs anyway.
#
# Idempotent: a second run installs nothing and stops nothing that is not there. Needs root.
set -euo pipefail

REDIS_SYSTEM_PORT=6379          # where Debian's redis-server service listens
REDIS_PID_FILE=/run/redis/redis-server.pid
RABBITMQ_SYSTEM_PORT=5672       # Debian's rabbitmq-server service (AMQP)
ETCD_SYSTEM_PORT=2379           # Debian's etcd service (client URL)
EPMD_SYSTEM_PORT=4369           # Erlang's port mapper, which a system RabbitMQ would start
POLICY_RC=/usr/sbin/policy-rc.d # Debian's hook that lets an installer refuse service starts

if [ "$(id -u)" -ne 0 ]; then
  echo "install-peers: run as root (apt-get install needs it)" >&2
  exit 1
fi

have_all() {
  command -v nats-server >/dev/null && command -v redis-server >/dev/null && command -v redis-cli >/dev/null &&
    [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] && command -v etcd >/dev/null
}

if have_all; then
  echo "install-peers: nats-server, redis-server, rabbitmq-server and etcd already installed"
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
  DEBIAN_FRONTEND=noninteractive apt-get install -y nats-server redis-server rabbitmq-server etcd-server
  cleanup_policy
  trap - EXIT
fi

# Disable the services for the next boot where systemd is in charge (no-op in a container).
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl disable --now redis-server.service 2>/dev/null || true
  systemctl disable --now nats-server.service 2>/dev/null || true
  systemctl disable --now rabbitmq-server.service 2>/dev/null || true
  systemctl disable --now etcd.service 2>/dev/null || true
  systemctl disable --now epmd.socket epmd.service 2>/dev/null || true
fi

# Without systemd a system RabbitMQ or etcd can only have been started by hand or by an init
# script that policy-rc.d did not stop; stop it through its own tools, never by process name.
if ss -ltn "sport = :$RABBITMQ_SYSTEM_PORT" | grep -q LISTEN; then
  echo "install-peers: stopping the system rabbitmq-server on port $RABBITMQ_SYSTEM_PORT"
  rabbitmqctl stop 2>/dev/null || true
fi
if ss -ltn "sport = :$EPMD_SYSTEM_PORT" | grep -q LISTEN; then
  echo "install-peers: stopping the system epmd on port $EPMD_SYSTEM_PORT (the benchmark runs its own)"
  epmd -kill 2>/dev/null || true
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

echo "install-peers: $(nats-server --version 2>&1 | head -1); $(redis-server --version | head -1);" \
  "rabbitmq-server $(dpkg-query -W -f='${Version}' rabbitmq-server); $(etcd --version | head -1)"
ss -ltnp | grep -E ":(${REDIS_SYSTEM_PORT}|4222|${RABBITMQ_SYSTEM_PORT}|${ETCD_SYSTEM_PORT}|${EPMD_SYSTEM_PORT})\b" &&
  echo "install-peers: warning: a peer port is still in use" >&2 || true
