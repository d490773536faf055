import { EventEmitter } from 'node:events';

/**
 * joining: registered, receiving its export, serves nothing yet. ready: in sync, serves requests.
 * not-ready: catching up (after a pause, a reconnect, a gap), serves nothing. left: gone for good.
 */
export const MemberState = {
  Joining: 'joining',
  Ready: 'ready',
  NotReady: 'not-ready',
  Left: 'left',
} as const;
export type MemberState = (typeof MemberState)[keyof typeof MemberState];

export type Role = 'worker' | 'lb';

/** What gossip says about one member. */
export interface MemberInfo {
  readonly id: string;
  readonly role: Role;
  /** The queue that reaches it. */
  readonly inbox: string;
  /** Its heartbeat counter: only it increments it, so a higher one is newer news. */
  readonly hb: number;
  readonly state: MemberState;
}

export class Member implements MemberInfo {
  /** Local time (ms) the heartbeat last went up. */
  updatedAt: number;
  /** No heartbeat for the failure timeout. */
  failed = false;

  constructor(
    readonly id: string,
    readonly role: Role,
    public inbox: string,
    public hb: number,
    public state: MemberState,
    now: number,
  ) {
    this.updatedAt = now;
  }

  /** Alive and not gone: a gossip target. */
  get alive(): boolean {
    return !this.failed && this.state !== MemberState.Left;
  }
}

export interface MembershipOptions {
  /** A member whose heartbeat has not gone up for this long (ms) is failed. */
  failTimeout?: number;
  /** A failed or departed member is forgotten this long (ms) after its last heartbeat. */
  cleanupTimeout?: number;
  /**
   * This member's first heartbeat (default 1). A member that may restart under the same id
   * starts from the clock, so that its gossip is newer than anything its predecessor sent.
   */
  incarnation?: number;
  now?: () => number;
}

export type MemberChange = 'joined' | 'state' | 'failed' | 'recovered' | 'removed';

export interface MembershipEvents {
  change: [member: Member, what: MemberChange];
}

/** A gossip message's table: [id, role, inbox, heartbeat, state] per member. */
export interface GossipTable {
  v: 1;
  from: string;
  m: [string, Role, string, number, MemberState][];
}

const STATES = new Set<string>(Object.values(MemberState));

/**
 * Gossip-style membership (seed 003, epidemic protocols). Every member keeps a table of members
 * with heartbeat counters; each round it increments its own and sends the table to a few members
 * picked at random, which keep, per member, the entry with the higher heartbeat. News of a join,
 * a state change or a departure so reaches everyone in O(log N) rounds without passing through
 * any one process. A member whose heartbeat stops rising is taken as failed after `failTimeout`
 * and forgotten after `cleanupTimeout`; its id is remembered with its last heartbeat for as long
 * again, so stale gossip cannot bring it back (a member that really returns has a higher one).
 */
export class Membership extends EventEmitter<MembershipEvents> {
  readonly self: Member;
  private readonly members = new Map<string, Member>();
  private readonly removed = new Map<string, { hb: number; until: number }>();
  private readonly failTimeout: number;
  private readonly cleanupTimeout: number;
  private readonly now: () => number;

  constructor(
    self: { id: string; role: Role; inbox: string; state: MemberState },
    o: MembershipOptions = {},
  ) {
    super();
    this.now = o.now ?? Date.now;
    this.failTimeout = o.failTimeout ?? 3000;
    this.cleanupTimeout = o.cleanupTimeout ?? 30_000;
    this.self = new Member(
      self.id,
      self.role,
      self.inbox,
      o.incarnation ?? 1,
      self.state,
      this.now(),
    );
    this.members.set(self.id, this.self);
  }

  get(id: string): Member | undefined {
    return this.members.get(id);
  }

  /** Every member known, this one included. */
  all(): IterableIterator<Member> {
    return this.members.values();
  }

  get size(): number {
    return this.members.size;
  }

  /** Ids remembered as removed (bounded by the cleanup timeout). */
  get removedCount(): number {
    return this.removed.size;
  }

  setState(state: MemberState): void {
    if (this.self.state === state) return;
    this.self.state = state;
    this.self.hb++;
  }

