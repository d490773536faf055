import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

/**
 * What /proc tells about another process (Linux): resident memory, CPU time, and which process
 * listens on a TCP port. Every function returns null where /proc is missing or unreadable, so a
 * benchmark against a remote broker simply reports no RSS.
 */

/** Resident set size in bytes (VmRSS), or null. */
export function readRss(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? null : Number(m[1]) * 1024;
  } catch {
    return null;
  }
}

/** User + system CPU seconds the process has used (all its threads), or null. */
export function readCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat(5), i.e. 11 and 12 after the name.
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks / CLOCK_TICKS : null;
  } catch {
    return null;
  }
}

/** Busy CPU seconds of the whole machine, all cores (from /proc/stat), or null. */
export function readMachineBusySeconds(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    // cpu user nice system idle iowait irq softirq steal ...
    const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!;
    return Number.isFinite(busy) ? busy / CLOCK_TICKS : null;
  } catch {
    return null;
  }
}

/** sysconf(_SC_CLK_TCK) is 100 on every Linux that Node supports. */
const CLOCK_TICKS = 100;

/** The process with a socket listening on `port` (any address), or null if it cannot be seen. */
export function findListeningPid(port: number): number | null {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // f[1] is local "address:port" in hex, f[3] the state (0A = LISTEN), f[9] the inode.
      if (f.length < 10 || f[3] !== '0A') continue;
      const localPort = parseInt(f[1]!.slice(f[1]!.lastIndexOf(':') + 1), 16);
      if (localPort === port) inodes.add(f[9]!);
    }
  }
  if (inodes.size === 0) return null;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return null;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m !== null && inodes.has(m[1]!)) return Number(pid);
    }
  }
  return null;
}

/** Samples a process's RSS (for its peak) and CPU use over an interval. */
export class ProcessMeter {
  readonly pid: number;
  peakRss = 0;
  private cpuStart: number | null = null;
  private wallStart = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(pid: number) {
    this.pid = pid;
  }

  /** Start measuring CPU from now and sample RSS every `everyMs`. */
  start(everyMs = 100): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.cpuStart = readCpuSeconds(this.pid);
    this.wallStart = performance.now();
    this.peakRss = readRss(this.pid) ?? 0;
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  sample(): number | null {
    const rss = readRss(this.pid);
    if (rss !== null && rss > this.peakRss) this.peakRss = rss;
    return rss;
  }

  /** CPU used since start(), as a percentage of one core (200 = two cores busy). */
  cpuPercent(): number | null {
    const now = readCpuSeconds(this.pid);
    if (now === null || this.cpuStart === null) return null;
    const wall = (performance.now() - this.wallStart) / 1000;
    return wall > 0 ? ((now - this.cpuStart) / wall) * 100 : null;
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.sample();
  }
}
