/** Sequence numbers applied beyond a gap are kept up to this many per origin, then forgotten. */
const MAX_AHEAD = 100_000;

class Mark {
  /** Every write of the origin up to this one is held. */
  contig = 0;
  /** Writes applied beyond contig + 1 (there is a gap before them). */
  ahead: Set<number> | null = null;
}

/**
 * How far this replica holds each worker's stream of writes. Every write carries its origin's
 * sequence number (1, 2, 3, ... per worker); a replica holds origin O "up to n" when it holds
 * every write of O numbered n or less, or a later version of the same key. A session that has
 * seen write n of O reads only from replicas that hold O up to n: that is read-your-writes.
 *
 * Writes from one origin arrive in order through the replica's queue, so this is normally one
 * counter per origin. A gap (a lost or purged message, or writes made before this replica's queue
 * existed) holds the mark back until a full export or an anti-entropy round covers it: `absorb`.
 *
 * Origins that left are retired: their mark moves to a smaller record that still answers
 * `covers` (a session may carry a barrier on a departed worker a little longer) and is forgotten
 * after a retention period, unless the origin writes again (`record`), which brings its mark
 * back.
 */
export class Watermarks {
  private readonly marks = new Map<string, Mark>();
  private readonly retired = new Map<string, { contig: number; until: number }>();
  private readonly onAdvance: (origin: string) => void;

  constructor(onAdvance: (origin: string) => void = () => undefined) {
    this.onAdvance = onAdvance;
  }

  /** The active mark of `origin`, made (from its retired record, if any) when missing. */
  private mark(origin: string): Mark {
    let m = this.marks.get(origin);
    if (m === undefined) {
      m = new Mark();
      const r = this.retired.get(origin);
      if (r !== undefined) {
        m.contig = r.contig;
        this.retired.delete(origin);
      }
      this.marks.set(origin, m);
    }
    return m;
  }

  /**
   * `origin` left and every write of it this replica will get is applied: keep only how far it
   * got, until `until` (ms). Refused (false) while a gap remains, which anti-entropy may close.
   */
  retire(origin: string, until: number): boolean {
    const m = this.marks.get(origin);
    if (m === undefined) return true;
    if (m.ahead !== null) return false;
    this.marks.delete(origin);
    this.retired.set(origin, { contig: m.contig, until });
    return true;
  }

  /**
   * A peer held `origin`, a worker this replica never knew (it left before this one joined), up
   * to `seq`: keep that as a retired record until `until`, so that a session that saw its writes
   * still reads here, without keeping the id for ever. A tracked origin is absorbed as usual.
   */
  absorbDeparted(origin: string, seq: number, until: number): void {
    if (this.tracks(origin)) {
      this.absorb(origin, seq);
      return;
    }
    this.retired.set(origin, { contig: seq, until });
    this.onAdvance(origin);
  }

  /** Forget retired origins whose retention ended. */
  expire(now: number): void {
    for (const [o, r] of this.retired) if (r.until <= now) this.retired.delete(o);
  }

  /** Whether `origin` has a mark, active or retired. */
  tracks(origin: string): boolean {
    return this.marks.has(origin) || this.retired.has(origin);
  }

  /** Origins with an active mark. */
  active(): string[] {
    return [...this.marks.keys()];
  }

  /** Origins tracked (active and retired), for tests and statistics. */
  get size(): number {
    return this.marks.size + this.retired.size;
  }

  /** Write `seq` of `origin` is applied. Returns true while a gap remains before some write. */
  record(origin: string, seq: number): boolean {
    const m = this.mark(origin);
    if (seq <= m.contig) return m.ahead !== null;
    if (seq === m.contig + 1) {
      m.contig = seq;
      this.settle(m);
      this.onAdvance(origin);
      return m.ahead !== null;
    }
    m.ahead ??= new Set();
    if (m.ahead.size < MAX_AHEAD) m.ahead.add(seq);
    return true;
  }

  /** A peer (or an export) held `origin` up to `seq`, and this replica now holds all it held. */
  absorb(origin: string, seq: number): void {
    const r = this.retired.get(origin);
    if (r !== undefined && !this.marks.has(origin)) {
      if (seq > r.contig) {
        r.contig = seq;
        // Reads held back on this origin may now go on.
        this.onAdvance(origin);
      }
      return;
    }
    const m = this.mark(origin);
    if (seq <= m.contig) return;
    m.contig = seq;
    this.settle(m);
    this.onAdvance(origin);
  }

  private settle(m: Mark): void {
    const a = m.ahead;
    if (a === null) return;
    for (const s of a) if (s <= m.contig) a.delete(s);
    while (a.delete(m.contig + 1)) m.contig++;
    if (a.size === 0) m.ahead = null;
  }

  /** Whether every write of `origin` up to `seq` is held. */
  covers(origin: string, seq: number): boolean {
    return this.get(origin) >= seq;
  }

  get(origin: string): number {
    return this.marks.get(origin)?.contig ?? this.retired.get(origin)?.contig ?? 0;
  }

  /** Origins with a gap. */
  gaps(): string[] {
    const out: string[] = [];
    for (const [o, m] of this.marks) if (m.ahead !== null) out.push(o);
    return out;
  }

  /** How far each origin is held, retired ones included (a peer may still have a gap there). */
  snapshot(): [origin: string, seq: number][] {
    const out: [string, number][] = [];
    for (const [o, m] of this.marks) out.push([o, m.contig]);
    for (const [o, r] of this.retired) out.push([o, r.contig]);
    return out;
  }

  clear(): void {
    this.marks.clear();
    this.retired.clear();
  }
}
