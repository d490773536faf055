import type { Binding } from '../binding.js';
import type { Message } from '../message.js';
import { Exchange, ExchangeType } from './exchange.js';

/** Routes to every binding, ignoring the routing key. */
export class FanoutExchange extends Exchange {
  readonly type = ExchangeType.Fanout;
  private list: Binding[] = [];

  protected onBind(b: Binding): void {
    this.list.push(b);
  }

  protected onUnbind(b: Binding): void {
    this.list = this.list.filter((x) => x !== b);
  }

  match(_message: Message, _routingKey: string, out: Binding[]): void {
    const list = this.list;
    for (let i = 0; i < list.length; i++) out.push(list[i]!);
  }
}
