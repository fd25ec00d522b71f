#!/bin/sh
# engine lab image tweaks: runs once in a chroot of the fresh debootstrap tree.
# Any change to this file changes the recipe hash, so the image is rebuilt.
set -eu

# Without this, --hostname is ignored and every host has the build machine's name.
rm -f /etc/hostname
# Empty: every boot gets its own random machine id instead of sharing the build's.
: >/etc/machine-id
rm -f /var/lib/dbus/machine-id

systemctl enable systemd-networkd.service
# Debian starts etcd by itself after install; the playbooks decide when it runs.
systemctl disable etcd.service

# Each host gets its own key, generated on the controller and bind-mounted read-only.
rm -f /etc/ssh/ssh_host_*
cat >/etc/ssh/sshd_config.d/10-engine-lab.conf <<'CONF'
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
CONF

# Mount points for the per-lab authorized_keys (bind-mounted read-only at boot).
mkdir -p /root/.ssh
chmod 0700 /root/.ssh
: >/root/.ssh/authorized_keys
chmod 0600 /root/.ssh/authorized_keys

# A non-root user for "become" through sudo.
useradd --create-home --shell /bin/bash deploy
printf 'deploy ALL=(ALL) NOPASSWD:ALL\n' >/etc/sudoers.d/deploy
chmod 0440 /etc/sudoers.d/deploy
mkdir -p /home/deploy/.ssh
: >/home/deploy/.ssh/authorized_keys
chmod 0700 /home/deploy/.ssh
chmod 0600 /home/deploy/.ssh/authorized_keys
chown -R deploy:deploy /home/deploy/.ssh

apt-get clean
