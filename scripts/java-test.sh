#!/usr/bin/env bash
# Spring's STOMP client against the broker (clients/java/StompboxSpringTest.java): installs
# what it needs (scripts/setup-java.sh), compiles the test with javac (no Maven or Gradle) and
# runs it against $STOMPBOX_BIN (default target/debug/stompbox). Fails when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup-java.sh
build=clients/java/build
classpath="$build/spring-stomp.jar:$(./scripts/java-classpath.sh)"
rm -rf "$build/test"
javac -encoding UTF-8 -d "$build/test" -cp "$classpath" clients/java/*.java
STOMPBOX_BIN="${STOMPBOX_BIN:-target/debug/stompbox}" \
    timeout 120 java -cp "$build/test:$classpath" StompboxSpringTest
