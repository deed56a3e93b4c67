#!/usr/bin/env bash
# Installs Debian's libfaketime for the cluster-sync test (clients/python/tests/
# test_cluster_sync.py), which starts nodes whose wall clock runs ahead or behind by seconds.
# The broker has no setting for that: the skew comes from outside (LD_PRELOAD), so no
# production build carries a way to lie about its clock, and any binary (main's too) can be
# run skewed. Idempotent: apt runs only when `dpkg -s libfaketime` does not find it.
set -euo pipefail

if dpkg -s libfaketime >/dev/null 2>&1; then
    echo "setup-faketime: libfaketime installed"
    exit 0
fi
echo "setup-faketime: installing libfaketime"
sudo=()
(( EUID == 0 )) || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends libfaketime
