#!/usr/bin/env bash
# Make a Docker engine answer on this machine (idempotent), for the container tests and images.
#
#   scripts/provision-docker.sh
#
# Installs docker.io (and debootstrap, which `learnhub images build` uses to make a local
# Debian base image when no registry answers, and docker-registry, the registry the push
# tests run on loopback; its packaged service is not started) with apt when they are missing, starts dockerd
# in the background when no engine answers, waits for it, and prints the engine's version.
# Needs root for the install and the start; does nothing but print when an engine answers.
#   DOCKERD_LOG             dockerd's log (default /var/log/learnhub-dockerd.log)
#   DOCKER_START_TIMEOUT    seconds to wait for a started dockerd to answer (default 60)
set -euo pipefail

DOCKERD_LOG=${DOCKERD_LOG:-/var/log/learnhub-dockerd.log}
DOCKER_START_TIMEOUT=${DOCKER_START_TIMEOUT:-60}

need() { command -v "$1" >/dev/null 2>&1; }
say() { echo "provision-docker: $*"; }
die() { echo "provision-docker: error: $*" >&2; exit 1; }

engine_answers() { need docker && timeout 10 docker info >/dev/null 2>&1; }

print_version() {
    say "$(docker version --format 'Docker engine {{.Server.Version}} (API {{.Server.APIVersion}}), client {{.Client.Version}}')"
}

install_packages() {
    local missing=()
    need dockerd || missing+=(docker.io)
    need debootstrap || missing+=(debootstrap)
    need docker-registry || missing+=(docker-registry)
    [ ${#missing[@]} -eq 0 ] && return
    [ "$(id -u)" = 0 ] || die "please install ${missing[*]} (or run this script as root)"
    need apt-get || die "no apt-get: please install ${missing[*]} with this system's package manager"
    say "installing ${missing[*]} with apt"
    apt-get update -qq
    # No recommends: they would bring needrestart (which prompts) and git; what dockerd needs
    # (containerd, runc, iptables, tini) are dependencies; debootstrap verifies with gpgv
    # against debian-archive-keyring.
    # No package's service starts at its install (docker-registry's would listen on every
    # address): a policy-rc.d that refuses, unless the machine has one already.
    local policy=/usr/sbin/policy-rc.d made=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && made=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" ca-certificates debian-archive-keyring gpgv xz-utils >/dev/null \
        || { [ -z "$made" ] || rm -f "$policy"; die "apt-get install ${missing[*]} failed"; }
    [ -z "$made" ] || rm -f "$policy"
}

start_engine() {
    local pid waited=0
    pid=$(pgrep -x -o dockerd || true)
    if [ -n "$pid" ]; then
        # Started by someone else a moment ago (or stuck): wait for it, never start a second one.
        say "dockerd (pid $pid) is running but does not answer yet; waiting"
    else
        [ "$(id -u)" = 0 ] || die "no Docker engine answers and only root can start dockerd"
        # A socket left behind by an engine that is gone makes a new dockerd fail.
        rm -f /var/run/docker.sock
        say "starting $(command -v dockerd) in the background (log: $DOCKERD_LOG)"
        # setsid + nohup: the engine outlives this script and the shell that ran it.
        setsid nohup "$(command -v dockerd)" >>"$DOCKERD_LOG" 2>&1 </dev/null &
        pid=$!
    fi
    until engine_answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$DOCKERD_LOG" >&2 || true
            die "dockerd exited during start-up; its log is above and in $DOCKERD_LOG"
        fi
        if [ "$waited" -ge "$DOCKER_START_TIMEOUT" ]; then
            tail -n 30 "$DOCKERD_LOG" >&2 || true
            die "dockerd (pid $pid) did not answer within ${DOCKER_START_TIMEOUT}s; see $DOCKERD_LOG"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    say "dockerd (pid $pid) answers after ${waited}s"
}

if engine_answers; then
    # Still make sure debootstrap is there for the local base image.
    if ! need debootstrap && [ "$(id -u)" = 0 ]; then install_packages; fi
    print_version
    exit 0
fi
install_packages
need docker || die "the docker client is missing after the install"
start_engine
print_version
