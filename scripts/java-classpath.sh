#!/usr/bin/env bash
# The class path of Spring's STOMP client as Debian installs it (scripts/setup-java.sh): the
# messaging, core, context and beans modules and commons-logging.
set -euo pipefail
jars=(spring3-messaging spring3-core spring3-context spring3-beans commons-logging)
printf '%s' "$(printf '/usr/share/java/%s.jar:' "${jars[@]}")"
