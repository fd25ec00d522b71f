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
# Installed for the examples, started by them: not on every host at boot.
systemctl disable nginx.service haproxy.service

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

# The apt module's tests need packages that are not installed, and the lab has no internet:
# a small local repository, with every other apt source removed (so `apt-get update` never
# waits on the network) and no package lists (so the first install must update them).
# hello and tree depend only on libc6. dpkg-dev (dpkg-scanpackages) is too heavy for the image:
# the index is written here from each package's own control fields.
repo=/srv/lab-repo
mkdir -p "$repo"
(cd "$repo" && apt-get download hello tree)
(
    cd "$repo"
    for deb in *.deb; do
        dpkg-deb -f "$deb"
        printf 'Filename: ./%s\nSize: %s\nSHA256: %s\n\n' \
            "$deb" "$(stat -c %s "$deb")" "$(sha256sum "$deb" | cut -d' ' -f1)"
    done >Packages
    printf 'Origin: engine-lab\nLabel: engine-lab\nDate: %s\nArchitectures: amd64 all\nSHA256:\n %s %s Packages\n' \
        "$(date -u -R)" "$(sha256sum Packages | cut -d' ' -f1)" "$(stat -c %s Packages)" >Release
)
rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*
printf 'deb [trusted=yes] file:%s ./\n' "$repo" >/etc/apt/sources.list.d/lab.list
find /var/lib/apt/lists -maxdepth 1 -type f -delete

apt-get clean
