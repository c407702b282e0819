#!/bin/bash
# Entrypoint of galaxy-local/redis: behaves like the official redis image's
# entrypoint. Debian's redis-server is built with protected mode on, which
# refuses every client not on loopback (including connections forwarded from
# a published port) when no password is set; the official image compiles it
# off, so it is switched off here instead, as are RDB snapshots, which test
# data never needs.
set -euo pipefail

# "docker run image --port 7000" or "docker run image /etc/redis.conf".
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

if [ "$1" = redis-server ]; then
	shift
	conf=()
	# A config file (or "-" for stdin) must be the first argument of redis-server.
	if [ "$#" -gt 0 ] && { [ "$1" = - ] || [ "${1#-}" = "$1" ]; }; then
		conf=("$1")
		shift
	fi
	defaults=()
	# Settings from a config file or from the command line win over these.
	sets() {
		local name=$1 arg
		shift
		for arg in "$@"; do
			[ "$arg" = "--$name" ] && return 0
		done
		if [ "${#conf[@]}" -eq 1 ] && [ -f "${conf[0]}" ] &&
			grep -qiE "^[[:space:]]*${name}[[:space:]]" "${conf[0]}"; then
			return 0
		fi
		return 1
	}
	sets protected-mode "$@" || defaults+=(--protected-mode no)
	sets save "$@" || defaults+=(--save '')
	sets appendonly "$@" || defaults+=(--appendonly no)
	set -- redis-server "${conf[@]}" "${defaults[@]}" "$@"

	# Allow "docker run --user": drop to the redis user only when started as root.
	if [ "$(id -u)" = 0 ]; then
		find . \! -user redis -exec chown redis '{}' +
		exec setpriv --reuid=redis --regid=redis --init-groups "$@"
	fi
fi

exec "$@"
