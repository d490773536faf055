import type { FieldTable } from '../client/index.js';

/** A reply kept for answering retries of an at-most-once call without executing it again. */
export interface CachedReply {
  readonly headers: FieldTable;
  readonly body: Buffer;
}

/** Where to send a reply: one per attempt that arrived while the call ran. */
export interface ReplyAddress {
  readonly replyTo: string;
  readonly correlationId: string | undefined;
}

export interface TableEntry {
  readonly client: string;
  readonly seq: number;
  reply: CachedReply | null;
  /** Still in the table (a newer conversation of its client may have dropped it while it ran). */
  live: boolean;
  /** Attempts waiting for the reply (duplicates that came while the call ran). */
  readonly waiters: ReplyAddress[];
}

interface Row {
  conversation: string;
  started: number;
  floor: number;
  readonly entries: Map<number, TableEntry>;
  lastSeen: number;
}

export type Admission =
  /** Execute it; complete the entry with its reply. */
  | { kind: 'new'; entry: TableEntry }
  /** Executed before: send this reply again. */
  | { kind: 'done'; reply: CachedReply }
  /** Executing now: the reply will go to this attempt too. */
  | { kind: 'running' }
  /** From a conversation older than the client's latest one: that client incarnation is dead. */
  | { kind: 'stale-conversation' }
  /** At or below the client's floor: the client stopped waiting for it. Do nothing. */
  | { kind: 'finished' }
  /** No room: refuse without executing. */
  | { kind: 'full' };

export interface CallTableOptions {
  /** How long a client's row is kept after its last request, in ms (default 5 min). */
  retention?: number;
  /** Most calls remembered at once (default 100 000). */
  maxEntries?: number;
  /** Most bytes of cached replies (default 64 MiB). */
  maxBytes?: number;
}

/**
 * The table of recent at-most-once calls (seed 004: "Prev_Calls"). One row per client id,
 * holding that client's current conversation, its floor (every sequence number at or below it is
 * finished at the client: the client says so in each request) and the calls above the floor, each
 * running or done with its reply. Rows go when their client has been silent for `retention`;
 * the client never waits longer than that for one call, because the server announces its
 * retention and the client caps at-most-once deadlines to it.
 *
 * A conversation id is `<start time in ms>-<random>`: a restarted client has a later start, so
 * its calls are told apart from those of its previous incarnation (seed 004: "clock-based
 * conversation id"); requests of the older one that are still about are refused.
 */
export class CallTable {
  readonly retention: number;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly rows = new Map<string, Row>();
  private entries = 0;
  private bytes = 0;

  constructor(o: CallTableOptions = {}) {
    this.retention = o.retention ?? 300_000;
    this.maxEntries = o.maxEntries ?? 100_000;
    this.maxBytes = o.maxBytes ?? 64 * 1024 * 1024;
  }

  get size(): number {
    return this.entries;
  }

  admit(
    client: string,
    conversation: string,
    seq: number,
    floor: number,
    address: ReplyAddress | null,
    now: number,
  ): Admission {
    const started = conversationStart(conversation);
    let row = this.rows.get(client);
    if (row !== undefined && row.conversation !== conversation) {
      if (isOlder(started, conversation, row)) return { kind: 'stale-conversation' };
      // A new incarnation of this client: forget the old one's calls.
      this.dropEntries(row);
      row = undefined;
    }
    if (row === undefined) {
      row = { conversation, started, floor: 0, entries: new Map(), lastSeen: now };
      this.rows.set(client, row);
    }
    row.lastSeen = now;
    if (floor > row.floor) {
      row.floor = floor;
      for (const [s, e] of row.entries) {
        if (s <= floor && e.reply !== null) this.remove(row, s, e);
      }
    }
    const e = row.entries.get(seq);
    if (e !== undefined) {
      if (e.reply !== null) return { kind: 'done', reply: e.reply };
      if (address !== null && !e.waiters.some((w) => w.replyTo === address.replyTo)) {
        e.waiters.push(address);
      }
      return { kind: 'running' };
    }
    if (seq <= row.floor) return { kind: 'finished' };
    if (this.entries >= this.maxEntries || this.bytes >= this.maxBytes) return { kind: 'full' };
    const entry: TableEntry = {
      client,
      seq,
      reply: null,
      live: true,
      waiters: address === null ? [] : [address],
    };
    row.entries.set(seq, entry);
    this.entries++;
    return { kind: 'new', entry };
  }

  /**
   * Record the reply of an executed call; returns every address to send it to. With `keep`
   * false (the handler said it did nothing: `executed: 'no'`), the call is forgotten instead, so
   * that a retry executes it.
   */
  complete(entry: TableEntry, reply: CachedReply, keep = true): ReplyAddress[] {
    if (!keep) {
      const row = this.rows.get(entry.client);
      if (entry.live && row !== undefined && row.entries.get(entry.seq) === entry) {
        this.remove(row, entry.seq, entry);
      }
      return entry.waiters.splice(0);
    }
    entry.reply = reply;
    if (entry.live) this.bytes += reply.body.length;
    return entry.waiters.splice(0);
  }

  /** Drop rows of clients silent for longer than the retention. */
  sweep(now: number): void {
    for (const [client, row] of this.rows) {
      if (now - row.lastSeen <= this.retention) continue;
      let running = false;
      for (const e of row.entries.values()) if (e.reply === null) running = true;
      if (running) continue;
      this.dropEntries(row);
      this.rows.delete(client);
    }
  }

  clear(): void {
    this.rows.clear();
    this.entries = 0;
    this.bytes = 0;
  }

  private remove(row: Row, seq: number, e: TableEntry): void {
    row.entries.delete(seq);
    e.live = false;
    this.entries--;
    if (e.reply !== null) this.bytes -= e.reply.body.length;
  }

  private dropEntries(row: Row): void {
    for (const [s, e] of row.entries) this.remove(row, s, e);
  }
}

/** The start time (ms) in a conversation id `<ms>-<random>`; NaN if it has none. */
export function conversationStart(conversation: string): number {
  const dash = conversation.indexOf('-');
  return Number(dash < 0 ? conversation : conversation.slice(0, dash));
}

function isOlder(started: number, conversation: string, row: Row): boolean {
  if (Number.isNaN(started) || Number.isNaN(row.started)) return false;
  if (started !== row.started) return started < row.started;
  return conversation < row.conversation;
}
