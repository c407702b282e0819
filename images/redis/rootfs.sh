#!/bin/bash
# Prepares the debootstrapped root filesystem of galaxy-local/redis; run by
# images/build.sh as root with the root filesystem directory as $1.
set -euo pipefail
root=$1

# The working directory, owned by redis as in the official image, so that
# "docker run --user redis" can write there too.
chroot "$root" install -d -o redis -g redis -m 755 /data
