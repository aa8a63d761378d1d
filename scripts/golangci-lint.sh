#!/usr/bin/env bash
# golangci-lint.sh MODULE... — runs golangci-lint (pinned below, installed
# into ~/.cache/ordersaga/bin on first use: a few minutes' build) on each Go module with
# the repository's .golangci.yml, and says which modules fail.
set -euo pipefail

VERSION=v2.15.0
root=$(cd "$(dirname "$0")/.." && pwd)
# Outside the checkout, like the other pinned tools (scripts/ensure-tools.sh),
# so a fresh clone on the same machine does not build it again.
bin="${XDG_CACHE_HOME:-$HOME/.cache}/ordersaga/bin"
lint="$bin/golangci-lint"

if ! "$lint" version 2>/dev/null | grep -q "version ${VERSION#v} "; then
	echo "golangci-lint: installing $VERSION into $bin (once; it takes a few minutes)" >&2
	mkdir -p "$bin"
	GOBIN="$bin" GOFLAGS=-mod=mod go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$VERSION"
fi

failed=()
for m in "$@"; do
	echo "=== golangci-lint $m"
	# A module named in SOLO is outside go.work (Makefile): linted alone.
	gowork=
	case " ${SOLO:-} " in *" $m "*) gowork=off ;; esac
	if ! (cd "$root/$m" && GOWORK=$gowork "$lint" run --config "$root/.golangci.yml" ./...); then
		failed+=("$m")
	fi
done
if ((${#failed[@]})); then
	echo "golangci-lint: findings in ${failed[*]}" >&2
	exit 1
fi
