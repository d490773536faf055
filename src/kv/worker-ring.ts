class RingNode<T> {
  prev: RingNode<T> = this;
  next: RingNode<T> = this;
  constructor(
    readonly id: string,
    readonly value: T,
  ) {}
}

/**
 * The seed's worker list: a circular doubly linked list with a round-robin pointer, so that
 * adding and removing a worker is O(1) and `next()` hands out workers in turn.
 */
export class WorkerRing<T> {
  private readonly nodes = new Map<string, RingNode<T>>();
  /** The node handed out last; the next one follows it. */
  private cursor: RingNode<T> | null = null;

  get size(): number {
    return this.nodes.size;
  }

  has(id: string): boolean {
    return this.nodes.has(id);
  }

  get(id: string): T | undefined {
    return this.nodes.get(id)?.value;
  }

  /** Add a worker just behind the pointer, so it comes last in the current round. */
  add(id: string, value: T): void {
    if (this.nodes.has(id)) return;
    const n = new RingNode(id, value);
    this.nodes.set(id, n);
    const c = this.cursor;
    if (c === null) {
      this.cursor = n;
      return;
    }
    n.prev = c;
    n.next = c.next;
    c.next.prev = n;
    c.next = n;
    this.cursor = n;
  }

  remove(id: string): boolean {
    const n = this.nodes.get(id);
    if (n === undefined) return false;
    this.nodes.delete(id);
    if (this.nodes.size === 0) {
      this.cursor = null;
      return true;
    }
    n.prev.next = n.next;
    n.next.prev = n.prev;
    if (this.cursor === n) this.cursor = n.prev;
    return true;
  }

  /** The next worker in turn, skipping those `skip` refuses; undefined if none is left. */
  next(skip?: (value: T) => boolean): T | undefined {
    let c = this.cursor;
    if (c === null) return undefined;
    for (let i = 0; i < this.nodes.size; i++) {
      c = c.next;
      if (skip === undefined || !skip(c.value)) {
        this.cursor = c;
        return c.value;
      }
    }
    return undefined;
  }

  values(): T[] {
    return [...this.nodes.values()].map((n) => n.value);
  }
}
