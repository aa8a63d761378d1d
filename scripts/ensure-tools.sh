#!/usr/bin/env bash
# ensure-tools.sh — make sure the pinned Go tools that ordersaga's scripts and
# tests run are built, and print the path of each binary, one a line:
#
#   jaeger    tools/jaeger/go.mod    (TRACING=on make run, the tracing e2e test)
#   promtool  tools/promtool/go.mod  (make test: deploy/prometheus rules)
#   oapi-codegen  tools/oapi-codegen/go.mod  (make generate: libs/gatewayclient)
#
# usage: scripts/ensure-tools.sh NAME...
#
# Each tool is pinned by `go get -tool` in a module of its own under tools/,
# so the services' modules never carry its dependencies. It is built once
# into $ORDERSAGA_TOOLS (default ~/.cache/ordersaga/tools), under a name
# that changes with its go.mod and go.sum: a new pin builds anew, and
# worktrees share a build. The first build of each takes minutes (Jaeger
# and promtool are large); later calls only print the path.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${ORDERSAGA_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/ordersaga/tools}
export PATH=$PATH:/usr/local/go/bin

(($#)) || { sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0" >&2; exit 2; }
command -v go >/dev/null || { echo "ensure-tools: go not found" >&2; exit 1; }
for name in "$@"; do
	mod=$root/tools/$name
	[[ -f $mod/go.mod ]] || { echo "ensure-tools: unknown tool '$name' (no tools/$name/go.mod)" >&2; exit 2; }
	pkg=$(awk '$1 == "tool" {print $2; exit}' "$mod/go.mod")
	[[ -n $pkg ]] || { echo "ensure-tools: tools/$name/go.mod has no tool line" >&2; exit 1; }
	key=$(cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -c1-12)
	bin=$cache/$name-$key
	if [[ ! -x $bin ]]; then
		mkdir -p "$cache"
		echo "ensure-tools: building $pkg (tools/$name; once, a few minutes)" >&2
		# -trimpath and a temporary name: a build that fails or is
		# interrupted leaves no binary behind.
		(cd "$mod" && GOWORK=off GOFLAGS=-mod=readonly nice go build -trimpath -o "$bin.tmp.$$" "$pkg") ||
			{ rm -f "$bin.tmp.$$"; echo "ensure-tools: building $name failed" >&2; exit 1; }
		mv -f "$bin.tmp.$$" "$bin"
	fi
	echo "$bin"
done
