#!/usr/bin/env bash
# Installs what the Spring STOMP client test (clients/java) needs: Debian's headless JDK and
# Debian's Spring messaging module (4.3) with the jars it loads at run time. Idempotent: apt runs
# only for packages `dpkg -s` does not find installed.
#
# Debian builds spring-messaging without its STOMP package (org.springframework.messaging.simp
# .stomp: it links Reactor 2, which Debian does not ship), so the jar lacks DefaultStompSession,
# StompEncoder and StompDecoder. They are compiled here, unchanged, from the same Debian source
# package (`apt-get source`, the installed version) against the installed jars, leaving out the
# classes that need Reactor (Reactor2*, StompBrokerRelayMessageHandler), into
# clients/java/build/spring-stomp.jar. Done once; later runs find the jar.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(default-jdk-headless libspring-messaging-java libspring-context-java libspring-core-java
    libspring-beans-java libcommons-logging-java)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
sudo=()
(( EUID == 0 )) || sudo=(sudo)
if (( ${#missing[@]} == 0 )); then
    echo "setup-java: ${packages[*]} installed"
else
    echo "setup-java: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
    "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
fi

build=clients/java/build
version="$(dpkg-query -W -f='${Version}' libspring-messaging-java)"
jar="$build/spring-stomp.jar"
if [[ -f "$jar" && "$(cat "$build/spring-stomp.version" 2>/dev/null)" == "$version" ]]; then
    echo "setup-java: $jar ($version) built"
    exit 0
fi
echo "setup-java: building $jar from Debian's libspring-java $version source"
rm -rf "$build/src" "$build/classes" "$build/apt"
mkdir -p "$build/src" "$build/classes" "$build/apt/lists/partial"
# A private deb-src list and index, so the machine's apt configuration is left as it is.
apt_dir="$(cd "$build/apt" && pwd)"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main" \
    > "$apt_dir/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt_dir/lists" -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update -qq
(cd "$build/src" && apt-get "${apt_opts[@]}" -qq --download-only source "libspring-java=$version")
tar -C "$build/src" -xf "$build"/src/libspring-java_*.orig.tar.*
stomp_src=("$build"/src/libspring-java-*/spring-messaging/src/main/java/org/springframework/messaging/simp/stomp)
sources=()
for f in "${stomp_src[0]}"/*.java; do
    case "$(basename "$f")" in
        Reactor2*|StompBrokerRelayMessageHandler.java|package-info.java) ;;
        *) sources+=("$f") ;;
    esac
done
javac -nowarn -encoding UTF-8 -d "$build/classes" -cp "$(./scripts/java-classpath.sh)" "${sources[@]}"
jar cf "$jar" -C "$build/classes" .
echo "$version" > "$build/spring-stomp.version"
rm -rf "$build/src" "$build/apt" "$build/classes"
