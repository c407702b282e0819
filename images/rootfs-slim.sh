#!/bin/bash
# Trims a debootstrapped root filesystem for use as a container image, the way
# Debian's own slim images are trimmed, and leaves dpkg configured to keep it
# that way for later installs. Run by images/build.sh as root with the root
# filesystem directory as $1.
set -euo pipefail
root=$1

find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
for d in usr/share/man usr/share/info usr/share/groff usr/share/lintian/overrides \
	var/lib/apt/lists var/cache/apt; do
	if [ -d "$root/$d" ]; then
		find "$root/$d" -mindepth 1 ! -type d -delete
	fi
done
rm -f "$root"/var/cache/debconf/*-old
find "$root/var/log" -mindepth 1 -type f -delete

cat >"$root/etc/dpkg/dpkg.cfg.d/galaxy-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
CFG

# No init system runs in a container: packages installed later must not try
# to start their services.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

# debootstrap copied these from the host; Docker provides its own at run time.
rm -f "$root/etc/hostname"
: >"$root/etc/resolv.conf"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
