#!/bin/sh
# The differential and client tests compare Warren with a real RabbitMQ on 127.0.0.1:5672.
# Start it if it is not running (it is a Debian package installed by install-deps.sh) and wait
# until it accepts AMQP connections.
set -eu

port_open() {
  node -e "const s=require('net').connect(${1:-5672},'127.0.0.1');s.on('connect',()=>process.exit(0));s.on('error',()=>process.exit(1));setTimeout(()=>process.exit(1),2000)"
}

# The management API tests compare Warren's HTTP API with RabbitMQ's on 127.0.0.1:15672, so the
# management plugin must be enabled (idempotent; --offline writes enabled_plugins for the next boot).
rabbitmq-plugins enable --offline rabbitmq_management >/dev/null 2>&1 || true

ensure_management() {
  rabbitmq-plugins enable rabbitmq_management >/dev/null 2>&1 || true
  j=0
  while [ $j -lt 60 ]; do
    if port_open 15672; then
      echo "ensure-rabbitmq: RabbitMQ management API is up on 127.0.0.1:15672"
      return 0
    fi
    j=$((j + 1))
    sleep 1
  done
  echo "ensure-rabbitmq: RabbitMQ management API did not come up on 127.0.0.1:15672 within 60 s" >&2
  exit 1
}

if port_open; then
  echo "ensure-rabbitmq: RabbitMQ is accepting connections on 127.0.0.1:5672"
  ensure_management
  exit 0
fi

echo "ensure-rabbitmq: RabbitMQ is not running; starting it"
rabbitmq-server -detached || true
i=0
while [ $i -lt 90 ]; do
  if port_open; then
    echo "ensure-rabbitmq: RabbitMQ is up"
    ensure_management
    exit 0
  fi
  i=$((i + 1))
  sleep 1
done
echo "ensure-rabbitmq: RabbitMQ did not come up on 127.0.0.1:5672 within 90 s" >&2
exit 1
