#!/bin/bash
# Entrypoint of galaxy-local/postgres: follows the official postgres image's
# entrypoint. On first start it creates the cluster from POSTGRES_USER,
# POSTGRES_PASSWORD and POSTGRES_DB using a temporary server that listens on
# the Unix socket only, stops it and then execs the real server. Both servers
# log "database system is ready to accept connections", which is what
# testcontainers-go's postgres wait strategy counts (twice) before it trusts
# the published port.
set -Eeuo pipefail

# "docker run image -c max_connections=50".
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
	set -- postgres "$@"
fi

if [ "$1" != postgres ]; then
	exec "$@"
fi

# Started as root (the default): fix ownership, then re-run this script as the
# postgres user; the server itself refuses to run as root.
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
	chmod 700 "$PGDATA"
	chown postgres:postgres /var/run/postgresql
	chmod 3777 /var/run/postgresql
	exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_PASSWORD:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
: "${POSTGRES_INITDB_ARGS:=}"
export POSTGRES_USER POSTGRES_PASSWORD POSTGRES_DB

# Runs SQL against the temporary server as the superuser.
init_psql() {
	psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --username "$POSTGRES_USER" "$@"
}

init_cluster() {
	echo "galaxy-local/postgres: initialising $PGDATA for user \"$POSTGRES_USER\", database \"$POSTGRES_DB\""
	# Local (socket) connections are trusted like in the official image, so
	# "docker exec ... psql -U user" works without a password.
	# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a word list by contract.
	initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
		--auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" \
		--no-sync --no-instructions $POSTGRES_INITDB_ARGS

	printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
	cat >>"$PGDATA/postgresql.conf" <<-'CONF'

		# galaxy-local/postgres: reachable from other containers and the host
		# through the published port.
		listen_addresses = '*'
		# Throwaway test databases: durability is traded for speed, and many
		# parallel test processes each hold a connection pool.
		max_connections = 300
		fsync = off
		synchronous_commit = off
		full_page_writes = off
	CONF

	# The temporary server is unreachable over TCP, so nothing mistakes it for
	# the final one; it gets the same command-line settings as the final one.
	pg_ctl -D "$PGDATA" -o "$(printf '%q ' -c listen_addresses= -p 5432 "${@:2}")" -w start

	export PGPASSWORD=$POSTGRES_PASSWORD
	if [ "$POSTGRES_DB" != postgres ]; then
		init_psql --dbname postgres --set db="$POSTGRES_DB" <<-'SQL'
			CREATE DATABASE :"db";
		SQL
	fi

	local f
	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case "$f" in
		*.sh)
			echo "galaxy-local/postgres: running $f"
			# shellcheck disable=SC1090 # init scripts are supplied at run time.
			if [ -x "$f" ]; then "$f"; else . "$f"; fi
			;;
		*.sql)
			echo "galaxy-local/postgres: running $f"
			init_psql --dbname "$POSTGRES_DB" -f "$f"
			;;
		*.sql.gz)
			echo "galaxy-local/postgres: running $f"
			gunzip -c "$f" | init_psql --dbname "$POSTGRES_DB"
			;;
		*) echo "galaxy-local/postgres: ignoring $f" ;;
		esac
	done
	unset PGPASSWORD

	pg_ctl -D "$PGDATA" -m fast -w stop
	echo "PostgreSQL init process complete; ready for start up."
}

if [ -s "$PGDATA/PG_VERSION" ]; then
	echo "PostgreSQL Database directory appears to contain a database; Skipping initialization"
else
	init_cluster "$@"
fi

exec "$@"
