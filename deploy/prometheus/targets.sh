#!/bin/sh
# targets.sh — prints, as a Prometheus file_sd target list (JSON), every
# participant of a saga.conf: its compose service name and HTTP port, with
# the service label the Grafana dashboard aggregates by.
#
# usage: targets.sh SAGA_CONF >participants.json
#
# docker-compose.yml runs it as the prometheus container starts (busybox sh
# and awk), so prometheus.yml names no participant.
set -e
[ $# -eq 1 ] || { echo "usage: targets.sh SAGA_CONF" >&2; exit 2; }
awk '
BEGIN { printf "[" }
$1 == "participant" {
	if ($2 !~ /^[a-z][a-z0-9-]*$/ || $3 !~ /^[0-9]+$/) {
		printf "targets.sh: %s:%d: bad participant name %s or port %s\n", FILENAME, FNR, $2, $3 > "/dev/stderr"
		bad = 1; exit
	}
	printf "%s\n  {\"targets\": [\"%s:%s\"], \"labels\": {\"service\": \"%s\"}}", (n++ ? "," : ""), $2, $3, $2
}
END {
	if (bad) exit 1
	if (!n) { printf "targets.sh: no participant lines in %s\n", FILENAME > "/dev/stderr"; exit 1 }
	print "\n]"
}' "$1"
