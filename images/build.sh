#!/usr/bin/env bash
# Builds the container images the test suites run (Redis, PostgreSQL) from
# Debian's packages, without any container registry: each image's root
# filesystem is made with debootstrap from the host's Debian mirror, imported
# with "docker import", and finished by the small Dockerfile in its folder.
#
# Usage: images/build.sh [--force] [--fresh] [--verify]
#   --force   rebuild images that already exist (from the cached root filesystems)
#   --fresh   like --force, and debootstrap again instead of using the cache
#   --verify  afterwards start each image once and check that it serves clients
#
# Environment:
#   GALAXY_REDIS_IMAGE     image name to produce (default galaxy-local/redis:7)
#   GALAXY_POSTGRES_IMAGE  image name to produce (default galaxy-local/postgres:15)
#                          An existing image under either name is used as it is,
#                          so naming a pulled official image builds nothing.
#   GALAXY_DEBIAN_MIRROR   Debian mirror (default: the host's apt sources)
#   GALAXY_IMAGE_CACHE     root filesystem cache (default ~/.cache/galaxy/images)
set -euo pipefail

readonly SUITE=bookworm
# Bump when the root filesystem recipe in this script changes, so cached
# tarballs made by an older recipe are not reused (changes to rootfs-slim.sh
# and to an image's packages and rootfs.sh are detected by themselves).
readonly ROOTFS_RECIPE=1
readonly LABEL=galaxy.image

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE
REDIS_IMAGE=${GALAXY_REDIS_IMAGE:-galaxy-local/redis:7}
POSTGRES_IMAGE=${GALAXY_POSTGRES_IMAGE:-galaxy-local/postgres:15}
CACHE_DIR=${GALAXY_IMAGE_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/galaxy/images}

force=false
fresh=false
verify=false

log() { printf 'images: %s\n' "$*"; }
die() {
	printf 'images: error: %s\n' "$*" >&2
	exit 1
}

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

for arg in "$@"; do
	case "$arg" in
	--force) force=true ;;
	--fresh) force=true fresh=true ;;
	--verify) verify=true ;;
	-h | --help)
		usage
		exit 0
		;;
	*) die "unknown argument $arg (see --help)" ;;
	esac
done

