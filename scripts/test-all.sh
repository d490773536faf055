#!/bin/sh
# Installs everything the tests need and runs every check CI runs:
# system packages, npm packages, generated-code drift, typecheck, lint, format, build, tests.
set -eu
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "system packages (real AMQP clients, RabbitMQ)"
sh scripts/install-deps.sh
step "RabbitMQ for differential tests"
sh scripts/ensure-rabbitmq.sh
step "npm packages"
npm ci --no-audit --no-fund
step "generated protocol tables match the spec"
npm run --silent generate:check
step "typecheck"
npm run --silent typecheck
step "lint"
npm run --silent lint
step "format"
npm run --silent format:check
step "build"
npm run --silent build
step "tests"
npx vitest run
