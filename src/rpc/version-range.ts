/**
 * Semantic versions and the ranges clients bind with: `1.2.3`, `^1.2.0`, `~1.2.0`, `1.x`, `1`,
 * `*`, comparators (`>=1.2.0 <2.0.0`) and alternatives joined by `||`. Pre-release tags
 * (`1.2.0-beta.1`) order before their release as semver says; a range matches them like any
 * other version.
 */

export interface Version {
  major: number;
  minor: number;
  patch: number;
  pre: readonly (string | number)[];
}

const VERSION_RE = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

export function parseVersion(text: string): Version | null {
  const m = VERSION_RE.exec(text.trim());
  if (m === null) return null;
  return {
    major: Number(m[1]),
    minor: Number(m[2]),
    patch: Number(m[3]),
    pre: m[4] === undefined ? [] : m[4].split('.').map((p) => (/^\d+$/.test(p) ? Number(p) : p)),
  };
}

export function compareVersions(a: Version, b: Version): number {
  if (a.major !== b.major) return a.major - b.major;
  if (a.minor !== b.minor) return a.minor - b.minor;
  if (a.patch !== b.patch) return a.patch - b.patch;
  if (a.pre.length === 0 || b.pre.length === 0) return b.pre.length - a.pre.length;
  for (let i = 0; i < Math.max(a.pre.length, b.pre.length); i++) {
    const x = a.pre[i];
    const y = b.pre[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    if (typeof x === 'number') return -1;
    if (typeof y === 'number') return 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

type Op = '<' | '<=' | '>' | '>=' | '=';
interface Comparator {
  op: Op;
  v: Version;
}

/** A parsed range: a version matches if every comparator of one alternative holds. */
export class VersionRange {
  readonly text: string;
  private readonly alternatives: Comparator[][];

  constructor(text: string) {
    this.text = text;
    this.alternatives = text.split('||').map((alt) => parseAlternative(alt.trim(), text));
  }

  matches(version: string | Version): boolean {
    const v = typeof version === 'string' ? parseVersion(version) : version;
    if (v === null) return false;
    return this.alternatives.some((alt) => alt.every((c) => holds(c, v)));
  }

  toString(): string {
    return this.text;
  }
}

function holds(c: Comparator, v: Version): boolean {
  const d = compareVersions(v, c.v);
  switch (c.op) {
    case '<':
      return d < 0;
    case '<=':
      return d <= 0;
    case '>':
      return d > 0;
    case '>=':
      return d >= 0;
    case '=':
      return d === 0;
  }
}

function ver(major: number, minor: number, patch: number): Version {
  return { major, minor, patch, pre: [] };
}

function bad(range: string, why: string): Error {
  return new TypeError(`invalid version range '${range}': ${why}`);
}

function parseAlternative(alt: string, whole: string): Comparator[] {
  if (alt === '' || alt === '*' || alt === 'x' || alt === 'X') return [];
  const out: Comparator[] = [];
  for (const part of alt.split(/\s+/)) out.push(...parseComparator(part, whole));
  return out;
}

const PARTIAL_RE = /^(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:-([0-9A-Za-z.-]+))?$/;

function parseComparator(part: string, whole: string): Comparator[] {
  const m = /^(\^|~|>=|<=|>|<|=)?v?(.*)$/.exec(part);
  const prefix = m?.[1] ?? '';
  const body = m?.[2] ?? '';
  const p = PARTIAL_RE.exec(body);
  if (p === null) throw bad(whole, `'${part}' is not a version`);
  const num = (s: string | undefined): number | null =>
    s === undefined || s === 'x' || s === 'X' || s === '*' ? null : Number(s);
  const major = num(p[1]);
  const minor = num(p[2]);
  const patch = num(p[3]);
  const pre =
    p[4] === undefined ? [] : p[4].split('.').map((x) => (/^\d+$/.test(x) ? Number(x) : x));
  if (major === null) return [];
  const full = minor !== null && patch !== null;
  const lower: Version = { major, minor: minor ?? 0, patch: patch ?? 0, pre };
  switch (prefix) {
    case '^': {
      // Changes that do not modify the left-most non-zero part.
      let upper: Version;
      if (major > 0 || minor === null) upper = ver(major + 1, 0, 0);
      else if ((minor ?? 0) > 0 || patch === null) upper = ver(0, (minor ?? 0) + 1, 0);
      else upper = ver(0, 0, (patch ?? 0) + 1);
      return [
        { op: '>=', v: lower },
        { op: '<', v: upper },
      ];
    }
    case '~': {
      const upper = minor === null ? ver(major + 1, 0, 0) : ver(major, minor + 1, 0);
      return [
        { op: '>=', v: lower },
        { op: '<', v: upper },
      ];
    }
    case '':
    case '=': {
      if (full) return [{ op: '=', v: lower }];
      const upper = minor === null ? ver(major + 1, 0, 0) : ver(major, minor + 1, 0);
      return [
        { op: '>=', v: lower },
        { op: '<', v: upper },
      ];
    }
    case '>':
      if (!full) {
        const next = minor === null ? ver(major + 1, 0, 0) : ver(major, minor + 1, 0);
        return [{ op: '>=', v: next }];
      }
      return [{ op: '>', v: lower }];
    case '<=':
      if (!full) {
        const next = minor === null ? ver(major + 1, 0, 0) : ver(major, minor + 1, 0);
        return [{ op: '<', v: next }];
      }
      return [{ op: '<=', v: lower }];
    default:
      return [{ op: prefix as Op, v: lower }];
  }
}
