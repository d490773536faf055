import type { Binding } from '../binding.js';
import type { Message } from '../message.js';
import { Exchange, ExchangeType } from './exchange.js';

/** Routes to bindings whose key equals the routing key: one map lookup per publish. */
export class DirectExchange extends Exchange {
  readonly type = ExchangeType.Direct;
  private readonly byKey = new Map<string, Binding[]>();

  protected onBind(b: Binding): void {
    const list = this.byKey.get(b.routingKey);
    if (list === undefined) this.byKey.set(b.routingKey, [b]);
    else list.push(b);
  }

  protected onUnbind(b: Binding): void {
    const list = this.byKey.get(b.routingKey);
    if (list === undefined) return;
    const i = list.indexOf(b);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.byKey.delete(b.routingKey);
  }

  match(_message: Message, routingKey: string, out: Binding[]): void {
    const list = this.byKey.get(routingKey);
    if (list === undefined) return;
    for (let i = 0; i < list.length; i++) out.push(list[i]!);
  }
}
