// Copies the management web UI (static files, no build step) next to the compiled code, so
// dist/management/server.js serves it from dist/management/ui/. Runs after tsc in "build".
import { cpSync, existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const from = join(root, 'src', 'management', 'ui');
const to = join(root, 'dist', 'management', 'ui');
if (!existsSync(from)) {
  console.error(`copy-ui: ${from} is missing`);
  process.exit(1);
}
rmSync(to, { recursive: true, force: true });
cpSync(from, to, { recursive: true });
