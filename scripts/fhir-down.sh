#!/usr/bin/env bash
# Stop the HAPI FHIR test server that scripts/fhir-up.sh started (var/hapi.pid).
# Idempotent: nothing running is not an error.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="$ROOT/var"
PID_FILE="$VAR/hapi.pid"
PORT_FILE="$VAR/hapi.port"

say() { echo "fhir-down: $*" >&2; }

JAR="$ROOT/hapi/target/trialcds-hapi.jar"

pid="$(cat "$PID_FILE" 2>/dev/null || true)"
if [[ -z "$pid" ]]; then
	# The pid file can be gone (make clean removes var/) while the server still runs:
	# look for a java running this checkout's own jar.
	for cmdline in /proc/[0-9]*/cmdline; do
		line="$(tr '\0' ' ' <"$cmdline" 2>/dev/null)" || continue
		if [[ "$line" == java\ * || "$line" == */java\ * ]] && [[ "$line" == *"-jar $JAR "* ]]; then
			pid="${cmdline#/proc/}"
			pid="${pid%/cmdline}"
			break
		fi
	done
fi
if [[ -z "$pid" ]]; then
	say "no HAPI FHIR server recorded in $PID_FILE or running from $JAR; nothing to stop"
	rm -f "$PORT_FILE"
	exit 0
fi
if ! kill -0 "$pid" 2>/dev/null; then
	say "HAPI FHIR (pid $pid) is not running"
	rm -f "$PID_FILE" "$PORT_FILE"
	exit 0
fi
# Guard against a recycled pid: only stop our own jar.
if [[ -r "/proc/$pid/cmdline" ]] && ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'trialcds-hapi.jar'; then
	say "pid $pid is not the HAPI FHIR test server any more; leaving it alone"
	rm -f "$PID_FILE" "$PORT_FILE"
	exit 0
fi

kill "$pid" 2>/dev/null || true
for _ in $(seq 1 30); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 1
done
if kill -0 "$pid" 2>/dev/null; then
	say "HAPI FHIR (pid $pid) did not stop within 30 s; killing it"
	kill -9 "$pid" 2>/dev/null || true
fi
rm -f "$PID_FILE" "$PORT_FILE"
say "stopped HAPI FHIR (pid $pid)"
