import { execFileSync } from 'node:child_process';

/**
 * Tests that run Warren as a child process (CLI, crash tests) use dist/; build it once per run
 * so they never exercise stale output.
 */
export default function setup(): void {
  // Local iteration on tests that do not spawn Warren can skip it; CI never sets this.
  if (process.env.WARREN_SKIP_BUILD === '1') return;
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
  execFileSync(process.execPath, ['scripts/copy-ui.mjs'], { stdio: 'inherit' });
}
