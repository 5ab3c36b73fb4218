#!/usr/bin/env bash
# System packages the test suite needs, from Debian's archive (CI and fresh machines run as root):
#   chromium, chromium-driver  — the real browser behind the card-layout and report-page tests
#   postgresql                 — a throw-away PostgreSQL 15 cluster for the store and fault tests
#   fonts-dejavu-core          — a font with the glyphs the card and the report use
#   nodejs, npm (only when no node is on PATH) — the CDS Hooks sandbox's markdown renderer in the card tests
# Idempotent and quiet when everything is there. Not root and something missing → say so and go on:
# the tests that need it fail with a clear reason (or skip outside CI).
set -euo pipefail

PACKAGES=(chromium chromium-driver postgresql fonts-dejavu-core)
missing=()
for pkg in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "system-deps: missing Debian packages: ${missing[*]} (run as root: apt-get install ${missing[*]})" >&2
	exit 0
fi
echo "system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
