#!/usr/bin/env bash
# ensure-infra.sh — make sure the PostgreSQL and RabbitMQ that ordersaga's
# defaults point at (contract §1) are installed, running and usable:
#
#   PostgreSQL  127.0.0.1:5432, user postgres, no password (trust)
#   RabbitMQ    127.0.0.1:5672, guest/guest, administrator on vhost "/",
#               management API on http://127.0.0.1:15672
#   Chromium    Debian's chromium, for the console's browser tests
#
# usage: scripts/ensure-infra.sh [-v] [--databases [NAME...]]
#   -v           also say what was checked when nothing had to change
#   --databases  also create these databases if missing (default: every
#                participant's, from saga/saga.conf)
#
# It is idempotent and silent when everything is already in place, so `make
# test` and `make run` can call it every time (the fast path only talks to
# the servers over TCP: the Erlang CLI tools take ~1 s per call, so they are
# used only when something has to be repaired). Debian packages, no systemd:
# services are started the way the machine image starts them.
set -euo pipefail

readonly PG_HOST=127.0.0.1 PG_PORT=5432 PG_USER=postgres
readonly AMQP_HOST=127.0.0.1 AMQP_PORT=5672
readonly MGMT_URL=http://127.0.0.1:15672 RABBIT_USER=guest RABBIT_PASS=guest
readonly PROMETHEUS_URL=http://127.0.0.1:15692/metrics
readonly PG_DEADLINE=60 RABBIT_DEADLINE=90 MGMT_DEADLINE=60
# RabbitMQ's file-descriptor limit: every vhost's message stores and every
# classic queue hold descriptors, and with the usual soft limit of 1024 a
# test run (a vhost per test, the saga's whole topology in each) exhausts
# them: the broker then makes every vhost creation and deletion wait for a
# free descriptor, for minutes.
readonly RABBIT_NOFILE=65536 RABBIT_MIN_NOFILE=16384
readonly HBA_MARKER='# ordersaga: trust local TCP for the dev user (scripts/ensure-infra.sh)'

verbose=0
want_databases=0
databases=()
changes=()

usage() { sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; }

while (($#)); do
	case $1 in
	-v | --verbose) verbose=1 ;;
	--databases)
		want_databases=1
		# Every following non-flag argument is a database name.
		while (($# > 1)) && [[ $2 != -* ]]; do databases+=("$2"); shift; done
		;;
	-h | --help) usage; exit 0 ;;
	*) echo "ensure-infra: unknown argument '$1' (try --help)" >&2; exit 2 ;;
	esac
	shift
