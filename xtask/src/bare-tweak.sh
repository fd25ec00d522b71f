#!/bin/sh
# engine bare lab image: what a fresh Debian 12 cloud image looks like (systemd, openssh-server,
# sudo, iproute2, ca-certificates; a login user `debian` with passwordless sudo; no root login;
# nothing the playbooks install; no python). Runs once in a chroot of the fresh debootstrap tree.
# Any change to this file changes the recipe hash, so the image (and its mirror) is rebuilt.
set -eu

# Without this, --hostname is ignored and every host has the build machine's name.
rm -f /etc/hostname
# Empty: every boot gets its own random machine id instead of sharing the build's.
: >/etc/machine-id
rm -f /var/lib/dbus/machine-id
systemctl enable systemd-networkd.service

# Each host gets its own key, generated on the controller and bind-mounted read-only.
rm -f /etc/ssh/ssh_host_*
cat >/etc/ssh/sshd_config.d/10-engine-lab.conf <<'CONF'
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
CONF

# The cloud image's login user; its authorized_keys is bind-mounted read-only at boot.
useradd --create-home --shell /bin/bash debian
printf 'debian ALL=(ALL) NOPASSWD:ALL\n' >/etc/sudoers.d/90-cloud-init-users
chmod 0440 /etc/sudoers.d/90-cloud-init-users
mkdir -p /home/debian/.ssh
: >/home/debian/.ssh/authorized_keys
chmod 0700 /home/debian/.ssh
chmod 0600 /home/debian/.ssh/authorized_keys
chown -R debian:debian /home/debian/.ssh

# The lab mirror's packages: what the playbooks install and every dependency (and recommended
# package) that a bare host lacks, downloaded (not installed) from the build machine's mirror.
# iptables, ethtool and ebtables (with conntrack, socat) are what the lab's kubelet package
# depends on, as upstream's does; unzip is for archives the playbooks unpack.
# The build moves them out of the tree into the mirror's pool (debootstrap's own packages are
# cleaned out first: the pool holds only what a bare host lacks).
apt-get clean
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --download-only \
    etcd-server etcd-client keepalived curl containerd runc conntrack socat \
    iptables ethtool ebtables unzip
mkdir /engine-lab-pool
mv /var/cache/apt/archives/*.deb /engine-lab-pool/
apt-get clean

# apt talks only to the lab mirror, whose Release files are signed by the lab key (its public
# half is bind-mounted at boot). No package lists: the first install must update them.
rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*
cat >/etc/apt/sources.list.d/debian.sources <<'SOURCES'
Types: deb
URIs: http://10.77.0.2/debian
Suites: bookworm
Components: main
Signed-By: /etc/apt/keyrings/engine-lab-mirror.gpg
SOURCES
mkdir -p /etc/apt/keyrings
: >/etc/apt/keyrings/engine-lab-mirror.gpg
find /var/lib/apt/lists -maxdepth 1 -type f -delete
