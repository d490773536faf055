import type { Binding } from '../binding.js';
import type { Message } from '../message.js';
import { Exchange, ExchangeType } from './exchange.js';

class TopicNode {
  readonly words = new Map<string, TopicNode>();
  star: TopicNode | null = null;
  hash: TopicNode | null = null;
  bindings: Binding[] = [];

  get empty(): boolean {
    return (
      this.words.size === 0 &&
      this.star === null &&
      this.hash === null &&
      this.bindings.length === 0
    );
  }
}

/**
 * Routing keys and binding keys are dot-separated words; '*' matches exactly one word and '#'
 * zero or more. Binding keys live in a trie keyed by word, so a publish walks only the branches
 * its words can match. An empty key has no words at all (so '*' does not match it, while '#' and
 * '' do), whereas 'a.' is 'a' followed by an empty word, as in RabbitMQ.
 */
export class TopicExchange extends Exchange {
  readonly type = ExchangeType.Topic;
  private readonly root = new TopicNode();

  protected onBind(b: Binding): void {
    let node = this.root;
    for (const word of topicWords(b.routingKey)) {
      if (word === '*') node = node.star ??= new TopicNode();
      else if (word === '#') node = node.hash ??= new TopicNode();
      else {
        let next = node.words.get(word);
        if (next === undefined) {
          next = new TopicNode();
          node.words.set(word, next);
        }
        node = next;
      }
    }
    node.bindings.push(b);
  }

  protected onUnbind(b: Binding): void {
    this.remove(this.root, topicWords(b.routingKey), 0, b);
  }

  private remove(node: TopicNode, words: string[], i: number, b: Binding): void {
    if (i === words.length) {
      node.bindings = node.bindings.filter((x) => x !== b);
      return;
    }
    const word = words[i]!;
    if (word === '*' && node.star !== null) {
      this.remove(node.star, words, i + 1, b);
      if (node.star.empty) node.star = null;
    } else if (word === '#' && node.hash !== null) {
      this.remove(node.hash, words, i + 1, b);
      if (node.hash.empty) node.hash = null;
    } else {
      const next = node.words.get(word);
      if (next === undefined) return;
      this.remove(next, words, i + 1, b);
      if (next.empty) node.words.delete(word);
    }
  }

  match(_message: Message, routingKey: string, out: Binding[]): void {
    walk(this.root, topicWords(routingKey), 0, out);
  }
}

function topicWords(key: string): string[] {
  return key === '' ? [] : key.split('.');
}

function walk(node: TopicNode, words: string[], i: number, out: Binding[]): void {
  if (node.hash !== null) {
    // '#' consumes any number of words, including none.
    for (let j = i; j <= words.length; j++) walk(node.hash, words, j, out);
  }
  if (i === words.length) {
    for (const b of node.bindings) out.push(b);
    return;
  }
  const next = node.words.get(words[i]!);
  if (next !== undefined) walk(next, words, i + 1, out);
  if (node.star !== null) walk(node.star, words, i + 1, out);
}
