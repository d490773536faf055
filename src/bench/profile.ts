import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The parts of a V8 .cpuprofile (node --cpu-prof) that self time needs. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  /** "function file:line" (file relative to its package folder). */
  name: string;
  ms: number;
  /** Share of the busy time (idle excluded). */
  percent: number;
}

/** Self time per function, highest first; `(idle)` is left out of the percentages. */
export function summariseProfile(path: string, top = 25): { busyMs: number; rows: SelfTime[] } {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const frames = new Map<number, string>();
  for (const n of p.nodes) {
    const cf = n.callFrame;
    const file = cf.url === '' ? '' : cf.url.split('/').slice(-2).join('/');
    const fn = cf.functionName === '' ? '(anonymous)' : cf.functionName;
    frames.set(n.id, file === '' ? fn : `${fn} ${file}:${cf.lineNumber + 1}`);
  }
  const self = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const name = frames.get(p.samples[i]!) ?? '?';
    self.set(name, (self.get(name) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  }
  let busy = 0;
  for (const [name, ms] of self) if (name !== '(idle)') busy += ms;
  const rows = [...self]
    .filter(([name]) => name !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, ms]) => ({ name, ms, percent: (ms / busy) * 100 }));
  return { busyMs: busy, rows };
}

/** The newest .cpuprofile in a directory, or null. */
export function newestProfile(dir: string): string | null {
  let best: { path: string; mtime: number } | null = null;
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.cpuprofile')) continue;
    const path = join(dir, f);
    const mtime = statSync(path).mtimeMs;
    if (best === null || mtime > best.mtime) best = { path, mtime };
  }
  return best?.path ?? null;
}
