import { describe, expect, it } from 'vitest';
import { ProgressBar, formatBytes } from '../../src/cli/progress-bar.js';

function output(isTTY: boolean, columns?: number) {
  const written: string[] = [];
  return { written, out: { isTTY, columns, write: (s: string) => written.push(s) } };
}

const p = (bytes: number, total: number) => ({
  id: 'x',
  bytes,
  total,
  rate: 2 * 1024 ** 2,
  elapsed: 1000,
});

describe('progress bar', () => {
  it('redraws one line in place on a terminal, within its width', () => {
    const { written, out } = output(true, 70);
    const bar = new ProgressBar(out, 'big.iso');
    bar.update(p(512 * 1024 ** 2, 1024 ** 3));
    bar.update(p(1024 ** 3, 1024 ** 3));
    bar.finish();
    expect(written).toHaveLength(3);
    const first = written[0]!.replace('\r', '').replace('\u001b[K', '');
    expect(first).toMatch(
      /^big\.iso \[#+\.+\] {2}50% {2}512 MiB \/ 1\.0 GiB {2}2\.0 MiB\/s {2}ETA 4m16s$/,
    );
    expect(first.length).toBeLessThanOrEqual(70);
    expect(written[1]).toContain('[##########');
    expect(written[1]).toContain('100%');
    expect(written[2]).toBe('\n');
  });

  it('writes plain lines at most once a second elsewhere, and shows unknown totals', () => {
    const { written, out } = output(false);
    const bar = new ProgressBar(out, 'stdin');
    bar.update(p(1000, -1));
    bar.update(p(2000, -1));
    bar.finish();
    expect(written).toEqual(['stdin: 1000 B, 2.0 MiB/s\n']);
  });

  it('formats sizes in binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(200 * 1024 ** 2)).toBe('200 MiB');
    expect(formatBytes(4 * 1024 ** 3)).toBe('4.0 GiB');
  });
});
