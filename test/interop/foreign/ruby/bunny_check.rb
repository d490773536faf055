# frozen_string_literal: true

# Bunny (Debian's ruby-bunny) against a broker, as a self-checking program.
#
# usage: bunny_check.rb PORT
# Covers: connect, declare, publish/consume through direct, fanout and topic exchanges, message
# properties and headers, publisher confirms (wait_for_confirms), basic.get, and a channel-level
# error (404, then 406) after which the connection still works.
# Prints "OK <step>" per step and "OK bunny" at the end; any mismatch exits 1 with a FAIL line.

require 'bunny'
require 'securerandom'
require 'timeout'

class CheckFailed < StandardError; end

def check(condition, message)
  raise CheckFailed, message unless condition
end

def check_equal(actual, expected, what)
  return if actual == expected && actual.instance_of?(expected.class)

  raise CheckFailed, "#{what}: expected #{expected.inspect} (#{expected.class}), " \
                     "got #{actual.inspect} (#{actual.class})"
end

def unique(prefix)
  "#{prefix}-#{Process.pid}-#{SecureRandom.hex(4)}"
end

# Poll `condition` until it holds, at most `timeout` seconds (deliveries arrive on Bunny's thread).
def wait_for(what, timeout = 15)
  deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
  100_000.times do
    return if yield
    raise CheckFailed, "timed out after #{timeout}s waiting for #{what}" if
      Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

    sleep 0.01
  end
  raise CheckFailed, "gave up waiting for #{what}"
end

# Deliveries collected by a consumer, safe to read from the main thread.
class Inbox
  def initialize
    @lock = Mutex.new
    @items = []
  end

  def push(item)
    @lock.synchronize { @items << item }
  end

  def items
    @lock.synchronize { @items.dup }
  end

  def size
    @lock.synchronize { @items.size }
  end
end

def subscribe(queue, manual_ack: false)
  inbox = Inbox.new
  consumer = queue.subscribe(manual_ack: manual_ack) do |delivery_info, properties, payload|
    inbox.push([delivery_info, properties, payload])
  end
  [inbox, consumer]
end

# The same value with every string as its bytes (encoding ASCII-8BIT), for comparisons.
def binary(value)
  case value
  when String then value.b
  when Array then value.map { |v| binary(v) }
  when Hash then value.to_h { |k, v| [k, binary(v)] }
  else value
  end
end

def step(name)
  yield
  puts "OK #{name}"
  $stdout.flush
end

port = Integer(ARGV.fetch(0) { abort 'usage: bunny_check.rb PORT' })

