// Go's amqp091 client (RabbitMQ's own, Debian's golang-github-rabbitmq-amqp091-go-dev) against a
// broker, as a self-checking program.
//
// usage: go run amqp091_check.go PORT   (GO111MODULE=off GOPATH=/usr/share/gocode)
//
// Covers: connect (PLAIN, heartbeat negotiation), topic routing, every property and header type
// Go sends, publisher confirms, basic.get, qos with nack+requeue (redelivered flag), a mandatory
// publish returned as unroutable (312), a channel error (404) after which the connection still
// works, and a clean close. Prints "OK <step>" per step and "OK amqp091" at the end; any
// mismatch prints a FAIL line and exits 1.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

type checkFailed struct{ msg string }

func fail(format string, args ...interface{}) {
	panic(checkFailed{fmt.Sprintf(format, args...)})
}

func must(err error, what string) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

func unique(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", prefix, os.Getpid(), hex.EncodeToString(b))
}

func receive(ch <-chan amqp.Delivery, what string) amqp.Delivery {
	select {
	case d, ok := <-ch:
		if !ok {
			fail("%s: the delivery channel closed", what)
		}
		return d
	case <-time.After(10 * time.Second):
		fail("%s: no delivery within 10 s", what)
	}
	return amqp.Delivery{}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: amqp091_check PORT")
		os.Exit(2)
	}
	defer func() {
		if r := recover(); r != nil {
			if c, ok := r.(checkFailed); ok {
				fmt.Println("FAIL " + c.msg)
				os.Exit(1)
			}
			panic(r)
		}
	}()
	url := fmt.Sprintf("amqp://guest:guest@127.0.0.1:%s/", os.Args[1])
	conn, err := amqp.DialConfig(url, amqp.Config{Heartbeat: 5 * time.Second, Locale: "en_US"})
	must(err, "dial")
	if conn.Major != 0 || conn.Minor != 9 {
		fail("protocol version %d-%d", conn.Major, conn.Minor)
	}
	if _, ok := conn.Properties["capabilities"].(amqp.Table); !ok {
		fail("server properties without capabilities: %v", conn.Properties)
	}
	fmt.Println("OK connect")

	ch, err := conn.Channel()
	must(err, "channel")

	// Topic routing.
	exchange := unique("go-topic")
	must(ch.ExchangeDeclare(exchange, "topic", false, true, false, false, nil), "exchange.declare")
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	must(err, "queue.declare")
	must(ch.QueueBind(q.Name, "logs.*.error", exchange, false, nil), "queue.bind")
	deliveries, err := ch.Consume(q.Name, "go-consumer", false, false, false, false, nil)
	must(err, "basic.consume")
	for _, key := range []string{"logs.web.info", "logs.web.error", "logs.db.error", "logs.error"} {
		must(ch.Publish(exchange, key, false, false, amqp.Publishing{Body: []byte(key)}), "publish "+key)
	}
	for _, want := range []string{"logs.web.error", "logs.db.error"} {
		d := receive(deliveries, "topic "+want)
		if string(d.Body) != want || d.RoutingKey != want || d.Exchange != exchange {
			fail("topic: wanted %s, got body %q key %q exchange %q", want, d.Body, d.RoutingKey, d.Exchange)
		}
		must(d.Ack(false), "ack")
	}
	fmt.Println("OK topic")

	// Properties and every header type amqp091 encodes.
	stamp := time.Unix(1700000000, 0).UTC()
	headers := amqp.Table{
		"bool":    true,
		"int8":    int8(-8),
		"uint8":   uint8(200),
		"int16":   int16(-1600),
		"int32":   int32(-320000),
		"int64":   int64(-6400000000000),
		"float32": float32(1.5),
		"float64": float64(2.25),
		"decimal": amqp.Decimal{Scale: 2, Value: 12345},
		"string":  "hello",
		"bytes":   []byte{0, 1, 2, 255},
		"time":    stamp,
		"array":   []interface{}{"a", int32(1), true},
		"table":   amqp.Table{"nested": "yes", "n": int32(7)},
		"void":    nil,
	}
	msg := amqp.Publishing{
		Headers:         headers,
		ContentType:     "application/json",
		ContentEncoding: "utf-8",
		DeliveryMode:    amqp.Persistent,
		Priority:        3,
		CorrelationId:   "corr-1",
		ReplyTo:         "reply-queue",
		Expiration:      "60000",
		MessageId:       "msg-1",
		Timestamp:       stamp,
		Type:            "greeting",
		UserId:          "guest",
		AppId:           "amqp091-check",
		Body:            []byte(`{"hello":"world"}`),
	}
	must(ch.Publish(exchange, "logs.props.error", false, false, msg), "publish with properties")
	d := receive(deliveries, "properties")
	must(d.Ack(false), "ack")
	if string(d.Body) != string(msg.Body) || d.ContentType != msg.ContentType ||
		d.ContentEncoding != msg.ContentEncoding || d.DeliveryMode != msg.DeliveryMode ||
		d.Priority != msg.Priority || d.CorrelationId != msg.CorrelationId ||
		d.ReplyTo != msg.ReplyTo || d.Expiration != msg.Expiration || d.MessageId != msg.MessageId ||
		!d.Timestamp.Equal(msg.Timestamp) || d.Type != msg.Type || d.UserId != msg.UserId ||
		d.AppId != msg.AppId {
		fail("properties: sent %+v, got %+v", msg, d)
	}
	// Every value comes back as the Go type it was sent as (amqp091 writes and reads the same
	// field-table tags: t b B s I l f d D S x T A F V).
	for key, sent := range headers {
		got, present := d.Headers[key]
		if !present {
			fail("header %s missing (got %v)", key, d.Headers)
		}
		if !reflect.DeepEqual(normalise(got), normalise(sent)) {
			fail("header %s: sent %#v, got %#v", key, sent, got)
		}
	}
	fmt.Println("OK properties")

	// Publisher confirms.
	cch, err := conn.Channel()
	must(err, "confirm channel")
	must(cch.Confirm(false), "confirm.select")
	confirms := cch.NotifyPublish(make(chan amqp.Confirmation, 200))
	work, err := cch.QueueDeclare(unique("go-work"), false, true, false, false, nil)
	must(err, "work queue")
	for i := 0; i < 100; i++ {
		must(cch.Publish("", work.Name, false, false, amqp.Publishing{Body: []byte(fmt.Sprint(i))}), "confirmed publish")
	}
	for i := 1; i <= 100; i++ {
		select {
		case c := <-confirms:
			if !c.Ack || c.DeliveryTag != uint64(i) {
				fail("confirm %d: got %+v", i, c)
			}
		case <-time.After(10 * time.Second):
			fail("confirm %d did not arrive", i)
		}
	}
	fmt.Println("OK confirms")

	// basic.get, then qos + nack with requeue: the message comes back redelivered.
	got, ok, err := cch.Get(work.Name, false)
	must(err, "basic.get")
	if !ok || string(got.Body) != "0" || got.MessageCount != 99 {
		fail("basic.get: ok=%v body=%q count=%d", ok, got.Body, got.MessageCount)
	}
	must(got.Nack(false, true), "nack requeue")
	must(cch.Qos(1, 0, false), "basic.qos")
	wd, err := cch.Consume(work.Name, "", false, false, false, false, nil)
	must(err, "consume work")
	first := receive(wd, "redelivery")
	if string(first.Body) != "0" || !first.Redelivered {
		fail("after nack: body %q redelivered %v", first.Body, first.Redelivered)
	}
	must(first.Ack(false), "ack redelivered")
	second := receive(wd, "next")
	if string(second.Body) != "1" || second.Redelivered {
		fail("next: body %q redelivered %v", second.Body, second.Redelivered)
	}
	must(second.Ack(false), "ack next")
	fmt.Println("OK get_qos_nack")

	// A mandatory publish nobody can route comes back as basic.return 312.
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	must(ch.Publish(exchange, "nobody.listens", true, false, amqp.Publishing{Body: []byte("lost?")}), "mandatory publish")
	select {
	case r := <-returns:
		if r.ReplyCode != 312 || r.ReplyText != "NO_ROUTE" || string(r.Body) != "lost?" {
			fail("return: %d %s %q", r.ReplyCode, r.ReplyText, r.Body)
		}
	case <-time.After(10 * time.Second):
		fail("no basic.return")
	}
	fmt.Println("OK mandatory_return")

	// A channel error closes that channel only.
	ech, err := conn.Channel()
	must(err, "error channel")
	closed := ech.NotifyClose(make(chan *amqp.Error, 1))
	_, err = ech.QueueDeclarePassive(unique("go-missing"), false, false, false, false, nil)
	var aerr *amqp.Error
	if !errors.As(err, &aerr) || aerr.Code != amqp.NotFound {
		fail("passive declare of a missing queue: %v", err)
	}
	select {
	case e := <-closed:
		if e == nil || e.Code != 404 {
			fail("channel close: %v", e)
		}
	case <-time.After(10 * time.Second):
		fail("the channel did not close")
	}
	if conn.IsClosed() {
		fail("the connection closed with the channel")
	}
	must(ch.Publish(exchange, "logs.after.error", false, false, amqp.Publishing{Body: []byte("still here")}), "publish after error")
	if after := receive(deliveries, "after the channel error"); string(after.Body) != "still here" {
		fail("after the channel error: %q", after.Body)
	}
	fmt.Println("OK channel_error")

	must(ch.Close(), "channel.close")
	must(cch.Close(), "channel.close")
	must(conn.Close(), "connection.close")
	fmt.Println("OK amqp091")
}

// normalise maps values to what the comparison should see: byte slices as strings, tables as
// plain maps, arrays element by element.
func normalise(v interface{}) interface{} {
	switch x := v.(type) {
	case []byte:
		return "bytes:" + string(x)
	case amqp.Table:
		m := map[string]interface{}{}
		for k, e := range x {
			m[k] = normalise(e)
		}
		return m
	case []interface{}:
		out := make([]interface{}, len(x))
		for i, e := range x {
			out[i] = normalise(e)
		}
		return out
	case time.Time:
		return x.UTC().Unix()
	}
	return v
}
