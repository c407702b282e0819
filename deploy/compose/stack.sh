#!/usr/bin/env bash
# Starts and removes the Galaxy stack of compose.yaml: `make up`, `make down`.
#
# Usage: deploy/compose/stack.sh up|down
#
#   up    creates .env from .env.example with fresh random secrets when it is
#         missing (never overwrites it), builds the images that are missing
#         or out of date (make images, the service images, Mailpit's), starts
#         the stack, waits until every container is healthy and prints where
#         Mailpit and each API listen. Run again, it changes nothing that is
#         up to date.
#   down  removes the game containers the stack's Runtime Manager started
#         (label galaxy.rtmanager.instance=galaxy-stack), the stack's
#         containers, networks and volumes, and the game state root.
#         Succeeds when nothing is up.
#
# Environment:
#   COMPOSE                   the compose command (default: docker-compose when
#                             installed, else docker compose)
#   GO                        the go command (default go)
#   SERVICE_IMAGE_REPOSITORY  the service images' repository (default galaxy)
#   SERVICE_IMAGE_TAG         their tag (default: git describe --tags --always --dirty)
#   GALAXY_MAILPIT_IMAGE      Mailpit's image (default <repository>/mailpit:<its version in go.mod>)
#   GALAXY_REDIS_IMAGE, GALAXY_POSTGRES_IMAGE   as for images/build.sh
#   GALAXY_STACK_WAIT         seconds to wait for the stack to be healthy (default 180)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly ROOT
cd "$ROOT"

# Fixed: the suite's deployed mode and docs/deploy.md name them.
readonly PROJECT=galaxy-stack
readonly RTMANAGER_INSTANCE=galaxy-stack
readonly ENV_FILE=.env
readonly ENV_EXAMPLE=.env.example
# Marks a game state root that up created, so that down deletes nothing else.
readonly STATE_MARKER=.galaxy-stack
# The services' user in their images (images/serviceimages).
readonly SERVICE_UID=65532
readonly SECRETS="GALAXY_TARGET_REDIS_PASSWORD GALAXY_TARGET_USERSERVICE_TOKEN GALAXY_TARGET_MAIL_TOKEN GALAXY_TARGET_NOTIFICATION_TOKEN GALAXY_TARGET_RTMANAGER_TOKEN GALAXY_STACK_POSTGRES_PASSWORD"

GO=${GO:-go}
if [ -z "${COMPOSE:-}" ]; then
	if command -v docker-compose >/dev/null; then COMPOSE=docker-compose; else COMPOSE="docker compose"; fi
fi

log() { printf 'stack: %s\n' "$*"; }
die() {
	printf 'stack: error: %s\n' "$*" >&2
	exit 1
}

# compose runs the compose command on this project. The word splitting of
# $COMPOSE is wanted: "docker compose" is two words.
# shellcheck disable=SC2086
compose() { $COMPOSE --project-name "$PROJECT" --file "$ROOT/compose.yaml" "$@"; }

random_secret() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }

# Writes .env from the example: each empty secret gets a random value, the
# Docker socket's group is this host's.
create_env() {
	local gid tmp line key
	gid=$(stat -c %g /var/run/docker.sock) || die "no Docker socket at /var/run/docker.sock: the Runtime Manager needs one"
	tmp=$(mktemp "$ROOT/.env.XXXXXX")
	while IFS= read -r line || [ -n "$line" ]; do
		key=${line%%=*}
		if [ "$line" = "$key=" ]; then
			case " $SECRETS " in
			*" $key "*) line="$key=$(random_secret)" ;;
			esac
			[ "$key" != GALAXY_STACK_DOCKER_GID ] || line="$key=$gid"
		fi
		printf '%s\n' "$line"
	done <"$ENV_EXAMPLE" >"$tmp"
	chmod 600 "$tmp"
	mv "$tmp" "$ENV_FILE"
	log "created $ENV_FILE from $ENV_EXAMPLE with fresh secrets (mode 600; not committed)"
}

load_env() {
	set -a
	# shellcheck disable=SC1090
	. "./$ENV_FILE"
	set +a
	local key
	for key in $SECRETS; do
		[ -n "${!key:-}" ] || die "$key is empty in $ENV_FILE"
	done
}

