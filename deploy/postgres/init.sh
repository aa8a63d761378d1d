#!/bin/sh
# init.sh — runs once, when the postgres container initialises an empty data
# volume (docker-entrypoint-initdb.d). One role and one database per
# participant of saga/saga.conf (mounted at $SAGA_CONF): a service owns its
# database, applies its own migrations there at start-up (contract §1), and
# cannot connect to another's. The role is the participant's name with - as
# _ (order-service → order_service), its password the demo value
# <name>-demo, repeated in docker-compose.yml's DATABASE_URLs; see README
# ("With Docker") to change them.
#
# ORDERSAGA_NAME_SUFFIX, for tests only, is appended to every role and
# database name so that a run against a shared server collides with nothing.
# No `set -u` and no `exit`: the image sources a script it cannot execute.
set -e

conf=${SAGA_CONF:-/etc/ordersaga/saga.conf}
suffix=${ORDERSAGA_NAME_SUFFIX:-}
case $suffix in *[!a-z0-9_]*)
	echo "init.sh: ORDERSAGA_NAME_SUFFIX '$suffix': want lower-case letters, digits and _" >&2
	false ;;
esac

# Names go into SQL: saga.conf's parser allows only these, checked again
# here because this script reads the file without it.
sql=$(awk -v suffix="$suffix" '
$1 == "participant" {
	name = $2; db = $4; role = name; gsub(/-/, "_", role)
	if (name !~ /^[a-z][a-z0-9-]*$/ || db !~ /^[a-z][a-z0-9_]*$/) {
		printf "init.sh: %s:%d: bad participant name %s or database %s\n", FILENAME, FNR, name, db > "/dev/stderr"
		bad = 1; exit
	}
	printf "CREATE ROLE %s%s LOGIN PASSWORD '\''%s-demo'\'';\n", role, suffix, name
	printf "CREATE DATABASE %s%s OWNER %s%s;\n", db, suffix, role, suffix
	# PUBLIC may connect to (and create temporary tables in) any new
	# database by default; only the owner (and superusers) may here.
	printf "REVOKE ALL ON DATABASE %s%s FROM PUBLIC;\n", db, suffix
	n++
}
END {
	if (bad) exit 1
	if (!n) { printf "init.sh: no participant lines in %s\n", FILENAME > "/dev/stderr"; exit 1 }
}' "$conf")

# One statement at a time, outside a transaction: CREATE DATABASE cannot
# run in one.
printf '%s\n' "$sql" | psql -v ON_ERROR_STOP=1 -X -q \
	--username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}"
