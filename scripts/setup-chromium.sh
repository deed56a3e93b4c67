#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (clients/browser drives it with
# puppeteer-core; no browser is ever downloaded from npm). Idempotent: apt runs only when
# `dpkg -s chromium` does not find it installed.
set -euo pipefail

if dpkg -s chromium >/dev/null 2>&1 && [[ -x /usr/bin/chromium ]]; then
    echo "setup-chromium: chromium installed"
    exit 0
fi
echo "setup-chromium: installing chromium"
sudo=()
(( EUID == 0 )) || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium fonts-dejavu-core