begin
  Timeout.timeout(50) do
    conn = Bunny.new(host: '127.0.0.1', port: port, user: 'guest', pass: 'guest', vhost: '/',
                     automatically_recover: false, connection_timeout: 10,
                     continuation_timeout: 10_000, logger: Logger.new(nil))
    conn.start
    check(conn.open?, 'connection should be open after start')
    ch = conn.create_channel

    step('direct') do
      ex = ch.direct(unique('bunny.direct'), auto_delete: true)
      q_red = ch.queue('', exclusive: true)
      q_any = ch.queue('', exclusive: true)
      check(q_red.name.start_with?('amq.gen-'), "server-named queue #{q_red.name.inspect}")
      q_red.bind(ex, routing_key: 'red')
      %w[red green blue].each { |k| q_any.bind(ex, routing_key: k) }
      red, = subscribe(q_red)
      any, = subscribe(q_any)
      %w[red green yellow blue red].each_with_index do |key, i|
        ex.publish("#{key}-#{i}", routing_key: key)
      end
      wait_for('direct deliveries') { red.size == 2 && any.size == 4 }
      check_equal(red.items.map { |d| d[2] }, %w[red-0 red-4], "bodies bound to 'red'")
      check_equal(any.items.map { |d| d[2] }, %w[red-0 green-1 blue-3 red-4], 'bodies bound to r/g/b')
      check_equal(red.items.first[0].routing_key, 'red', 'delivery routing key')
      check_equal(red.items.first[0].exchange, ex.name, 'delivery exchange')
    end

    step('fanout') do
      ex = ch.fanout(unique('bunny.fanout'), auto_delete: true)
      inboxes = Array.new(3) do
        q = ch.queue('', exclusive: true).bind(ex)
        subscribe(q).first
      end
      3.times { |i| ex.publish("broadcast #{i}", routing_key: "ignored.#{i}") }
      wait_for('fanout deliveries') { inboxes.all? { |b| b.size == 3 } }
      inboxes.each_with_index do |b, n|
        check_equal(b.items.map { |d| d[2] }, ['broadcast 0', 'broadcast 1', 'broadcast 2'],
                    "fanout subscriber #{n}")
      end
    end

    step('topic') do
      ex = ch.topic(unique('bunny.topic'), auto_delete: true)
      bindings = { 'star' => ['*.eu.*'], 'hash' => ['logs.#'], 'all' => ['#'] }
      inboxes = bindings.to_h do |name, keys|
        q = ch.queue('', exclusive: true)
        keys.each { |k| q.bind(ex, routing_key: k) }
        [name, subscribe(q).first]
      end
      keys = %w[cpu.eu.paris cpu.us.nyc logs logs.eu.x logs.a.b.c eu cpu.eu]
      keys.each { |k| ex.publish(k, routing_key: k) }
      expected = {
        'star' => %w[cpu.eu.paris logs.eu.x],
        'hash' => %w[logs logs.eu.x logs.a.b.c],
        'all' => keys
      }
      wait_for('topic deliveries') { expected.all? { |n, e| inboxes[n].size >= e.size } }
      # Everything is routed in publish order on one channel: once 'all' has every key, the
      # others have had their chance too.
      expected.each do |name, want|
        check_equal(inboxes[name].items.map { |d| d[2] }, want, "topic binding #{name}")
      end
    end

    step('properties') do
      q = ch.queue('', exclusive: true)
      stamp = Time.at(1_700_000_000)
      headers = {
        'int' => 42, 'negative' => -7, 'big' => 2**40, 'float' => 2.5, 'string' => "h\u00e9llo",
        'true' => true, 'false' => false, 'void' => nil, 'array' => [1, 'two', [3]],
        'table' => { 'nested' => { 'deep' => 'yes' } }, 'time' => stamp
      }
      inbox, = subscribe(q, manual_ack: true)
      ch.default_exchange.publish('props', routing_key: q.name, content_type: 'text/plain',
                                           content_encoding: 'utf-8', headers: headers,
                                           persistent: true, priority: 3,
                                           correlation_id: 'c-1', reply_to: 'somewhere',
                                           expiration: '600000', message_id: 'm-1',
                                           timestamp: stamp.to_i, type: 'kind', user_id: 'guest',
                                           app_id: 'bunny-check')
      wait_for('the message with properties') { inbox.size == 1 }
      info, props, body = inbox.items.first
      check_equal(body, 'props', 'body')
      {
        content_type: 'text/plain', content_encoding: 'utf-8', delivery_mode: 2, priority: 3,
        correlation_id: 'c-1', reply_to: 'somewhere', expiration: '600000', message_id: 'm-1',
        timestamp: stamp, type: 'kind', user_id: 'guest', app_id: 'bunny-check'
      }.each { |k, v| check_equal(props.public_send(k), v, "property #{k}") }
      # Bunny hands back long strings as binary (ASCII-8BIT): compare their bytes.
      headers.each { |k, v| check_equal(binary(props.headers[k]), binary(v), "header #{k}") }
      check_equal(props.headers.keys.sort, headers.keys.sort, 'header names')
      ch.ack(info.delivery_tag)
    end

    step('confirms') do
      cch = conn.create_channel
      cch.confirm_select
      q = cch.queue('', exclusive: true)
      200.times { |i| cch.default_exchange.publish("confirmed #{i}", routing_key: q.name) }
      check_equal(cch.wait_for_confirms, true, 'wait_for_confirms')
      check(cch.nacked_set.empty?, "nacked publishes: #{cch.nacked_set.to_a.inspect}")
      check(cch.unconfirmed_set.empty?, "unconfirmed publishes: #{cch.unconfirmed_set.to_a.inspect}")
      check_equal(q.message_count, 200, 'messages in the queue after confirms')
      cch.close
    end

    step('basic_get') do
      q = ch.queue('', exclusive: true)
      info, props, body = q.pop
      check_equal(info, nil, 'basic.get on an empty queue')
      check_equal(body, nil, 'body from an empty queue')
      3.times { |i| ch.default_exchange.publish("get #{i}", routing_key: q.name, content_type: 'text/x') }
      info, props, body = q.pop(manual_ack: true)
      check_equal(body, 'get 0', 'first basic.get')
      check_equal(props.content_type, 'text/x', 'content type from basic.get')
      check_equal(info.redelivered?, false, 'redelivered on first get')
      ch.reject(info.delivery_tag, true)
      info, _props, body = q.pop(manual_ack: true)
      check_equal(body, 'get 0', 'basic.get after a requeueing reject')
      check_equal(info.redelivered?, true, 'redelivered after reject with requeue')
      ch.ack(info.delivery_tag)
      _info, _props, body = q.pop
      check_equal(body, 'get 1', 'second message')
      check_equal(q.message_count, 1, 'message_count after two gets')
    end

    step('channel_error') do
      bad = conn.create_channel
      missing = unique('missing')
      begin
        bad.queue(missing, passive: true)
        raise CheckFailed, 'passive declare of a missing queue succeeded'
      rescue Bunny::NotFound => e
        check(e.message.include?("NOT_FOUND - no queue '#{missing}'"), "404 text: #{e.message}")
      end
      check(bad.closed?, 'channel should be closed after the 404')
      check(conn.open?, 'connection should stay open after a channel error')
      check(ch.open?, 'the other channel should stay open')
      q = ch.queue('', exclusive: true)
      ch.default_exchange.publish('after 404', routing_key: q.name)
      _i, _p, body = q.pop
      check_equal(body, 'after 404', 'publish/get on another channel after the 404')

      bad2 = conn.create_channel
      name = unique('durable')
      bad2.queue(name, durable: false, auto_delete: true)
      begin
        # Channel#queue would answer from Bunny's cache; queue_declare always asks the broker.
        bad2.queue_declare(name, durable: true, auto_delete: true)
        raise CheckFailed, 'redeclare with another durable flag succeeded'
      rescue Bunny::PreconditionFailed => e
        check(e.message.include?('PRECONDITION_FAILED'), "406 text: #{e.message}")
      end
      fresh = conn.create_channel
      fresh_q = fresh.queue('', exclusive: true)
      fresh.default_exchange.publish('fresh', routing_key: fresh_q.name)
      _i, _p, body = fresh_q.pop
      check_equal(body, 'fresh', 'a new channel after two channel errors')
      fresh.queue_delete(name)
    end

    conn.close
    check(conn.closed?, 'connection should be closed')
  end
  puts 'OK bunny'
rescue CheckFailed => e
  warn "FAIL: #{e.message}"
  exit 1
rescue Timeout::Error
  warn 'FAIL: watchdog: the program ran past its time limit'
  exit 1
end