build_images() {
	log "images: Redis and PostgreSQL (images/build.sh)"
	bash images/build.sh
	SERVICE_IMAGE_REPOSITORY=${SERVICE_IMAGE_REPOSITORY:-galaxy}
	SERVICE_IMAGE_TAG=${SERVICE_IMAGE_TAG:-$(git describe --tags --always --dirty)}
	GALAXY_MAILPIT_IMAGE=${GALAXY_MAILPIT_IMAGE:-$SERVICE_IMAGE_REPOSITORY/mailpit:$($GO list -m -f '{{.Version}}' github.com/axllent/mailpit)}
	export SERVICE_IMAGE_REPOSITORY SERVICE_IMAGE_TAG GALAXY_MAILPIT_IMAGE
	log "images: the four services as $SERVICE_IMAGE_REPOSITORY/<service>:$SERVICE_IMAGE_TAG, Mailpit as $GALAXY_MAILPIT_IMAGE"
	$GO run ./images/serviceimages -repository "$SERVICE_IMAGE_REPOSITORY" -tag "$SERVICE_IMAGE_TAG" \
		-services userservice,mail,notification,rtmanager,mailpit -mailpit-image "$GALAXY_MAILPIT_IMAGE"
}

# The game state root must exist before the daemon bind-mounts it (it would
# create a root-owned one), owned by the Runtime Manager's user.
ensure_state_root() {
	local root=$GALAXY_STACK_GAME_STATE_ROOT
	case "$root" in /?*) ;; *) die "GALAXY_STACK_GAME_STATE_ROOT: $root is not an absolute path" ;; esac
	if [ ! -d "$root" ]; then
		# The marker names the topmost directory created here: down deletes
		# that one, so nothing made by make up stays.
		local top=$root
		while [ ! -d "$(dirname "$top")" ]; do top=$(dirname "$top"); done
		mkdir -p "$root" || die "GALAXY_STACK_GAME_STATE_ROOT: cannot create $root (run as root or choose a path of yours)"
		printf '%s\n' "$top" >"$root/$STATE_MARKER"
	fi
	chown "$SERVICE_UID:$SERVICE_UID" "$root" 2>/dev/null ||
		[ "$(stat -c %u "$root")" = "$SERVICE_UID" ] ||
		die "GALAXY_STACK_GAME_STATE_ROOT: $root must be owned by $SERVICE_UID (the Runtime Manager's user); chown it as root"
	chmod 700 "$root"
}

