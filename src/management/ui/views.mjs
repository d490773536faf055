// The list pages of the management UI: overview, connections, channels, exchanges, queues, admin.

import {
  card,
  field,
  flash,
  fmtBytes,
  fmtNum,
  fmtRate,
  h,
  lineChart,
  stat,
  table,
} from './dom.mjs';
import { act, api, enc, session } from './api.mjs';

/** Rows per page of the queue list. */
const QUEUE_PAGE = 500;

export const listViews = {
  async overview() {
    const [o, history, nodes] = await Promise.all([
      api('GET', '/overview'),
      api('GET', '/warren/history'),
      api('GET', '/nodes').catch(() => []),
    ]);
    const s = history.samples;
    const times = s.map((x) => x.timestamp);
    const ms = o.message_stats;
    const totals = o.object_totals;
    const node = nodes[0];
    return [
      h('h2', {}, 'Overview'),
      card(
        null,
        h(
          'div',
          { class: 'stats', id: 'totals' },
          stat('Connections', totals.connections),
          stat('Channels', totals.channels),
          stat('Exchanges', totals.exchanges),
          stat('Queues', totals.queues),
          stat('Consumers', totals.consumers),
          stat('Ready', o.queue_totals.messages_ready),
          stat('Unacked', o.queue_totals.messages_unacknowledged),
        ),
      ),
      h(
        'div',
        { class: 'grid' },
        card(
          'Message rates',
          lineChart(
            [
              { label: 'publish', values: s.map((x) => x.publish) },
              { label: 'deliver/get', values: s.map((x) => x.deliver_get) },
              { label: 'ack', values: s.map((x) => x.ack) },
              { label: 'confirm', values: s.map((x) => x.confirm) },
            ],
            times,
            '/s',
          ),
        ),
        card(
          'Queued messages',
          lineChart(
            [
              { label: 'ready', values: s.map((x) => x.messages_ready) },
              { label: 'unacked', values: s.map((x) => x.messages_unacknowledged) },
            ],
            times,
            '',
          ),
        ),
      ),
      card(
        'Totals',
        table(
          ['publish', 'confirm', 'deliver', 'deliver_no_ack', 'get', 'ack', 'redeliver'].map(
            (k) => ({ k }),
          ),
          [
            ['Counter', (r) => r.k],
            ['Total', (r) => fmtNum(ms[r.k]), true],
            ['Rate', (r) => fmtRate(ms[`${r.k}_details`]), true],
          ],
        ),
      ),
      node
        ? card(
            `Node ${node.name}`,
            h(
              'div',
              { class: 'stats' },
              stat('Memory', `${fmtBytes(node.mem_used)} / ${fmtBytes(node.mem_limit)}`),
              stat('Disk free', fmtBytes(node.disk_free)),
              stat('File descriptors', node.fd_used),
              stat('Uptime', `${Math.round(node.uptime / 1000)} s`),
              stat('Version', o.product_version),
            ),
          )
        : null,
    ];
  },

  async connections() {
    const rows = await api('GET', '/connections');
    return [
      h('h2', {}, 'Connections'),
      card(
        null,
        table(
          rows,
          [
            ['Name', (c) => c.name],
            ['User', (c) => c.user],
            ['Vhost', (c) => c.vhost],
            [
              'Client',
              (c) => `${c.client_properties.product ?? ''} ${c.client_properties.version ?? ''}`,
            ],
            ['State', (c) => c.state],
            ['Channels', (c) => c.channels, true],
            ['From client', (c) => fmtRate(c.recv_oct_details), true],
            ['To client', (c) => fmtRate(c.send_oct_details), true],
            [
              '',
              (c) =>
                h(
                  'button',
                  {
                    class: 'danger',
                    onclick: () =>
                      confirm(`Close ${c.name}?`) &&
                      act('Close connection', () => api('DELETE', `/connections/${enc(c.name)}`)),
                  },
                  'Close',
                ),
            ],
          ],
          (c) => ({ 'data-connection': c.name }),
        ),
      ),
    ];
  },

  async channels() {
    const rows = await api('GET', '/channels');
    return [
      h('h2', {}, 'Channels'),
      card(
        null,
        table(rows, [
          ['Name', (c) => c.name],
          ['User', (c) => c.user],
          ['Vhost', (c) => c.vhost],
          ['Mode', (c) => [c.confirm ? 'confirm' : '', c.transactional ? 'tx' : ''].join(' ')],
          ['Prefetch', (c) => c.prefetch_count || c.global_prefetch_count, true],
          ['Consumers', (c) => c.consumer_count, true],
          ['Unacked', (c) => c.messages_unacknowledged, true],
          ['State', (c) => c.state],
        ]),
      ),
    ];
  },

  async exchanges() {
    const rows = await api('GET', '/exchanges');
    const name = h('input', { id: 'exchange-name', required: true });
    const type = h(
      'select',
      { id: 'exchange-type' },
      ['direct', 'fanout', 'topic', 'headers'].map((t) => h('option', {}, t)),
    );
    const durable = h('input', { type: 'checkbox', checked: true });
    return [
      h('h2', {}, 'Exchanges'),
      card(
        null,
        table(
          rows,
          [
            ['Vhost', (e) => e.vhost],
            [
              'Name',
              (e) =>
                h(
                  'a',
                  { href: `#/exchange/${enc(e.vhost)}/${enc(e.name || 'amq.default')}` },
                  e.name || '(AMQP default)',
                ),
            ],
            ['Type', (e) => e.type],
            [
              'Features',
              (e) =>
                [e.durable ? 'D' : '', e.auto_delete ? 'AD' : '', e.internal ? 'I' : ''].join(' '),
            ],
            ['In', (e) => fmtRate(e.message_stats?.publish_in_details), true],
            ['Out', (e) => fmtRate(e.message_stats?.publish_out_details), true],
          ],
          (e) => ({ 'data-exchange': e.name }),
        ),
      ),
      card(
        'Add an exchange',
        h(
          'form',
          {
            class: 'inline',
            onsubmit: (ev) => {
              ev.preventDefault();
              act('Add exchange', () =>
                api('PUT', `/exchanges/%2F/${enc(name.value)}`, {
                  type: type.value,
                  durable: durable.checked,
                }),
              );
            },
          },
          field('Name', name),
          field('Type', type),
          field('Durable', durable),
          h('button', { type: 'submit' }, 'Add exchange'),
        ),
      ),
    ];
  },

  async queues() {
    // Paged on the server: only the rows shown are built, however many queues there are.
    const filter = h('input', {
      id: 'queue-filter',
      placeholder: 'filter by name',
      onchange: () => session.refresh(),
    });
    const page = await api(
      'GET',
      `/queues?page=1&page_size=${QUEUE_PAGE}&sort=name&name=${enc(filter.value)}`,
    );
    const rows = page.items;
    const name = h('input', { id: 'queue-name', required: true });
    const durable = h('input', { type: 'checkbox', id: 'queue-durable', checked: true });
    return [
      h('h2', {}, 'Queues'),
      card(
        null,
        h(
          'form',
          { class: 'inline', onsubmit: (ev) => ev.preventDefault() },
          field('Filter', filter),
          h(
            'span',
            { class: 'muted', id: 'queue-count' },
            page.filtered_count > rows.length
              ? `showing ${rows.length} of ${page.filtered_count} queues (${page.total_count} in all)`
              : `${page.filtered_count} of ${page.total_count} queues`,
          ),
        ),
        table(
          rows,
          [
            ['Vhost', (q) => q.vhost],
            ['Name', (q) => h('a', { href: `#/queue/${enc(q.vhost)}/${enc(q.name)}` }, q.name)],
            [
              'Features',
              (q) =>
                [q.durable ? 'D' : '', q.auto_delete ? 'AD' : '', q.exclusive ? 'Excl' : ''].join(
                  ' ',
                ),
            ],
            ['Ready', (q) => fmtNum(q.messages_ready), true],
            ['Unacked', (q) => fmtNum(q.messages_unacknowledged), true],
            ['Total', (q) => fmtNum(q.messages), true],
            ['Incoming', (q) => fmtRate(q.message_stats?.publish_details), true],
            ['Deliver/get', (q) => fmtRate(q.message_stats?.deliver_get_details), true],
            ['Ack', (q) => fmtRate(q.message_stats?.ack_details), true],
            ['Consumers', (q) => q.consumers, true],
          ],
          (q) => ({ 'data-queue': q.name }),
        ),
      ),
      card(
        'Add a queue',
        h(
          'form',
          {
            class: 'inline',
            onsubmit: (ev) => {
              ev.preventDefault();
              act('Add queue', () =>
                api('PUT', `/queues/%2F/${enc(name.value)}`, { durable: durable.checked }),
              );
            },
          },
          field('Name', name),
          field('Durable', durable),
          h('button', { type: 'submit', id: 'queue-add' }, 'Add queue'),
        ),
      ),
    ];
  },

  async admin() {
    const users = await api('GET', '/users').catch(() => null);
    const vhosts = await api('GET', '/vhosts');
    const uname = h('input', { id: 'user-name', required: true });
    const upass = h('input', { id: 'user-password', type: 'password' });
    const utags = h('input', {
      id: 'user-tags',
      placeholder: 'administrator, monitoring, management',
    });
    const defs = h('textarea', {
      id: 'definitions-text',
      placeholder: 'Paste a definitions JSON document, or choose a file',
    });
    const file = h('input', {
      type: 'file',
      accept: '.json,application/json',
      onchange: async () => {
        defs.value = await file.files[0].text();
      },
    });
    return [
      h('h2', {}, 'Admin'),
      users
        ? card(
            'Users',
            table(users, [
              ['Name', (u) => u.name],
              ['Tags', (u) => u.tags.join(', ')],
              [
                '',
                (u) =>
                  h(
                    'button',
                    {
                      class: 'secondary',
                      onclick: () =>
                        confirm(`Delete user ${u.name}?`) &&
                        act('Delete user', () => api('DELETE', `/users/${enc(u.name)}`)),
                    },
                    'Delete',
                  ),
              ],
            ]),
            h(
              'form',
              {
                class: 'inline',
                onsubmit: (ev) => {
                  ev.preventDefault();
                  act('Add user', async () => {
                    await api('PUT', `/users/${enc(uname.value)}`, {
                      password: upass.value,
                      tags: utags.value,
                    });
                    await api('PUT', `/permissions/%2F/${enc(uname.value)}`, {
                      configure: '.*',
                      write: '.*',
                      read: '.*',
                    });
                  });
                },
              },
              field('Name', uname),
              field('Password', upass),
              field('Tags', utags),
              h('button', { type: 'submit' }, 'Add user (full access to /)'),
            ),
          )
        : null,
      card(
        'Virtual hosts',
        table(vhosts, [
          ['Name', (v) => v.name],
          ['Ready', (v) => fmtNum(v.messages_ready), true],
          ['Unacked', (v) => fmtNum(v.messages_unacknowledged), true],
        ]),
      ),
      card(
        'Definitions',
        h(
          'p',
          { class: 'muted' },
          'Users, vhosts, permissions, exchanges, queues and bindings in RabbitMQ’s definitions format.',
        ),
        h(
          'form',
          { class: 'inline', onsubmit: (ev) => ev.preventDefault() },
          h(
            'button',
            { type: 'button', id: 'definitions-export', onclick: exportDefinitions },
            'Download definitions',
          ),
          file,
          h(
            'button',
            {
              type: 'button',
              id: 'definitions-import',
              onclick: () => {
                let doc;
                try {
                  doc = JSON.parse(defs.value);
                } catch (e) {
                  flash(`Import failed: not JSON (${e.message})`, false);
                  return;
                }
                act('Import definitions', () => api('POST', '/definitions', doc));
              },
            },
            'Import definitions',
          ),
        ),
        defs,
      ),
    ];
  },
};

async function exportDefinitions() {
  try {
    const doc = await api('GET', '/definitions');
    const blob = new Blob([JSON.stringify(doc, null, 2)], { type: 'application/json' });
    const a = h('a', {
      href: URL.createObjectURL(blob),
      download: `warren-definitions-${new Date().toISOString().slice(0, 10)}.json`,
    });
    document.body.append(a);
    a.click();
    a.remove();
    flash('Definitions downloaded');
  } catch (e) {
    flash(`Export failed: ${e.message}`, false);
  }
}
