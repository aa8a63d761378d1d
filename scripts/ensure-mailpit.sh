#!/usr/bin/env bash
# ensure-mailpit.sh — make sure the pinned Mailpit (a real SMTP server with an
# HTTP API, for development and tests: contract §8) is installed, and print
# its path.
#
#   Mailpit github.com/axllent/mailpit v1.33.1, built once with
#   `go install` into $ORDERSAGA_CACHE/bin (default ~/.cache/ordersaga/bin)
#
# usage: scripts/ensure-mailpit.sh
#
# The Go module carries no web UI (compose's axllent/mailpit image does); the
# API (/api/v1/messages, /api/v1/message/{ID}) and SMTP are all the tests
# and `make demo` need. The first build takes a few minutes; later calls only
# check the binary's version.
set -euo pipefail

readonly VERSION=v1.33.1
cache=${ORDERSAGA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ordersaga}
bin=$cache/bin/mailpit

if [[ -x $bin ]] && go version -m "$bin" 2>/dev/null | grep -q "mod[[:space:]]*github.com/axllent/mailpit[[:space:]]*$VERSION"; then
	echo "$bin"
	exit 0
fi
mkdir -p "$cache/bin"
echo "ensure-mailpit: installing github.com/axllent/mailpit@$VERSION into $cache/bin (once; a few minutes)" >&2
GOBIN=$cache/bin GOFLAGS=-buildvcs=false nice go install "github.com/axllent/mailpit@$VERSION" >&2
echo "$bin"