# Root is needed for debootstrap, chroot and reading the root filesystem.
as_root() {
	if [ "$(id -u)" = 0 ]; then
		"$@"
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
		sudo -n "$@"
	else
		die "need root (or password-less sudo) to run: $*"
	fi
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

image_label() {
	docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

# The first Debian mirror in the host's apt sources that serves $SUITE, so the
# build uses the same (possibly local or proxied) mirror apt already uses.
# Prints nothing when the sources name none: debootstrap's own default then.
detect_mirror() {
	if [ -n "${GALAXY_DEBIAN_MIRROR:-}" ]; then
		printf '%s\n' "$GALAXY_DEBIAN_MIRROR"
		return
	fi
	local f uri=
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		uri=$(awk -v suite="$SUITE" '
			$1 == "deb" {
				i = 2
				if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
				if ($(i + 1) == suite) { print $i; exit }
			}' "$f")
		[ -z "$uri" ] || break
	done
	if [ -z "$uri" ]; then
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -r "$f" ] || continue
			uri=$(awk -v suite="$SUITE" '
				BEGIN { RS = ""; FS = "\n" }
				{
					types = ""; uris = ""; suites = ""; enabled = "yes"
					for (i = 1; i <= NF; i++) {
						line = $i
						if (line ~ /^[ \t]*#/) continue
						key = tolower(line); sub(/:.*/, "", key)
						sub(/^[^:]*:[ \t]*/, "", line)
						if (key == "types") types = line
						else if (key == "uris") uris = line
						else if (key == "suites") suites = line
						else if (key == "enabled") enabled = tolower(line)
					}
					if (enabled != "no" && (" " types " ") ~ / deb / && (" " suites " ") ~ (" " suite " ")) {
						split(uris, u, /[ \t]+/); print u[1]; exit
					}
				}' "$f")
			[ -z "$uri" ] || break
		done
	fi
	printf '%s\n' "$uri"
}

ensure_debootstrap() {
	if command -v debootstrap >/dev/null && [ -r /usr/share/keyrings/debian-archive-keyring.gpg ]; then
		return
	fi
	command -v apt-get >/dev/null || die "debootstrap is missing and there is no apt-get to install it"
	local aptlog="$CACHE_DIR/apt-get.log"
	log "installing debootstrap and debian-archive-keyring with apt-get (log: $aptlog)"
	if ! { as_root apt-get update -q &&
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			debootstrap debian-archive-keyring; } >"$aptlog" 2>&1; then
		tail -n 30 "$aptlog" >&2
		die "installing debootstrap failed"
	fi
}

# Cache key of an image's root filesystem: everything that shapes its content.
rootfs_key() {
	local name=$1
	{
		printf 'suite=%s recipe=%s arch=%s\n' "$SUITE" "$ROOTFS_RECIPE" "$(dpkg --print-architecture 2>/dev/null || uname -m)"
		cat "$HERE/rootfs-slim.sh" "$HERE/$name/packages"
		if [ -f "$HERE/$name/rootfs.sh" ]; then cat "$HERE/$name/rootfs.sh"; fi
	} | sha256sum | cut -c1-16
}

work=
cleanup() {
	[ -n "$work" ] || return 0
	# debootstrap mounts /proc and /sys inside the target; never delete through them.
	local m
	awk -v p="$work/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r m; do as_root umount -l "$m" || true; done
	as_root rm -rf --one-file-system "$work"
	work=
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Makes $CACHE_DIR/<name>-<key>.tar: a debootstrapped Debian with the image's packages.
make_rootfs_tar() {
	local name=$1 tar=$2 mirror packages
	ensure_debootstrap
	mirror=$(detect_mirror)
	packages=$(grep -v '^[[:space:]]*\(#\|$\)' "$HERE/$name/packages" | paste -sd, -)
	work=$(mktemp -d "$CACHE_DIR/rootfs-$name.XXXXXX")
	log "debootstrap --variant=minbase --include=$packages $SUITE from ${mirror:-the default mirror of debootstrap} (log: $work/debootstrap.log)"
	local start=$SECONDS
	if ! as_root debootstrap --variant=minbase --include="$packages" "$SUITE" "$work/rootfs" ${mirror:+"$mirror"} \
		>"$work/debootstrap.log" 2>&1; then
		tail -n 30 "$work/debootstrap.log" >&2
		[ ! -f "$work/rootfs/debootstrap/debootstrap.log" ] || as_root tail -n 30 "$work/rootfs/debootstrap/debootstrap.log" >&2
		die "debootstrap of $name root filesystem failed"
	fi
	log "debootstrap done in $((SECONDS - start))s; trimming the root filesystem"
	as_root "$HERE/rootfs-slim.sh" "$work/rootfs"
	if [ -x "$HERE/$name/rootfs.sh" ]; then
		log "running $name/rootfs.sh"
		as_root "$HERE/$name/rootfs.sh" "$work/rootfs"
	fi
	rm -f "$CACHE_DIR/$name-"*.tar
	as_root tar --numeric-owner --xattrs -C "$work/rootfs" -cf - . >"$tar.partial"
	mv "$tar.partial" "$tar"
	log "cached $tar ($(du -h "$tar" | cut -f1))"
	cleanup
}

# Recipe of an image: its root filesystem plus the files of its folder
# (Dockerfile, entrypoint). Recorded as a label so that a changed recipe
# rebuilds the image even when one by that name exists.
image_recipe() {
	local name=$1
	{
		rootfs_key "$name"
		find "$HERE/$name" -type f -printf '%P\n' | LC_ALL=C sort | while read -r f; do
			printf '%s\n' "$f"
			cat "$HERE/$name/$f"
		done
	} | sha256sum | cut -c1-16
}

# Builds image $2 from the recipe in $HERE/$1.
build_image() {
	local name=$1 image=$2 recipe
	recipe=$(image_recipe "$name")
	if image_exists "$image"; then
		if [ "$(image_label "$image" "$LABEL")" != true ]; then
			log "$image exists and was not built by this script; using it as it is"
			return
		fi
		if ! $force && [ "$(image_label "$image" "$LABEL.recipe")" = "$recipe" ]; then
			log "$image is up to date; skipping (use --force to rebuild)"
			return
		fi
		$force || log "$image was built from an older recipe; rebuilding"
	fi

	local key rootfs_image tar start=$SECONDS old_ids
	key=$(rootfs_key "$name")
	rootfs_image="galaxy-local/debian:$SUITE-$name"
	tar="$CACHE_DIR/$name-$key.tar"
	old_ids=$(docker image inspect --format '{{.Id}}' "$image" "$rootfs_image" 2>/dev/null || true)

	if $force || ! image_exists "$rootfs_image" ||
		[ "$(image_label "$rootfs_image" "$LABEL.recipe")" != "$recipe" ]; then
		if $fresh || [ ! -s "$tar" ]; then
			make_rootfs_tar "$name" "$tar"
		else
			log "using cached root filesystem $tar"
		fi
		log "docker import $tar as $rootfs_image"
		# The labels are inherited by the image built on top.
		docker import \
			--change "LABEL $LABEL=true $LABEL.recipe=$recipe" \
			--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
			--change 'CMD ["bash"]' \
			- "$rootfs_image" <"$tar" >/dev/null
	else
		log "using existing $rootfs_image"
	fi

	log "docker build $image from images/$name"
	local build_args=(--quiet --build-arg "ROOTFS=$rootfs_image" -t "$image")
	$force && build_args+=(--no-cache)
	local out
	# Quiet unless it fails: the legacy builder's deprecation notice is noise here.
	if ! out=$(docker build "${build_args[@]}" "$HERE/$name" 2>&1); then
		printf '%s\n' "$out" >&2
		die "docker build of $image failed"
	fi
	log "built $image in $((SECONDS - start))s"
	# Drop the images this build replaced; ones still in use by a container
	# (or by another tag) stay, and docker refuses to remove them.
	local id
	for id in $old_ids; do
		if docker image inspect --format '{{.RepoTags}}' "$id" 2>/dev/null | grep -qx '\[\]'; then
			docker rmi "$id" >/dev/null 2>&1 || true
		fi
	done
}

# Waits until container $1 has logged $2 at least $3 times, at most $4 seconds.
wait_log() {
	local cid=$1 text=$2 count=$3 timeout=$4 n=0 i
	for ((i = 0; i < timeout * 4; i++)); do
		n=$(docker logs "$cid" 2>&1 | grep -cF -- "$text" || true)
		[ "$n" -lt "$count" ] || return 0
		[ "$(docker inspect -f '{{.State.Running}}' "$cid")" = true ] || break
		sleep 0.25
	done
	docker logs "$cid" 2>&1 | tail -n 30 >&2
	die "container $cid logged \"$text\" $n times, want $count"
}

published_port() { docker port "$1" "$2" | head -n 1 | sed 's/.*://'; }

verify_redis() {
	local image=$1 cid port reply
	log "verify $image"
	cid=$(docker run -d -p 127.0.0.1::6379 --label "$LABEL.verify=true" "$image")
	containers+=("$cid")
	wait_log "$cid" "Ready to accept connections" 1 30
	reply=$(docker exec "$cid" redis-cli ping)
	[ "$reply" = PONG ] || die "redis-cli ping in $image answered \"$reply\""
	# Through the published port, as tests connect: protected mode would refuse this.
	port=$(published_port "$cid" 6379/tcp)
	reply=$(exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'PING\r\n' >&3 && head -c 5 <&3 | tr -d '\r')
	[ "$reply" = +PONG ] || die "PING to $image on 127.0.0.1:$port answered \"$reply\""
	log "ok: $image answers PING inside the container and on 127.0.0.1:$port"
}

verify_postgres() {
	local image=$1 cid port out user=galaxy_verify password=verify-secret db=galaxy_verify_db
	log "verify $image"
	cid=$(docker run -d -p 127.0.0.1::5432 --label "$LABEL.verify=true" \
		-e POSTGRES_USER="$user" -e POSTGRES_PASSWORD="$password" -e POSTGRES_DB="$db" "$image")
	containers+=("$cid")
	wait_log "$cid" "database system is ready to accept connections" 2 90
	port=$(published_port "$cid" 5432/tcp)
	local sql="select current_user, current_database(), current_setting('fsync'), current_setting('max_connections')"
	if command -v psql >/dev/null; then
		out=$(PGPASSWORD=$password PGCONNECT_TIMEOUT=10 psql -h 127.0.0.1 -p "$port" -U "$user" -d "$db" -XAtc "$sql")
		if PGPASSWORD=wrong PGCONNECT_TIMEOUT=10 psql -h 127.0.0.1 -p "$port" -U "$user" -d "$db" -XAtc 'select 1' >/dev/null 2>&1; then
			die "$image accepted a wrong password"
		fi
	else
		log "no psql on this host; checking over TCP inside the container instead"
		out=$(docker exec -e PGPASSWORD="$password" "$cid" psql -h 127.0.0.1 -U "$user" -d "$db" -XAtc "$sql")
	fi
	[ "$out" = "$user|$db|off|300" ] || die "$image answered \"$out\" to: $sql"
	out=$(docker exec "$cid" stat -c %U /proc/1)
	[ "$out" = postgres ] || die "$image runs its server as $out, want postgres"
	log "ok: $image accepts $user/$db with its password on 127.0.0.1:$port, logged ready twice, runs as postgres"
}

containers=()
remove_containers() {
	if [ "${#containers[@]}" -gt 0 ]; then
		docker rm -f -v "${containers[@]}" >/dev/null 2>&1 || true
	fi
	cleanup
}

main() {
	docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
		die "cannot reach the Docker engine (DOCKER_HOST=${DOCKER_HOST:-unset})"
	# The legacy builder is the one Docker Engine 20.10 offers without buildx;
	# these Dockerfiles need nothing from BuildKit.
	if [ -z "${DOCKER_BUILDKIT:-}" ] && ! docker buildx version >/dev/null 2>&1; then
		export DOCKER_BUILDKIT=0
	fi
	mkdir -p "$CACHE_DIR"
	# Parallel callers (make -j, several checkouts) share the cache.
	if command -v flock >/dev/null; then
		exec 9>"$CACHE_DIR/.lock"
		flock -n 9 || {
			log "waiting for another build.sh using $CACHE_DIR"
			flock 9
		}
	fi

	build_image redis "$REDIS_IMAGE"
	build_image postgres "$POSTGRES_IMAGE"

	if $verify; then
		trap remove_containers EXIT
		verify_redis "$REDIS_IMAGE"
		verify_postgres "$POSTGRES_IMAGE"
	fi
	log "images ready: $REDIS_IMAGE $POSTGRES_IMAGE"
}

main
