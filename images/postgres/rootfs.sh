#!/bin/bash
# Prepares the debootstrapped root filesystem of galaxy-local/postgres; run by
# images/build.sh as root with the root filesystem directory as $1.
set -euo pipefail
root=$1

# Installing postgresql-15 created and configured a "main" cluster; the
# entrypoint creates the cluster from the container's environment instead.
sed -ri 's/^#?[[:space:]]*(create_main_cluster)[[:space:]]*=.*$/\1 = false/' \
	"$root/etc/postgresql-common/createcluster.conf"
rm -rf "$root/etc/postgresql/15/main" "$root/var/lib/postgresql/15"
find "$root/var/log/postgresql" -mindepth 1 -delete

# Prepared here, not only in the entrypoint, so "docker run --user postgres" works.
chroot "$root" install -d -o postgres -g postgres -m 700 /var/lib/postgresql/data
chroot "$root" install -d -o postgres -g postgres -m 3777 /var/run/postgresql
