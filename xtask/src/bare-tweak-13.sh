#!/bin/sh
# engine bare lab image, Debian 13 (trixie): runs after bare-tweak.sh, in a chroot of the fresh
# trixie tree. Everything else is bare-tweak.sh's, as on the Debian 12 image: the same packages,
# login user, sshd drop-in and mirror downloads (here trixie's packages: the tree's apt sources
# were debootstrap's). A Debian 13 cloud image differs from a Debian 12 one in what its packages
# bring (OpenSSH 10, apt 3, systemd 257), not in these files; only its apt source names its suite.
set -eu

grep -qx 'VERSION_CODENAME=trixie' /etc/os-release
sed -i 's/^Suites: bookworm$/Suites: trixie/' /etc/apt/sources.list.d/debian.sources
grep -qx 'Suites: trixie' /etc/apt/sources.list.d/debian.sources
