#!/usr/bin/env bash
# Make sure something answers at REDIS_URL; start a local redis-server if not.
set -euo pipefail
url="${REDIS_URL:-$(grep -s '^REDIS_URL=' .env | cut -d= -f2- || true)}"
url="${url:-redis://127.0.0.1:6379/0}"
ping() { uv run --no-sync python -c "import redis,sys; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=2).ping()" "$url" >/dev/null 2>&1; }
if ping; then exit 0; fi
case "$url" in
  redis://127.0.0.1*|redis://localhost*) ;;
  *) echo "ERROR: nothing answers at REDIS_URL=$url. Start Redis there or fix REDIS_URL." >&2; exit 1;;
esac
if ! command -v redis-server >/dev/null; then
  echo "ERROR: nothing answers at $url and redis-server is not installed." >&2
  echo "       Install it (Debian/Ubuntu: sudo apt-get install redis-server) or set REDIS_URL." >&2
  exit 1
fi
port=$(echo "$url" | sed -E 's#^redis://[^:/]+:?([0-9]*).*#\1#'); port=${port:-6379}
echo "Starting redis-server on 127.0.0.1:$port"
redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no >/dev/null
for _ in $(seq 1 50); do ping && exit 0; sleep 0.1; done
echo "ERROR: started redis-server but it does not answer at $url" >&2; exit 1
