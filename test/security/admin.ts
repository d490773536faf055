import type { Broker } from '../../src/broker/index.js';

/**
 * Users, vhosts and permissions set up the same way on RabbitMQ (through its management HTTP
 * API, as guest) and on Warren (through the broker object), so one scenario runs on both.
 */
export interface Admin {
  addVhost(name: string): Promise<void>;
  deleteVhost(name: string): Promise<void>;
  addUser(name: string, password: string, tags?: string[]): Promise<void>;
  deleteUser(name: string): Promise<void>;
  setPermissions(
    vhost: string,
    user: string,
    configure: string,
    write: string,
    read: string,
  ): Promise<void>;
  /** The vhost's max-queues limit (RabbitMQ's vhost limit); null removes it. */
  setMaxQueues(vhost: string, max: number | null): Promise<void>;
}

export const RABBITMQ_API = process.env.RABBITMQ_API ?? 'http://127.0.0.1:15672/api';

export function rabbitmqAdmin(api = RABBITMQ_API): Admin {
  const auth = `Basic ${Buffer.from('guest:guest').toString('base64')}`;
  const call = async (method: string, path: string, body?: unknown): Promise<void> => {
    const res = await fetch(`${api}${path}`, {
      method,
      headers: { authorization: auth, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    if (!res.ok && !(method === 'DELETE' && res.status === 404)) {
      throw new Error(`RabbitMQ API ${method} ${path}: ${res.status} ${await res.text()}`);
    }
  };
  const e = encodeURIComponent;
  return {
    addVhost: (name) => call('PUT', `/vhosts/${e(name)}`, {}),
    deleteVhost: (name) => call('DELETE', `/vhosts/${e(name)}`),
    addUser: (name, password, tags = []) =>
      call('PUT', `/users/${e(name)}`, { password, tags: tags.join(',') }),
    deleteUser: (name) => call('DELETE', `/users/${e(name)}`),
    setPermissions: (vhost, user, configure, write, read) =>
      call('PUT', `/permissions/${e(vhost)}/${e(user)}`, { configure, write, read }),
    setMaxQueues: (vhost, max) =>
      max === null
        ? call('DELETE', `/vhost-limits/${e(vhost)}/max-queues`)
        : call('PUT', `/vhost-limits/${e(vhost)}/max-queues`, { value: max }),
  };
}

export function warrenAdmin(broker: Broker): Admin {
  return {
    addVhost: (name) => {
      broker.addVhost(name);
      return Promise.resolve();
    },
    deleteVhost: (name) => {
      broker.deleteVhost(name);
      return Promise.resolve();
    },
    addUser: (name, password, tags = []) => {
      broker.users.addUser(name, password, tags);
      return Promise.resolve();
    },
    deleteUser: (name) => {
      broker.users.deleteUser(name);
      return Promise.resolve();
    },
    setPermissions: (vhost, user, configure, write, read) => {
      broker.users.setPermission(vhost, user, { configure, write, read });
      return Promise.resolve();
    },
    setMaxQueues: (vhost, max) => {
      const v = broker.getVhost(vhost);
      if (v === undefined) return Promise.reject(new Error(`no vhost '${vhost}'`));
      v.maxQueues = max;
      return Promise.resolve();
    },
  };
}
