#!/usr/bin/env bash
# Renders docs/images/messages.png: what the shipped rules.yaml posts to
# Slack for the demo events (testdata/demo.ndjson), as the page of
# `sesrouter route -dry-run -format html` shows it, shot by headless
# Chromium. Run it (or `make docs-images`) after changing the rules, the
# demo events or the messages, look at the picture, and commit it.
#
#   bash docs/images.sh
#
# It needs Go and Chromium: Debian's chromium package
# (apt-get install -y chromium), or CHROMIUM=/path/to/chrome. WIDTH and
# HEIGHT set the window, in CSS pixels; the page is cut at HEIGHT, so
# raise it when the demo grows.
set -euo pipefail

cd "$(dirname "$0")/.."

GO=${GO:-go}
CHROMIUM=${CHROMIUM:-chromium}
WIDTH=${WIDTH:-1200}
HEIGHT=${HEIGHT:-1760}
OUT=docs/images/messages.png

if ! command -v "$CHROMIUM" >/dev/null; then
	echo "docs/images.sh: $CHROMIUM not found: install Debian's chromium package (apt-get install -y chromium), or set CHROMIUM" >&2
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$GO" run ./cmd/sesrouter route -dry-run -format html -rules rules.yaml testdata/demo.ndjson >"$tmp/messages.html"

# The flags keep Chromium from calling home (this may run where the
# network is closed) and from touching the user's profile.
if ! "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	--disable-background-networking --disable-component-update --disable-sync \
	--hide-scrollbars --force-device-scale-factor=1 \
	--user-data-dir="$tmp/profile" --window-size="$WIDTH,$HEIGHT" \
	--screenshot="$tmp/messages.png" "file://$tmp/messages.html" >"$tmp/chromium.log" 2>&1; then
	cat "$tmp/chromium.log" >&2
	exit 1
fi
if [ ! -s "$tmp/messages.png" ]; then
	cat "$tmp/chromium.log" >&2
	echo "docs/images.sh: Chromium wrote no picture" >&2
	exit 1
fi

mkdir -p "$(dirname "$OUT")"
mv "$tmp/messages.png" "$OUT"
echo "$OUT: $(wc -c <"$OUT") bytes, ${WIDTH}x${HEIGHT}"
