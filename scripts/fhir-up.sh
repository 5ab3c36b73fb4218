#!/usr/bin/env bash
# Start the project's HAPI FHIR JPA test server (hapi/: FHIR R4, in-memory H2) in
# the background, bound to 127.0.0.1, and print its FHIR base URL as the last line
# of stdout. Everything else goes to stderr.
#
#   FHIR_PORT            port to serve on (default 8090)
#   FHIR_UP_TIMEOUT      seconds to wait for /fhir/metadata (default 300)
#   FHIR_JAVA_OPTS       JVM options (default "-Xmx1g -XX:+UseSerialGC")
#
# Builds hapi/target/trialcds-hapi.jar with Maven when it is missing or older than
# hapi/pom.xml or anything under hapi/src. Reuses a server that an earlier
# fhir-up started and that still answers on the port. Stop it with fhir-down.sh.
#
# Exit codes: 0 up (URL printed), 1 build/start failure, 3 java (17+) or mvn missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${FHIR_PORT:-8090}"
TIMEOUT="${FHIR_UP_TIMEOUT:-300}"
JAVA_OPTS="${FHIR_JAVA_OPTS:--Xmx1g -XX:+UseSerialGC}"
HAPI_DIR="$ROOT/hapi"
JAR="$HAPI_DIR/target/trialcds-hapi.jar"
VAR="$ROOT/var"
PID_FILE="$VAR/hapi.pid"
PORT_FILE="$VAR/hapi.port"
LOG="$VAR/hapi.log"
BASE_URL="http://127.0.0.1:${PORT}/fhir"
# Set by FhirServerConfig: tells this server apart from anything else on the port.
MARKER="trialcds HAPI FHIR R4 test server"

say() { echo "fhir-up: $*" >&2; }

if ! [[ "$PORT" =~ ^[0-9]+$ ]]; then
	say "FHIR_PORT must be a number, got '$PORT'"
	exit 1
fi

mkdir -p "$VAR"

# --- one fhir-up at a time (two test sessions starting together share one server)
if command -v flock >/dev/null 2>&1; then
	exec 9>"$VAR/hapi.lock"
	flock 9
fi

# --- HTTP helpers (curl, else python3)
http_get() { # url -> body on stdout, non-zero if not HTTP 200
	if command -v curl >/dev/null 2>&1; then
		curl -fsS --max-time 5 "$1" 2>/dev/null
	else
		python3 - "$1" <<'PY' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
    sys.stdout.write(r.read().decode("utf-8", "replace"))
PY
	fi
}
port_open() { # is anything listening on 127.0.0.1:PORT?
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}
is_our_hapi() { # does our HAPI answer /fhir/metadata on the port?
	local body
	body="$(http_get "$BASE_URL/metadata")" || return 1
	[[ "$body" == *"$MARKER"* ]]
}
pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }
log_tail() {
	if [[ -f "$LOG" ]]; then
		say "last 40 lines of $LOG:"
		tail -n 40 "$LOG" >&2
	fi
}

# --- reuse a server from an earlier fhir-up
old_pid="$(cat "$PID_FILE" 2>/dev/null || true)"
old_port="$(cat "$PORT_FILE" 2>/dev/null || true)"
if pid_alive "$old_pid" && [[ -n "$old_port" && "$old_port" != "$PORT" ]]; then
	say "a HAPI from an earlier fhir-up (pid $old_pid) runs on port $old_port, not $PORT;"
	say "run 'make fhir-down' first, or use FHIR_PORT=$old_port"
	exit 1
fi
if is_our_hapi; then
	say "reusing the HAPI FHIR server already answering on port $PORT"
	echo "$BASE_URL"
	exit 0
fi
if pid_alive "$old_pid"; then
	# ours, on this port, but not answering (yet): still starting or hung. Restart it.
	say "HAPI pid $old_pid does not answer on port $PORT; stopping it and starting afresh"
	kill "$old_pid" 2>/dev/null || true
	for _ in $(seq 1 30); do pid_alive "$old_pid" || break; sleep 1; done
	pid_alive "$old_pid" && kill -9 "$old_pid" 2>/dev/null || true
fi
rm -f "$PID_FILE" "$PORT_FILE"
if port_open; then
	say "port $PORT on 127.0.0.1 is taken by something that is not this project's HAPI;"
	say "free it or choose another FHIR_PORT"
	exit 1
fi

# --- toolchain
if ! command -v java >/dev/null 2>&1; then
	say "java not found: the HAPI FHIR test server needs a Java 17+ runtime (apt-get install openjdk-17-jdk-headless)"
	exit 3
fi
java_major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p' | head -n 1)"
java_major="${java_major#1.}"
if ! [[ "$java_major" =~ ^[0-9]+$ ]] || ((java_major < 17)); then
	say "java ${java_major:-?} found, but the HAPI FHIR test server needs Java 17+"
	exit 3
fi

# --- build when the jar is missing or older than its sources
needs_build=0
if [[ ! -f "$JAR" ]]; then
	needs_build=1
elif [[ -n "$(find "$HAPI_DIR/pom.xml" "$HAPI_DIR/src" -newer "$JAR" -print -quit)" ]]; then
	needs_build=1
fi
if ((needs_build)); then
	if ! command -v mvn >/dev/null 2>&1; then
		say "mvn not found: building the HAPI FHIR test server needs Maven 3.8+ (apt-get install maven)"
		exit 3
	fi
	say "building $JAR with Maven; the first build downloads ~250 MB of dependencies from Maven Central into ~/.m2 and can take minutes"
	started=$SECONDS
	# (sed: Maven 3.8 -q still writes bare colour-reset codes; pipefail keeps mvn's status)
	if ! mvn -q -B -Dstyle.color=never -f "$HAPI_DIR/pom.xml" -DskipTests package 2>&1 |
		sed -e 's/\x1b\[[0-9;]*m//g' -e '/^$/d' >&2; then
		say "Maven build failed (see the output above)"
		exit 1
	fi
	[[ -f "$JAR" ]] || { say "Maven finished but $JAR is missing"; exit 1; }
	touch "$JAR"
	say "built in $((SECONDS - started)) s"
fi

# --- start
say "starting HAPI FHIR on 127.0.0.1:$PORT (log: $LOG)"
# shellcheck disable=SC2086  # JAVA_OPTS is a list of options
if command -v setsid >/dev/null 2>&1; then
	# its own session: a Ctrl-C in the caller's terminal does not take it down
	setsid java $JAVA_OPTS -jar "$JAR" --server.port="$PORT" --server.address=127.0.0.1 \
		>"$LOG" 2>&1 </dev/null 9>&- &
else
	nohup java $JAVA_OPTS -jar "$JAR" --server.port="$PORT" --server.address=127.0.0.1 \
		>"$LOG" 2>&1 </dev/null 9>&- &
fi
pid=$!
echo "$pid" >"$PID_FILE"
echo "$PORT" >"$PORT_FILE"

started=$SECONDS
while :; do
	if ! pid_alive "$pid"; then
		say "HAPI (pid $pid) exited during start-up"
		log_tail
		rm -f "$PID_FILE" "$PORT_FILE"
		exit 1
	fi
	if is_our_hapi; then
		break
	fi
	if ((SECONDS - started >= TIMEOUT)); then
		say "HAPI did not answer $BASE_URL/metadata within ${TIMEOUT} s; stopping it"
		log_tail
		kill "$pid" 2>/dev/null || true
		rm -f "$PID_FILE" "$PORT_FILE"
		exit 1
	fi
	sleep 1
done
say "HAPI FHIR up in $((SECONDS - started)) s (pid $pid)"
echo "$BASE_URL"