done
if ((want_databases)) && ((${#databases[@]} == 0)); then
	# "participant NAME PORT DATABASE TIMELINE" lines name each one's database.
	mapfile -t databases < <(awk '$1 == "participant" {print $4}' "$(dirname "${BASH_SOURCE[0]}")/../saga/saga.conf")
fi

say() { echo "ensure-infra: $*"; }
info() { if ((verbose)); then say "$@"; fi; }
die() { echo "ensure-infra: error: $*" >&2; exit 1; }
# changed records an action for the final summary and announces it at once,
# so a slow step (apt, first boot of RabbitMQ) never looks like a hang.
changed() { changes+=("$1"); say "$1"; }

# as_root lets a developer without a root shell use the script through sudo;
# CI and the dev machines run as root, where it is a plain call. Every
# command that may leave a daemon behind goes through here, and 9>&- keeps
# our lock fd out of it: a daemon inheriting it would hold the lock forever.
as_root() {
	if ((EUID == 0)); then
		"$@" 9>&-
	elif command -v sudo >/dev/null; then
		sudo -n "$@" 9>&-
	else
		die "need root for: $* (run as root or install sudo)"
	fi
}

apt_updated=0
apt_install() {
	if ((!apt_updated)); then
		changed "running apt-get update"
		as_root apt-get update -qq >/dev/null
		apt_updated=1
	fi
	changed "installing $* (apt-get)"
	# Package postinst scripts try to start the service and fail without an
	# init system; we start services ourselves right after, so that noise is
	# dropped with stdout. Real errors still arrive on stderr.
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "$@" >/dev/null
}

# wait_until polls a check until it passes or the deadline (seconds) expires.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.5
	done
}

# tcp_open is bash's /dev/tcp behind a timeout, so a filtered port cannot hang us.
tcp_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

log_tail() {
	local f
	for f in "$@"; do
		if [[ -r $f ]]; then
			echo "--- last lines of $f" >&2
			tail -n 15 "$f" >&2
		fi
	done
}

# --- PostgreSQL --------------------------------------------------------------

# psql must not find a password anywhere (environment, ~/.pgpass): the
# services connect without one, so only a real trust rule counts as working.
pg_psql() {
	env -u PGPASSWORD PGPASSFILE=/nonexistent/ordersaga-no-pgpass PGCONNECT_TIMEOUT=5 \
		psql -X -w -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres "$@"
}
pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2 >/dev/null 2>&1; }

# pg_cluster prints "VERSION NAME STATE" of the Debian cluster on our port.
pg_cluster() {
	command -v pg_lsclusters >/dev/null || return 0
	pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p { print $1, $2, $4; exit }'
}

pg_newest_server() {
	local d
	for d in /usr/lib/postgresql/*/bin/postgres; do
		if [[ -x $d ]]; then basename "${d%/bin/postgres}"; fi
	done | sort -V | tail -n 1
}

start_postgres() {
	if [[ -z $(pg_newest_server) ]] || ! command -v pg_ctlcluster >/dev/null; then
		apt_install postgresql postgresql-client
	fi
	local ver name state
	read -r ver name state < <(pg_cluster) || true
	if [[ -z ${ver:-} ]]; then
		if [[ -n $(pg_lsclusters -h 2>/dev/null) ]]; then
			# Someone's cluster sits on another port; moving it is their call.
			die "no PostgreSQL cluster uses port $PG_PORT (pg_lsclusters: $(pg_lsclusters -h | awk '{printf "%s/%s:%s ", $1, $2, $3}'))"
		fi
		ver=$(pg_newest_server)
		changed "creating PostgreSQL cluster $ver/main on port $PG_PORT"
		as_root pg_createcluster -p "$PG_PORT" "$ver" main --start >/dev/null
		return
	fi
	if [[ $state != online* ]]; then
		changed "starting PostgreSQL $ver/$name"
		as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start ||
			{ log_tail "/var/log/postgresql/postgresql-$ver-$name.log"; die "PostgreSQL $ver/$name did not start"; }
		return
	fi
	# Running, yet 127.0.0.1 refuses: the cluster listens elsewhere only.
	local listen
	listen=$(pg_conftool -s "$ver" "$name" show listen_addresses 2>/dev/null || echo localhost)
	if [[ ! $listen =~ (^|[ ,])(localhost|127\.0\.0\.1|\*|0\.0\.0\.0)($|[ ,]) ]]; then
		changed "adding 127.0.0.1 to listen_addresses of PostgreSQL $ver/$name and restarting it"
		as_root pg_conftool "$ver" "$name" set listen_addresses "${listen:+$listen,}127.0.0.1"
		as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" restart
	fi
}

ensure_trust() {
	local err
	err=$(pg_psql -tAc 'select 1' 2>&1 >/dev/null) && return 0
	if [[ ! $err =~ password|pg_hba\.conf|authentication ]]; then
		die "cannot query PostgreSQL as $PG_USER on $PG_HOST:$PG_PORT: $err"
	fi
	local ver name _state hba
	read -r ver name _state < <(pg_cluster) || true
	[[ -n ${ver:-} ]] || die "PostgreSQL on $PG_HOST:$PG_PORT wants a password for $PG_USER and is not a Debian cluster this script can configure: $err"
	hba=$(pg_conftool -s "$ver" "$name" show hba_file 2>/dev/null || echo "/etc/postgresql/$ver/$name/pg_hba.conf")
	# The marker keeps us from stacking rules forever if trust still fails.
	grep -qxF "$HBA_MARKER" "$hba" && die "pg_hba.conf already trusts 127.0.0.1 but $PG_USER still cannot connect: $err"
	changed "allowing $PG_USER on 127.0.0.1 without password (top of $hba) and reloading PostgreSQL"
	local tmp
	tmp=$(mktemp)
	# pg_hba.conf is first-match, so our rules must come before any host line.
	printf '%s\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n\n' "$HBA_MARKER" >"$tmp"
	as_root cat "$hba" >>"$tmp"
	# Writing through tee keeps the file's owner and mode.
	as_root tee "$hba" <"$tmp" >/dev/null
	rm -f "$tmp"
	as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" reload
	wait_until 10 pg_psql -tAc 'select 1' >/dev/null 2>&1 ||
		die "PostgreSQL still refuses $PG_USER without password after editing $hba"
}

ensure_postgres() {
	if ! command -v psql >/dev/null || ! command -v pg_isready >/dev/null; then
		# A server may already run (another install, a container): then only
		# the client is missing.
		if tcp_open "$PG_HOST" "$PG_PORT"; then apt_install postgresql-client; else apt_install postgresql postgresql-client; fi
	fi
	if ! pg_ready; then
		start_postgres
		if ! wait_until "$PG_DEADLINE" pg_ready; then
			local ver name _s
			read -r ver name _s < <(pg_cluster) || true
			log_tail "/var/log/postgresql/postgresql-${ver:-*}-${name:-main}.log"
			die "PostgreSQL not accepting connections on $PG_HOST:$PG_PORT after ${PG_DEADLINE}s"
		fi
	fi
	ensure_trust
	info "PostgreSQL ready on $PG_HOST:$PG_PORT (user $PG_USER, trust)"
}

ensure_databases() {
	local db existing err
	for db in "${databases[@]}"; do
		# Names go into SQL below; the services only ever need plain ones.
		[[ $db =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "invalid database name '$db'"
	done
	existing=$(pg_psql -tAc 'select datname from pg_database') ||
		die "cannot list databases on $PG_HOST:$PG_PORT"
	for db in "${databases[@]}"; do
		if grep -qxF "$db" <<<"$existing"; then
			info "database $db exists"
			continue
		fi
		changed "creating database $db"
		if ! err=$(pg_psql -c "create database \"$db\"" 2>&1); then
			# A parallel run (two `make test`s) may have won the race.
			pg_psql -tAc "select 1 from pg_database where datname = '$db'" | grep -q 1 ||
				die "cannot create database $db: $err"
		fi
	done
}

# --- RabbitMQ ----------------------------------------------------------------

amqp_open() { tcp_open "$AMQP_HOST" "$AMQP_PORT"; }
amqp_closed() { ! amqp_open; }

rabbit_node_up() { as_root timeout 20 rabbitmqctl -q ping >/dev/null 2>&1; }

rabbit_logs() { log_tail /var/log/rabbitmq/startup_err /var/log/rabbitmq/rabbit@*.log; }

start_rabbit() {
	command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
	if rabbit_node_up; then
		# The Erlang node runs but AMQP is closed: the app was stopped
		# (rabbitmqctl stop_app) or is still booting; start_app covers both.
		changed "starting the RabbitMQ application (node was up, app stopped)"
		as_root timeout "$RABBIT_DEADLINE" rabbitmqctl -q start_app >/dev/null 2>&1 || true
	else
		changed "starting RabbitMQ (rabbitmq-server -detached, $RABBIT_NOFILE file descriptors)"
		rabbit_server_detached
	fi
}

# rabbit_server_detached starts the node with RABBIT_NOFILE descriptors (or
# the hard limit, where that cannot be raised). Debian's rabbitmq-server,
# run as root, switches to the rabbitmq user with su, whose PAM session
# puts the limit back to 1024; so it is run as that user already, through
# setpriv, which keeps the limit. -detached prints a harmless "PID file not
# written" warning.
rabbit_server_detached() {
	local as_rabbitmq=
	if command -v setpriv >/dev/null && id -u rabbitmq >/dev/null 2>&1; then
		as_rabbitmq="setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups env HOME=/var/lib/rabbitmq"
	fi
	as_root bash -c "ulimit -n $RABBIT_NOFILE 2>/dev/null || ulimit -n \"\$(ulimit -Hn)\"; cd /var/lib/rabbitmq && exec $as_rabbitmq rabbitmq-server -detached" >/dev/null 2>&1 ||
		{ rabbit_logs; die "rabbitmq-server -detached failed"; }
}

# rabbit_nofile prints the soft descriptor limit of the process listening on
# the AMQP port (nothing when it cannot be read: not ours, or no ss).
rabbit_nofile() {
	local pid
	pid=$(ss -Htlnp "sport = :$AMQP_PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2) || true
	[[ -n $pid && -r /proc/$pid/limits ]] || return 0
	awk '/^Max open files/ {print $4}' "/proc/$pid/limits"
}

# ensure_rabbit_nofile restarts a running node whose descriptor limit is
# below RABBIT_MIN_NOFILE (a node started by hand or by the machine's image
# with the shell's 1024) with RABBIT_NOFILE. Its durable queues and
# messages survive the restart; clients reconnect. Once raised, later runs
# find it so and do nothing.
ensure_rabbit_nofile() {
	local n
	n=$(rabbit_nofile)
	[[ $n =~ ^[0-9]+$ ]] && ((n < RABBIT_MIN_NOFILE)) || return 0
	changed "restarting RabbitMQ: its file-descriptor limit is $n, below $RABBIT_MIN_NOFILE (raising it to $RABBIT_NOFILE)"
	as_root timeout 120 rabbitmqctl -q stop >/dev/null 2>&1 || { rabbit_logs; die "rabbitmqctl stop failed"; }
	wait_until "$RABBIT_DEADLINE" amqp_closed ||
		die "RabbitMQ still listening on $AMQP_PORT after rabbitmqctl stop"
	rabbit_server_detached
}

# mgmt_get fills $mgmt_code ("000" when nothing listens) and $mgmt_body.
mgmt_get() {
	local out
	out=$(curl -s -m 5 -u "$RABBIT_USER:$RABBIT_PASS" -w '\n%{http_code}' "$MGMT_URL$1" 2>/dev/null) || true
	mgmt_code=${out##*$'\n'}
	mgmt_body=${out%$'\n'*}
	[[ -n $mgmt_code ]] || mgmt_code=000
}
mgmt_listening() { mgmt_get /api/overview; [[ $mgmt_code != 000 ]]; }

# prometheus_listening: the rabbitmq_prometheus plugin answers (the alert
# rules' live test reads the broker's per-queue series from it, as
# Prometheus does in compose and the chart).
prometheus_listening() { curl -fsS -o /dev/null --max-time 5 "$PROMETHEUS_URL"; }

# guest_ok: administrator (the tests create vhosts through the API) with full
# permissions on "/" (the services' default AMQP_URL).
guest_ok() {
	mgmt_get /api/whoami
	[[ $mgmt_code == 200 && $mgmt_body == *administrator* ]] || return 1
	mgmt_get /api/permissions/%2F/"$RABBIT_USER"
	[[ $mgmt_code == 200 && $mgmt_body == *'"configure":".*"'* && $mgmt_body == *'"write":".*"'* && $mgmt_body == *'"read":".*"'* ]]
}

fix_guest() {
	local users tags
	users=$(as_root rabbitmqctl -q list_users 2>/dev/null) || die "rabbitmqctl list_users failed"
	if ! grep -q "^${RABBIT_USER}[[:space:]]" <<<"$users"; then
		changed "creating RabbitMQ user $RABBIT_USER"
		as_root rabbitmqctl -q add_user "$RABBIT_USER" "$RABBIT_PASS" >/dev/null
	elif ! as_root rabbitmqctl -q authenticate_user "$RABBIT_USER" "$RABBIT_PASS" >/dev/null 2>&1; then
		changed "resetting RabbitMQ user $RABBIT_USER's password to the contract default"
		as_root rabbitmqctl -q change_password "$RABBIT_USER" "$RABBIT_PASS" >/dev/null
	fi
	# list_users prints "guest<TAB>[administrator, monitoring]".
	tags=$(awk -v u="$RABBIT_USER" -F '\t' '$1 == u { gsub(/[][,]/, " ", $2); print $2 }' <<<"$users")
	if [[ " $tags " != *" administrator "* ]]; then
		changed "tagging RabbitMQ user $RABBIT_USER as administrator"
		# set_user_tags replaces the list, so keep what was there.
		# shellcheck disable=SC2086 # word splitting of the tag list is wanted
		as_root rabbitmqctl -q set_user_tags "$RABBIT_USER" administrator $tags >/dev/null
	fi
	if ! as_root rabbitmqctl -q list_vhosts name 2>/dev/null | grep -qx /; then
		changed "creating RabbitMQ vhost /"
		as_root rabbitmqctl -q add_vhost / >/dev/null
	fi
	if ! as_root rabbitmqctl -q list_user_permissions "$RABBIT_USER" 2>/dev/null |
		awk -F '\t' '$1 == "/" && $2 == ".*" && $3 == ".*" && $4 == ".*" { found = 1 } END { exit !found }'; then
		changed "granting $RABBIT_USER full permissions on vhost /"
		as_root rabbitmqctl -q set_permissions -p / "$RABBIT_USER" '.*' '.*' '.*' >/dev/null
	fi
}

management_enabled() {
	as_root rabbitmq-plugins -q list -e -m 2>/dev/null | grep -qx rabbitmq_management
}

ensure_rabbitmq() {
	if amqp_open; then
		ensure_rabbit_nofile
	fi
	if ! amqp_open; then
		start_rabbit
		if ! wait_until "$RABBIT_DEADLINE" amqp_open; then
			rabbit_logs
			die "RabbitMQ not accepting AMQP on $AMQP_HOST:$AMQP_PORT after ${RABBIT_DEADLINE}s"
		fi
	fi
	if ! mgmt_listening; then
		if ! management_enabled; then
			changed "enabling the RabbitMQ management plugin"
			as_root rabbitmq-plugins -q enable rabbitmq_management >/dev/null ||
				die "rabbitmq-plugins enable rabbitmq_management failed"
		fi
		if ! wait_until "$MGMT_DEADLINE" mgmt_listening; then
			rabbit_logs
			die "RabbitMQ management API not answering on $MGMT_URL after ${MGMT_DEADLINE}s"
		fi
	fi
	if ! prometheus_listening; then
		if ! as_root rabbitmq-plugins -q list -e -m 2>/dev/null | grep -qx rabbitmq_prometheus; then
			changed "enabling the RabbitMQ prometheus plugin"
			as_root rabbitmq-plugins -q enable rabbitmq_prometheus >/dev/null ||
				die "rabbitmq-plugins enable rabbitmq_prometheus failed"
		fi
		if ! wait_until "$MGMT_DEADLINE" prometheus_listening; then
			rabbit_logs
			die "RabbitMQ prometheus plugin not answering on $PROMETHEUS_URL after ${MGMT_DEADLINE}s"
		fi
	fi
	if ! guest_ok; then
		fix_guest
		guest_ok || die "RabbitMQ user $RABBIT_USER still not an administrator with access to / (management API said $mgmt_code: $mgmt_body)"
	fi
	info "RabbitMQ ready on $AMQP_HOST:$AMQP_PORT, management on $MGMT_URL ($RABBIT_USER/$RABBIT_PASS, administrator)"
}

# --- main ----------------------------------------------------------------------

# Two runs at once (parallel make targets) would race on starting servers
# and editing pg_hba.conf; the second simply waits for the first.
exec 9>"${TMPDIR:-/tmp}/ordersaga-ensure-infra.$EUID.lock"
if ! flock -w 2 9; then
	say "waiting for another ensure-infra.sh to finish"
	flock -w 600 9 || die "another ensure-infra.sh has held ${TMPDIR:-/tmp}/ordersaga-ensure-infra.$EUID.lock for 10 minutes"
fi

command -v curl >/dev/null || apt_install curl
# pdftotext: invoice-service's tests read its PDFs' text (with CI set, a
# test fails without it).
command -v pdftotext >/dev/null || apt_install poppler-utils
# The console's browser tests (tests/e2e) drive Debian's headless Chromium.
command -v chromium >/dev/null || apt_install chromium
ensure_postgres
if ((${#databases[@]})); then ensure_databases; fi
ensure_rabbitmq

if ((${#changes[@]})); then
	say "done: PostgreSQL $PG_HOST:$PG_PORT and RabbitMQ $AMQP_HOST:$AMQP_PORT ready (${#changes[@]} change(s) made)"
else
	info "nothing to change"
fi