# Waits until every container of the project is healthy; on a timeout, or a
# container that stopped, shows its health log and its logs and fails.
wait_healthy() {
	local timeout=${GALAXY_STACK_WAIT:-180} start=$SECONDS ids id name state health pending
	ids=$(compose ps -q)
	[ -n "$ids" ] || die "no containers after up"
	while :; do
		pending=()
		for id in $ids; do
			IFS='|' read -r name state health < <(docker inspect -f \
				'{{index .Config.Labels "com.docker.compose.service"}}|{{.State.Status}}|{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id")
			case "$state/$health" in
			running/healthy) ;;
			running/starting | restarting/*) pending+=("$name") ;;
			*) fail_service "$name" "$id" "is $state, health $health" ;;
			esac
		done
		[ "${#pending[@]}" -gt 0 ] || break
		if ((SECONDS - start >= timeout)); then
			for id in $ids; do
				name=$(docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}}' "$id")
				case " ${pending[*]} " in *" $name "*) fail_service "$name" "$id" "not healthy within ${timeout}s (GALAXY_STACK_WAIT)" ;; esac
			done
		fi
		sleep 1
	done
	log "all $(wc -w <<<"$ids") containers healthy after $((SECONDS - start))s"
}

fail_service() {
	local name=$1 id=$2 why=$3
	printf 'stack: %s %s; its last health checks:\n' "$name" "$why" >&2
	docker inspect -f '{{if .State.Health}}{{range .State.Health.Log}}  exit {{.ExitCode}}: {{.Output}}{{end}}{{end}}' "$id" >&2 || true
	printf 'stack: its logs (last 50 lines):\n' >&2
	compose logs --no-color --tail 50 "$name" >&2 || true
	die "$name $why (make down removes the stack)"
}

print_urls() {
	cat <<-EOF
		Galaxy stack is up (project $PROJECT):
		  Mailpit web UI and API  http://127.0.0.1:$GALAXY_STACK_MAILPIT_PORT  (API: /api/v1/messages)
		  Mailpit SMTP            127.0.0.1:$GALAXY_STACK_MAILPIT_SMTP_PORT
		  User Service API        http://127.0.0.1:$GALAXY_STACK_USERSERVICE_PORT  (token GALAXY_TARGET_USERSERVICE_TOKEN)
		  Mail API                http://127.0.0.1:$GALAXY_STACK_MAIL_PORT  (token GALAXY_TARGET_MAIL_TOKEN)
		  Notification API        http://127.0.0.1:$GALAXY_STACK_NOTIFICATION_PORT  (token GALAXY_TARGET_NOTIFICATION_TOKEN)
		  Runtime Manager API     http://127.0.0.1:$GALAXY_STACK_RTMANAGER_PORT  (token GALAXY_TARGET_RTMANAGER_TOKEN)
		  Redis                   127.0.0.1:$GALAXY_STACK_REDIS_PORT  (password GALAXY_TARGET_REDIS_PASSWORD)
		Secrets are in $ROOT/$ENV_FILE. make down removes the stack.
	EOF
}

up() {
	docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
		die "cannot reach the Docker engine (DOCKER_HOST=${DOCKER_HOST:-unset})"
	[ -f "$ENV_FILE" ] || create_env
	load_env
	build_images
	ensure_state_root
	# The socket's group now, which wins over .env's: the Runtime Manager
	# must be in it.
	GALAXY_STACK_DOCKER_GID=$(stat -c %g /var/run/docker.sock)
	export GALAXY_STACK_DOCKER_GID
	log "$COMPOSE up -d"
	# compose itself waits for the depends_on conditions, and fails when a
	# dependency turns unhealthy: wait_healthy then names it and shows why.
	compose up -d --remove-orphans || GALAXY_STACK_WAIT=0 wait_healthy
	wait_healthy
	print_urls
}

down() {
	local ids
	ids=$(docker ps -aq --filter "label=galaxy.rtmanager.instance=$RTMANAGER_INSTANCE")
	if [ -n "$ids" ]; then
		log "removing $(wc -w <<<"$ids") game containers of Runtime Manager instance $RTMANAGER_INSTANCE"
		# shellcheck disable=SC2086
		docker rm -f -v $ids >/dev/null
	fi
	if [ -f "$ENV_FILE" ]; then
		load_env
		export GALAXY_STACK_DOCKER_GID=${GALAXY_STACK_DOCKER_GID:-0}
		compose down --volumes --remove-orphans --timeout 15
	fi
	# What compose could not name (no .env, or a run interrupted midway),
	# by the project's labels.
	ids=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")
	# shellcheck disable=SC2086
	[ -z "$ids" ] || docker rm -f -v $ids >/dev/null
	ids=$(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT")
	# shellcheck disable=SC2086
	[ -z "$ids" ] || docker network rm $ids >/dev/null
	ids=$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT")
	# shellcheck disable=SC2086
	[ -z "$ids" ] || docker volume rm $ids >/dev/null
	local root=${GALAXY_STACK_GAME_STATE_ROOT:-/var/lib/galaxy-stack/games}
	if [ -f "$root/$STATE_MARKER" ]; then
		local top
		top=$(head -n 1 "$root/$STATE_MARKER")
		# Only the root itself or a directory above it that up created.
		case "$top" in "" | /) top=$root ;; esac
		case "$root/" in "$top"/*) ;; *) top=$root ;; esac
		rm -rf --one-file-system "$top"
		log "removed the game state root $top"
	fi
	log "down: nothing of $PROJECT is left"
}

case "${1:-}" in
up) up ;;
down) down ;;
*)
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
	exit 2
	;;
esac
