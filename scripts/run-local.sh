#!/usr/bin/env bash
# run-local.sh — what `make run` does: ordersaga on this machine, against the
# local PostgreSQL and RabbitMQ, from the binaries `make build` put in ./bin.
#
# usage: scripts/run-local.sh [-q]
#   -q   do not stream the service logs to the terminal (they stay in .run/)
#
# The services get their built-in defaults (contract §1). Other variables you
# export are passed through, e.g. `PAYMENT_LATENCY=2s LOG_LEVEL=debug make run`,
# except HTTP_ADDR and DATABASE_URL: one value for all the services would
# make them fight over one port or share one database. The participants,
# their ports and databases come from saga/saga.conf.
#
# Once the gateway is ready it starts the operator console (bin/sagactl
# console on http://127.0.0.1:3010, its audit log in .run/sagactl) and seeds the demo's catalogue (bin/demo
# -seed-only; with AUTH_MODE=required only if ADMIN_EMAIL and ADMIN_PASSWORD
# are set).
#
# TRACING=on also starts Jaeger (scripts/ensure-tools.sh builds it, once;
# config deploy/jaeger/local.yaml) before the services, and exports
# OTEL_EXPORTER_OTLP_ENDPOINT to them (unless already set), so every saga
# is exported as one trace: read one with
# curl http://127.0.0.1:16686/api/traces/TRACE_ID (the module's UI is only a
# placeholder; compose runs Jaeger's image with its full UI).
#
# Ctrl-C (or SIGTERM) stops the services and exits 0. If a service dies on
# its own, the others are stopped and the script exits 1. If the script is
# killed outright (SIGKILL), the services stop too: they run with
# STOP_WITH_PARENT=true, which has the kernel send them SIGTERM when their
# parent, this script, dies.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# An absolute path makes the processes recognisable (`make down` matches
# "$(CURDIR)/bin/<service>"); BIN_DIR points elsewhere for testing.
readonly BIN=${BIN_DIR:-$PWD/bin} RUN_DIR=./.run
readonly READY_DEADLINE=60 STOP_GRACE=10
# The saga's participants: its lines "participant NAME PORT DATABASE TIMELINE".
participants=() databases=()
declare -A PORT=([gateway]=3000 [console]=3010)
while read -r kind name port database _; do
	[[ $kind == participant ]] || continue
	participants+=("$name")
	databases+=("$database")
	PORT[$name]=$port
done <saga/saga.conf
((${#participants[@]})) || { echo "run-local: error: no participants in saga/saga.conf" >&2; exit 1; }
readonly participants databases
# Start order matters: the gateway's /readyz checks every participant.
readonly SERVICES=("${participants[@]}" gateway)
# The operator console is bin/sagactl console, started last.
readonly CONSOLE_ADDR=127.0.0.1:${PORT[console]}

stream_logs=1
case ${1:-} in
-q) stream_logs=0 ;;
'') ;;
-h | --help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
*) echo "run-local: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac

say() { echo "run-local: $*"; }
err() { echo "run-local: error: $*" >&2; }

declare -A pid_of=()
log_pids=()

show_log() {
	echo "--- last lines of $RUN_DIR/$1.log" >&2
	tail -n 20 "$RUN_DIR/$1.log" >&2 || true
	echo "---" >&2
}

