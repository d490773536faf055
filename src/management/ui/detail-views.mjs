// The detail pages: one exchange, one queue (publish, get, peek, purge, delete, bindings).

import { card, field, fmtBytes, fmtNum, fmtRate, h, stat, table } from './dom.mjs';
import { act, api, enc } from './api.mjs';

/** Messages last got or peeked, shown on their queue's page until another action. */
let shownMessages = null;

export const detailViews = {
  async exchange(vhost, name) {
    const [e, bindings] = await Promise.all([
      api('GET', `/exchanges/${enc(vhost)}/${enc(name)}`),
      api('GET', `/exchanges/${enc(vhost)}/${enc(name)}/bindings/source`),
    ]);
    return [
      h('h2', {}, `Exchange ${e.name || '(AMQP default)'}`),
      card(
        null,
        h(
          'div',
          { class: 'stats' },
          stat('Type', e.type),
          stat('Vhost', e.vhost),
          stat('Published in', fmtNum(e.message_stats.publish_in)),
          stat('Routed out', fmtNum(e.message_stats.publish_out)),
        ),
      ),
      card(
        'Bindings from this exchange',
        table(bindings, [
          ['To', (b) => `${b.destination_type} ${b.destination}`],
          ['Routing key', (b) => b.routing_key],
          ['Arguments', (b) => JSON.stringify(b.arguments)],
        ]),
      ),
      publishForm(vhost, name, ''),
      e.name && !e.name.startsWith('amq.')
        ? card(
            null,
            h(
              'button',
              {
                class: 'danger',
                onclick: () =>
                  confirm(`Delete exchange ${e.name}?`) &&
                  act('Delete exchange', async () => {
                    await api('DELETE', `/exchanges/${enc(vhost)}/${enc(name)}`);
                    location.hash = '#/exchanges';
                  }),
              },
              'Delete this exchange',
            ),
          )
        : null,
    ];
  },

  async queue(vhost, name) {
    const base = `/queues/${enc(vhost)}/${enc(name)}`;
    const [q, bindings] = await Promise.all([api('GET', base), api('GET', `${base}/bindings`)]);
    const out = h('div', { id: 'messages' });
    const count = h('input', {
      id: 'get-count',
      type: 'number',
      min: 1,
      value: 1,
      style: 'width:5rem',
    });
    const ackmode = h(
      'select',
      { id: 'get-ackmode' },
      h('option', { value: 'ack_requeue_true' }, 'Nack, requeue'),
      h('option', { value: 'ack_requeue_false' }, 'Ack, remove'),
      h('option', { value: 'reject_requeue_false' }, 'Reject, remove'),
    );
    const showMessages = (list, verb) => {
      shownMessages = { hash: location.hash, list, verb };
      out.replaceChildren(
        h(
          'p',
          { class: 'muted' },
          list.length === 0 ? 'Queue is empty.' : `${verb} ${list.length} message(s):`,
        ),
        ...list.map((m, i) =>
          h(
            'div',
            { class: 'message', 'data-message': i },
            h(
              'div',
              { class: 'muted' },
              `#${i + 1} exchange '${m.exchange}' key '${m.routing_key}' ${m.redelivered ? '(redelivered) ' : ''}${m.payload_bytes} bytes, ${m.payload_encoding}`,
            ),
            Object.keys(m.properties).length
              ? h('div', { class: 'mono' }, JSON.stringify(m.properties))
              : null,
            h('pre', { class: 'payload' }, m.payload),
          ),
        ),
      );
    };
    if (shownMessages?.hash === location.hash) showMessages(shownMessages.list, shownMessages.verb);
    const bindSource = h('input', { id: 'bind-source', required: true });
    const bindKey = h('input', { id: 'bind-key' });
    return [
      h('h2', {}, `Queue ${q.name}`),
      card(
        null,
        h(
          'div',
          { class: 'stats', id: 'queue-stats' },
          stat('Ready', fmtNum(q.messages_ready), 'stat-ready'),
          stat('Unacked', fmtNum(q.messages_unacknowledged)),
          stat('Consumers', q.consumers),
          stat('Memory (est.)', fmtBytes(q.memory)),
          stat('Incoming', fmtRate(q.message_stats.publish_details)),
          stat('Deliver/get', fmtRate(q.message_stats.deliver_get_details)),
          stat(
            'Features',
            [
              q.durable ? 'durable' : 'transient',
              q.auto_delete ? 'auto-delete' : '',
              q.exclusive ? 'exclusive' : '',
            ].join(' '),
          ),
        ),
        Object.keys(q.arguments).length
          ? h('p', { class: 'mono' }, `arguments: ${JSON.stringify(q.arguments)}`)
          : null,
      ),
      card(
        'Consumers',
        table(q.consumer_details, [
          ['Channel', (c) => c.channel_details.name],
          ['Tag', (c) => c.consumer_tag],
          ['Ack required', (c) => String(c.ack_required)],
          ['Prefetch', (c) => c.prefetch_count, true],
        ]),
      ),
      card(
        'Bindings',
        table(bindings, [
          ['From', (b) => b.source || '(default exchange)'],
          ['Routing key', (b) => b.routing_key],
          ['Arguments', (b) => JSON.stringify(b.arguments)],
          [
            '',
            (b) =>
              b.source === ''
                ? ''
                : h(
                    'button',
                    {
                      class: 'secondary',
                      onclick: () =>
                        act('Unbind', () =>
                          api(
                            'DELETE',
                            `/bindings/${enc(vhost)}/e/${enc(b.source)}/q/${enc(name)}/${enc(b.properties_key)}`,
                          ),
                        ),
                    },
                    'Unbind',
                  ),
          ],
        ]),
        h(
          'form',
          {
            class: 'inline',
            onsubmit: (ev) => {
              ev.preventDefault();
              act('Bind', () =>
                api('POST', `/bindings/${enc(vhost)}/e/${enc(bindSource.value)}/q/${enc(name)}`, {
                  routing_key: bindKey.value,
                  arguments: {},
                }),
              );
            },
          },
          field('From exchange', bindSource),
          field('Routing key', bindKey),
          h('button', { type: 'submit' }, 'Bind'),
        ),
      ),
      publishForm(vhost, 'amq.default', name),
      card(
        'Get, peek',
        h(
          'p',
          { class: 'muted' },
          'Get takes messages from the queue (and may requeue them, marked redelivered). Peek shows the first messages and leaves them exactly where they are.',
        ),
        h(
          'form',
          { class: 'inline', onsubmit: (ev) => ev.preventDefault() },
          field('Messages', count),
          field('Ack mode', ackmode),
          h(
            'button',
            {
              type: 'button',
              id: 'get-submit',
              onclick: async () => {
                await act('Get messages', async () => {
                  const list = await api('POST', `${base}/get`, {
                    count: Number(count.value),
                    ackmode: ackmode.value,
                    encoding: 'auto',
                    truncate: 50000,
                  });
                  shownMessages = { hash: location.hash, list, verb: 'Got' };
                });
              },
            },
            'Get messages',
          ),
          h(
            'button',
            {
              type: 'button',
              id: 'peek-submit',
              class: 'secondary',
              onclick: async () => {
                await act('Peek', async () => {
                  const list = await api('POST', `${base}/peek`, {
                    count: Number(count.value),
                    encoding: 'auto',
                    truncate: 50000,
                  });
                  shownMessages = { hash: location.hash, list, verb: 'Peeked at' };
                });
              },
            },
            'Peek',
          ),
        ),
        out,
      ),
      card(
        'Purge, delete',
        h(
          'form',
          { class: 'inline', onsubmit: (ev) => ev.preventDefault() },
          h(
            'button',
            {
              type: 'button',
              id: 'purge-submit',
              class: 'danger',
              onclick: () =>
                confirm(`Purge all ready messages from ${name}?`) &&
                act('Purge', () => api('DELETE', `${base}/contents`)),
            },
            'Purge messages',
          ),
          h(
            'button',
            {
              type: 'button',
              id: 'delete-submit',
              class: 'danger',
              onclick: () =>
                confirm(`Delete queue ${name}?`) &&
                act('Delete queue', async () => {
                  await api('DELETE', base);
                  location.hash = '#/queues';
                }),
            },
            'Delete queue',
          ),
        ),
      ),
    ];
  },
};

function publishForm(vhost, exchange, routingKey) {
  const key = h('input', { id: 'publish-key', value: routingKey });
  const payload = h('textarea', { id: 'publish-payload' });
  const persistent = h('input', { type: 'checkbox', id: 'publish-persistent' });
  const headers = h('input', { id: 'publish-headers', placeholder: '{"x": 1}' });
  return card(
    'Publish a message',
    h(
      'form',
      {
        onsubmit: (ev) => {
          ev.preventDefault();
          act('Publish', async () => {
            const properties = persistent.checked ? { delivery_mode: 2 } : {};
            if (headers.value.trim() !== '') properties.headers = JSON.parse(headers.value);
            const r = await api('POST', `/exchanges/${enc(vhost)}/${enc(exchange)}/publish`, {
              properties,
              routing_key: key.value,
              payload: payload.value,
              payload_encoding: 'string',
            });
            if (!r.routed) throw new Error('message published, but not routed to any queue');
          });
        },
      },
      h(
        'div',
        { class: 'inline' },
        field('Routing key', key),
        field('Headers (JSON)', headers),
        field('Persistent', persistent),
      ),
      field('Payload', payload),
      h('button', { type: 'submit', id: 'publish-submit' }, 'Publish message'),
    ),
  );
}
