#!/bin/sh
# Installs the system packages Warren's tests use: real AMQP clients in other languages
# (pika, py-amqp, Celery, bunny, amqp-tools, Go's amqp091) and RabbitMQ itself for differential tests.
# Idempotent: installs only what is missing. Needs root (or sudo) only when something is missing.
set -eu

PACKAGES="python3-pika python3-amqp python3-celery ruby-bunny amqp-tools rabbitmq-server"
# Headless Chromium for the management web UI's end-to-end tests (driven by playwright-core).
PACKAGES="$PACKAGES chromium"
# Go's amqp091 client (RabbitMQ's own Go client) and a Go toolchain to build the interop program.
PACKAGES="$PACKAGES golang-go golang-github-rabbitmq-amqp091-go-dev"
# openssl makes the CA, server and client certificates of the TLS tests (test/security/certs.ts).
PACKAGES="$PACKAGES openssl"

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

if [ -z "$missing" ]; then
  echo "install-deps: all system packages present"
  exit 0
fi

echo "install-deps: installing:$missing"
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "install-deps: need root to install:$missing (run: apt-get install$missing)" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