# stop_all runs from the EXIT trap, so it must never abort half-way (no -e)
# and must be safe to run when nothing, or only some services, were started.
# shellcheck disable=SC2317 # only called from the trap
stop_all() {
	set +e
	trap '' INT TERM HUP # a second Ctrl-C must not leave services behind
	local name pid alive deadline=$((SECONDS + STOP_GRACE))
	for name in "${!pid_of[@]}"; do
		# Each service leads its own process group (setsid below): signal
		# the group so nothing it may have spawned outlives it.
		kill -TERM -- "-${pid_of[$name]}" 2>/dev/null || kill -TERM "${pid_of[$name]}" 2>/dev/null
	done
	while :; do
		alive=()
		for name in "${!pid_of[@]}"; do
			if kill -0 "${pid_of[$name]}" 2>/dev/null; then alive+=("$name"); fi
		done
		((${#alive[@]} && SECONDS < deadline)) || break
		sleep 0.2
	done
	for name in "${alive[@]}"; do
		err "$name did not stop within ${STOP_GRACE}s; killing it"
		kill -KILL -- "-${pid_of[$name]}" 2>/dev/null || kill -KILL "${pid_of[$name]}" 2>/dev/null
	done
	for pid in "${pid_of[@]}"; do wait "$pid" 2>/dev/null; done
	if ((${#log_pids[@]})); then
		sleep 0.3 # let the log streams print the shutdown lines
		kill "${log_pids[@]}" 2>/dev/null
		wait "${log_pids[@]}" 2>/dev/null
	fi
	if ((${#pid_of[@]})); then say "all services stopped"; fi
	pid_of=()
	log_pids=()
}

# Bash runs the EXIT trap's last status as the script's, so keep the real one.
trap 'rc=$?; stop_all; exit "$rc"' EXIT
trap 'echo; say "interrupted, stopping services"; exit 0' INT
trap 'say "SIGTERM received, stopping services"; exit 0' TERM
trap 'exit 0' HUP

# how_exited turns a wait status into words: 137 is "killed by SIGKILL".
how_exited() {
	if (($1 > 128)); then echo "was killed by SIG$(kill -l $(($1 - 128)))"; else echo "exited with status $1"; fi
}

port_in_use() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# start NAME [BINARY ARGS...]: the service NAME, from $BIN/NAME unless a
# binary and its arguments are given.
start() {
	local name=$1 log=$RUN_DIR/$1.log
	shift
	local cmd=("$BIN/$name")
	if (($#)); then cmd=("$BIN/$1" "${@:2}"); fi
	: >"$log" # a fresh log per run, so "last lines" are about this run
	# setsid: Ctrl-C in the terminal reaches only this script, which then
	# stops the services in order instead of them racing it. (Without job
	# control a background child never leads a group, so setsid execs in
	# place and $! is the service's own pid.)
	if [[ $name == jaeger ]]; then cmd=("$JAEGER" --config "$PWD/deploy/jaeger/local.yaml"); fi
	env -u HTTP_ADDR -u DATABASE_URL STOP_WITH_PARENT=true SAGACTL_STATE_DIR="$RUN_DIR/sagactl" \
		setsid "${cmd[@]}" >>"$log" 2>&1 </dev/null &
	pid_of[$name]=$!
	if ((stream_logs)); then
		# --pid: tail ends by itself within a second if this script is
		# SIGKILLed, and sed then sees EOF, so neither is left behind. Both
		# ignore SIGINT so that Ctrl-C still shows the services' last words;
		# stop_all ends them.
		(trap '' INT; exec tail -n +1 -F --pid=$$ "$log" 2>/dev/null) \
			> >(trap '' INT; exec sed -u "s/^/$(printf '%-16s| ' "$name")/") &
		log_pids+=($!)
	fi
}

wait_ready() {
	local name=$1 port=${PORT[$1]} pid=${pid_of[$1]} deadline=$((SECONDS + READY_DEADLINE)) answer path=/readyz
	if [[ $name == jaeger ]]; then path=/status; fi
	while :; do
		answer=$(curl -s -m 2 -w ' (HTTP %{http_code})' "http://127.0.0.1:$port$path" 2>/dev/null) || true
		[[ $answer == *'(HTTP 200)' ]] && break
		if ! kill -0 "$pid" 2>/dev/null; then
			local rc=0
			wait "$pid" || rc=$?
			unset 'pid_of[$name]'
			err "$name $(how_exited "$rc") before it was ready"
			show_log "$name"
			return 1
		fi
		if ((SECONDS >= deadline)); then
			err "$name not ready on :$port after ${READY_DEADLINE}s; last /readyz answer: ${answer:-none}"
			show_log "$name"
			return 1
		fi
		sleep 0.5
	done
	say "$name ready on http://127.0.0.1:$port"
}

# --- preflight: fail before touching anything -------------------------------

for name in "${SERVICES[@]}" sagactl; do
	[[ -x $BIN/$name ]] || { err "$BIN/$name not found: run 'make build' first"; exit 1; }
done
for name in "${SERVICES[@]}" console; do
	# An old copy still listening would answer our /readyz and hide a
	# failing new one.
	if port_in_use "${PORT[$name]}"; then
		err "port ${PORT[$name]} ($name) is already in use; is ordersaga already running? ($(ss -Htlnp "sport = :${PORT[$name]}" 2>/dev/null | awk '{print $NF}' | head -n 1))"
		exit 1
	fi
done
# Also installs curl, which the readiness checks below use.
scripts/ensure-infra.sh --databases "${databases[@]}"
mkdir -p "$RUN_DIR"

# --- start -------------------------------------------------------------------

# Mailpit, the development mail server notification-service sends to
# (SMTP_URL's default, contract §8): SMTP on 127.0.0.1:1025, its API on
# 127.0.0.1:8025, pinned and installed once by scripts/ensure-mailpit.sh.
# One already listening there (another run, compose's) is used as it is.
if port_in_use 1025 || port_in_use 8025; then
	say "something already listens on :1025 or :8025: using it as the mail server"
else
	mailpit=$(scripts/ensure-mailpit.sh) || { err "Mailpit could not be installed (scripts/ensure-mailpit.sh)"; exit 1; }
	: >"$RUN_DIR/mailpit.log"
	setsid "$mailpit" --smtp 127.0.0.1:1025 --listen 127.0.0.1:8025 >>"$RUN_DIR/mailpit.log" 2>&1 </dev/null &
	pid_of[mailpit]=$!
	deadline=$((SECONDS + READY_DEADLINE))
	until curl -sf -m 2 -o /dev/null http://127.0.0.1:8025/api/v1/messages; do
		if ! kill -0 "${pid_of[mailpit]}" 2>/dev/null || ((SECONDS >= deadline)); then
			err "Mailpit did not start"; show_log mailpit; exit 1
		fi
		sleep 0.2
	done
	say "mailpit ready: SMTP 127.0.0.1:1025, API http://127.0.0.1:8025/api/v1/messages"
fi

if [[ ${TRACING:-off} == on ]]; then
	JAEGER=$(scripts/ensure-tools.sh jaeger)
	PORT[jaeger]=13133 # its health check; OTLP/HTTP in on 4318, query API on 16686
	start jaeger
	wait_ready jaeger || exit 1
	export OTEL_EXPORTER_OTLP_ENDPOINT=${OTEL_EXPORTER_OTLP_ENDPOINT:-http://127.0.0.1:4318}
	say "tracing on: exporting to $OTEL_EXPORTER_OTLP_ENDPOINT; traces at http://127.0.0.1:16686/api/traces/TRACE_ID"
fi
for name in "${participants[@]}"; do start "$name"; done
for name in "${participants[@]}"; do wait_ready "$name" || exit 1; done
start gateway
wait_ready gateway || exit 1
start console sagactl console --addr "$CONSOLE_ADDR"
wait_ready console || exit 1

# The demo's catalogue (DEMO-* products), seeded by bin/demo -seed-only:
# idempotent, so every start does it. With AUTH_MODE=required it needs the
# administrator's login, so only when ADMIN_EMAIL and ADMIN_PASSWORD are set.
# A failed seed is reported, not fatal: the services run without it.
if [[ ! -x $BIN/demo ]]; then
	say "catalogue not seeded: $BIN/demo not found"
elif [[ ${AUTH_MODE:-off} == required && (-z ${ADMIN_EMAIL:-} || -z ${ADMIN_PASSWORD:-}) ]]; then
	say "catalogue not seeded: AUTH_MODE=required needs ADMIN_EMAIL and ADMIN_PASSWORD (the administrator's login)"
elif "$BIN/demo" -seed-only >"$RUN_DIR/seed.log" 2>&1; then
	say "catalogue seeded: DEMO-* products (GET http://127.0.0.1:${PORT[gateway]}/api/products; $RUN_DIR/seed.log)"
else
	err "seeding the catalogue failed, the services run without it: $(tail -n 1 "$RUN_DIR/seed.log")"
fi

cat <<EOF

  ordersaga is running (logs in $RUN_DIR/*.log)
    API          http://127.0.0.1:3000/api/orders
    API docs     http://127.0.0.1:3000/docs
    Console      http://$CONSOLE_ADDR/  (sagas, stuck sagas, dead letters, health)
    RabbitMQ UI  http://127.0.0.1:15672  (guest/guest)
    E-mails      http://127.0.0.1:8025/api/v1/messages  (Mailpit's API; compose's Mailpit has a UI there)
$(if [[ ${TRACING:-off} == on ]]; then echo "    traces       http://127.0.0.1:16686/api/traces/TRACE_ID  (the trace id: the traceparent response header)"; fi)
    try:
      curl -s -XPOST localhost:3000/api/orders -H 'Content-Type: application/json' -d '{"userId":"4f0c3a4e-0000-4000-8000-000000000001","total":4200}'
      curl -s -XPOST localhost:3000/api/orders -H 'Content-Type: application/json' -d '{"userId":"4f0c3a4e-0000-4000-8000-000000000001","items":[{"sku":"DEMO-MUG","quantity":2}]}'

  Ctrl-C stops everything.

EOF

# --- supervise ---------------------------------------------------------------

# wait -n returns when the first service exits; a signal interrupts it and
# the trap takes over. Any exit here is unexpected: nobody asked it to stop.
rc=0
wait -n -p dead "${pid_of[@]}" || rc=$?
for name in "${!pid_of[@]}"; do
	if [[ ${pid_of[$name]} == "${dead:-}" ]]; then
		unset 'pid_of[$name]'
		err "$name $(how_exited "$rc") unexpectedly; stopping the others"
		show_log "$name"
	fi
done
exit 1
