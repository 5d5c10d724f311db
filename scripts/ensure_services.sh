#!/usr/bin/env bash
# Make sure the PostgreSQL and Redis servers the tests use are up on 127.0.0.1 (start them if installed but down),
# and the Debian tools some tests drive are installed.
set -u
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Debian packages some tests drive (command -> package): installed when missing and apt can, never started here.
for pair in nginx:nginx-light redis-server:redis-server prometheus:prometheus promtool:prometheus chromium:chromium; do
  command -v "${pair%%:*}" >/dev/null 2>&1 && continue
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${pair#*:}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pair#*:}" >/dev/null 2>&1 \
      || (apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
          --no-install-recommends "${pair#*:}" >/dev/null 2>&1) \
      || echo "warning: could not install ${pair#*:} (the tests that need it skip)"
  fi
done

if ! up 5432; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
fi
if ! up 6379; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
fi
for i in $(seq 1 50); do up 5432 && up 6379 && exit 0; sleep 0.2; done
up 5432 || echo "warning: PostgreSQL is not reachable on 127.0.0.1:5432 (its tests fail in CI, skip elsewhere)"
up 6379 || echo "warning: Redis is not reachable on 127.0.0.1:6379 (its tests fail in CI, skip elsewhere)"
exit 0