  /** One round: bump the heartbeat, mark members failed, forget the long gone. */
  tick(): void {
    const now = this.now();
    this.self.hb++;
    this.self.updatedAt = now;
    for (const m of [...this.members.values()]) {
      if (m === this.self) continue;
      const silent = now - m.updatedAt;
      if (!m.failed && m.state !== MemberState.Left && silent > this.failTimeout) {
        m.failed = true;
        this.emit('change', m, 'failed');
      }
      if ((m.failed || m.state === MemberState.Left) && silent > this.cleanupTimeout) {
        this.members.delete(m.id);
        this.removed.set(m.id, { hb: m.hb, until: now + this.cleanupTimeout });
        this.emit('change', m, 'removed');
      }
    }
    for (const [id, r] of this.removed) if (r.until <= now) this.removed.delete(id);
  }

  /**
   * This process was not running (stopped, starved) until now: the silence of the others was its
   * own doing, so their failure timers start over rather than all firing at once.
   */
  pardon(): void {
    const now = this.now();
    for (const m of this.members.values()) if (!m.failed) m.updatedAt = now;
  }

  /** Learn about a member from a first-hand source (registration). */
  learn(info: MemberInfo): void {
    this.mergeOne(info.id, info.role, info.inbox, info.hb, info.state, true);
  }

  /** Merge a gossip table; malformed entries are skipped. Returns false if it was not a table. */
  merge(table: unknown): boolean {
    if (typeof table !== 'object' || table === null) return false;
    const t = table as Partial<GossipTable>;
    if (t.v !== 1 || !Array.isArray(t.m)) return false;
    for (const row of t.m as unknown[]) {
      if (!Array.isArray(row) || row.length !== 5) continue;
      const [id, role, inbox, hb, state] = row as unknown[];
      if (
        typeof id !== 'string' ||
        (role !== 'worker' && role !== 'lb') ||
        typeof inbox !== 'string' ||
        typeof hb !== 'number' ||
        !Number.isSafeInteger(hb) ||
        typeof state !== 'string' ||
        !STATES.has(state)
      ) {
        continue;
      }
      this.mergeOne(id, role, inbox, hb, state as MemberState, false);
    }
    return true;
  }

  private mergeOne(
    id: string,
    role: Role,
    inbox: string,
    hb: number,
    state: MemberState,
    firstHand: boolean,
  ): void {
    if (id === this.self.id) return;
    const now = this.now();
    const m = this.members.get(id);
    if (m === undefined) {
      const r = this.removed.get(id);
      if (r !== undefined) {
        if (hb <= r.hb && !firstHand) return;
        this.removed.delete(id);
      }
      // Hearing of a departed member for the first time: nothing to add.
      if (state === MemberState.Left) return;
      const fresh = new Member(id, role, inbox, hb, state, now);
      this.members.set(id, fresh);
      this.emit('change', fresh, 'joined');
      return;
    }
    if (hb <= m.hb && !(firstHand && state !== m.state)) return;
    m.hb = Math.max(hb, m.hb);
    m.updatedAt = now;
    m.inbox = inbox;
    if (m.failed) {
      m.failed = false;
      this.emit('change', m, 'recovered');
    }
    if (m.state !== state) {
      m.state = state;
      this.emit('change', m, 'state');
    }
  }

  /** Forget a member at once (it said it left, or its queue is gone). */
  drop(id: string): void {
    const m = this.members.get(id);
    if (m === undefined || m === this.self) return;
    this.members.delete(id);
    this.removed.set(id, { hb: m.hb, until: this.now() + this.cleanupTimeout });
    this.emit('change', m, 'removed');
  }

  /** The table to gossip: this member and every one not failed. */
  table(): GossipTable {
    const m: GossipTable['m'] = [];
    for (const x of this.members.values()) {
      if (x.failed) continue;
      m.push([x.id, x.role, x.inbox, x.hb, x.state]);
    }
    return { v: 1, from: this.self.id, m };
  }

  /** Up to `k` live members other than this one, chosen at random. */
  pick(k: number, filter: (m: Member) => boolean = () => true): Member[] {
    const pool: Member[] = [];
    for (const m of this.members.values()) {
      if (m !== this.self && m.alive && filter(m)) pool.push(m);
    }
    // Partial Fisher-Yates: the first k places get a uniform sample.
    const n = Math.min(k, pool.length);
    for (let i = 0; i < n; i++) {
      const j = i + Math.floor(Math.random() * (pool.length - i));
      const t = pool[i]!;
      pool[i] = pool[j]!;
      pool[j] = t;
    }
    pool.length = n;
    return pool;
  }
}
