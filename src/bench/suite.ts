import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { redact } from '../client/url.js';
import { VERSION } from '../version.js';
import { RabbitMq, WarrenProcess } from './brokers.js';
import type { BrokerUnderTest } from './brokers.js';
import { fmtInt, fmtMiB, fmtUs, table } from './format.js';
import { newestProfile, summariseProfile } from './profile.js';
import type { RestartControl } from './queued.js';
import type { LoadResult } from './load.js';
import { SCENARIOS } from './scenarios.js';
import type {
  MetricDef,
  DedicatedFactory,
  ScenarioDef,
  ScenarioRun,
  SuiteSettings,
  Target,
  Unit,
} from './scenarios.js';

export const SCENARIO_IDS = SCENARIOS.map((sc) => sc.id);

/** What `warren bench suite` was asked to do (see src/cli/bench.ts for the flags). */
export interface SuiteOptions {
  /** null: measure Warren alone. */
  rabbitmqUrl: string | null;
  /** Scenario ids to run (empty: all) and to leave out. */
  only: string[];
  skip: string[];
  rounds: number;
  settings: SuiteSettings;
  quick: boolean;
  /** Where the JSON and Markdown results go. */
  outDir: string;
  /** Run Warren under node --cpu-prof and print its top self-time functions. */
  profile: boolean;
  /**
   * Run Warren's management server even when no RabbitMQ management plugin is there to match
   * (with --no-rabbitmq, say); by default Warren runs it exactly when RabbitMQ's answers.
   */
  management?: boolean;
}

interface MetricRow {
  scenario: string;
  title: string;
  metric: string;
  label: string;
  unit: Unit;
  warren: number | null;
  rabbitmq: number | null;
  /** Warren / RabbitMQ. */
  ratio: number | null;
  target: Target | null;
  met: boolean | null;
}

interface ScenarioOutcome {
  id: string;
  title: string;
  runs: Record<string, ScenarioRun[]>;
  errors: Record<string, string>;
}

export async function runSuite(o: SuiteOptions): Promise<number> {
  const { rounds, quick, profile } = o;
  let settings = o.settings;
  let management = o.management === true;
  const scenarios = pickScenarios(o.only, o.skip);
  const outDir = resolve(o.outDir);
  const brokers: BrokerUnderTest[] = [];
  let rabbitVersion: string | null = null;
  let rabbit: RabbitMq | null = null;
  if (o.rabbitmqUrl !== null) {
    rabbit = new RabbitMq(o.rabbitmqUrl);
    try {
      rabbitVersion = await rabbit.check();
    } catch (err) {
      process.stderr.write(`warren bench suite: ${(err as Error).message}\n`);
      return 1;
    }
    rabbit.management = await rabbit.managementEnabled();
    management ||= rabbit.management;
    // Both brokers get the same number of idle connections: as many as RabbitMQ can take (its
    // file descriptor limit, e.g. 832 sockets under the usual `ulimit -n 1024`), less a margin.
    if (scenarios.some((sc) => sc.id === 'connections')) {
      const free = await rabbit.socketsFree();
      if (free !== null && free - 50 < settings.connections) {
        process.stdout.write(
          `note: RabbitMQ accepts ${free} more sockets; both brokers get ${free - 50} idle connections\n`,
        );
        settings = { ...settings, connections: Math.max(1, free - 50) };
      }
    }
  }
  const work = mkdtempSync(join(tmpdir(), 'warren-bench-'));
  const profileDir = profile ? join(outDir, 'profiles') : undefined;
  if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true });
  const warren = await WarrenProcess.start({ dataDir: join(work, 'main'), profileDir, management });
  brokers.push(warren);
  if (rabbit !== null) brokers.push(rabbit);

  const started = new Date();
  process.stdout.write(
    `warren bench suite: ${scenarios.length} scenarios, ${rounds} round(s), ${settings.duration} s per run; ` +
      `Warren ${VERSION} (pid ${warren.pid()})` +
      (rabbit !== null ? ` vs RabbitMQ ${rabbitVersion} (pid ${rabbit.pid() ?? 'unknown'})` : '') +
      `; ${cpus().length} cores, node ${process.version}` +
      (management
        ? `; management API on for Warren${rabbit?.management === true ? ' and RabbitMQ' : ''}`
        : '') +
      (profile ? '; Warren runs under --cpu-prof (its figures are not comparable)' : '') +
      '\n',
  );

  const dedicated = dedicatedFactory(work, rabbit, management);
  const outcomes: ScenarioOutcome[] = [];
  try {
    for (const [index, sc] of scenarios.entries()) {
      const outcome: ScenarioOutcome = { id: sc.id, title: sc.title, runs: {}, errors: {} };
      outcomes.push(outcome);
      const n = sc.once === true ? 1 : rounds;
      for (let r = 0; r < n; r++) {
        // Alternate who goes first, so that neither always meets a warm (or tired) machine; a
        // scenario run once alternates with the scenario's place in the suite.
        const turn = sc.once === true ? index : r;
        const order = turn % 2 === 0 ? brokers : [...brokers].reverse();
        for (const b of order) {
          if (outcome.errors[b.name] !== undefined) continue;
          const t = performance.now();
          try {
            const run = await sc.run(b, settings, dedicated);
            (outcome.runs[b.name] ??= []).push(run);
            process.stdout.write(
              `  ${sc.id.padEnd(14)} ${b.name.padEnd(8)} ${describeRun(sc, run)}  (${((performance.now() - t) / 1000).toFixed(0)} s)\n`,
            );
          } catch (err) {
            outcome.errors[b.name] = err instanceof Error ? err.message : String(err);
            process.stdout.write(
              `  ${sc.id.padEnd(14)} ${b.name.padEnd(8)} FAILED: ${outcome.errors[b.name]}\n`,
            );
          }
        }
      }
    }
  } finally {
    await warren.stop();
    rmSync(work, { recursive: true, force: true });
  }

  const rows = metricRows(scenarios, outcomes);
  const text = resultsTable(rows, rabbit !== null);
  const cpuRows = cpuTable(
    outcomes,
    brokers.map((b) => b.name),
  );
  const cpuText =
    cpuRows.length > 1 ? `\nCPU, % of one core (median of the rounds):\n${table(cpuRows)}` : '';
  process.stdout.write(`\n${text}${cpuText}`);
  let profileText = '';
  if (profileDir !== undefined) {
    const file = newestProfile(profileDir);
    if (file !== null) {
      const p = summariseProfile(file, 25);
      profileText =
        `\nWarren CPU profile (${file}), busy ${(p.busyMs / 1000).toFixed(1)} s, top self time:\n` +
        p.rows.map((r) => `${r.percent.toFixed(1).padStart(6)} %  ${r.name}`).join('\n') +
        '\n';
      process.stdout.write(profileText);
    }
  }

  mkdirSync(outDir, { recursive: true });
  const stamp = started.toISOString().slice(0, 19).replace(/:/g, '');
  const base = join(outDir, `${stamp}${quick ? '-quick' : ''}`);
  const doc = {
    date: started.toISOString(),
    seconds: Math.round((Date.now() - started.getTime()) / 1000),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memory: totalmem(),
      node: process.version,
    },
    warren: { version: VERSION, commit: gitCommit() },
    rabbitmq: rabbit !== null ? { version: rabbitVersion, url: redact(rabbit.url) } : null,
    settings: { ...settings, rounds, quick, profiled: profile, management },
    results: rows,
    scenarios: outcomes,
  };
  writeFileSync(`${base}.json`, JSON.stringify(doc, null, 2) + '\n');
  writeFileSync(
    `${base}.md`,
    `Warren ${VERSION} (${doc.warren.commit ?? 'unknown commit'}) vs RabbitMQ ${rabbitVersion ?? '-'}, ` +
      `${doc.machine.cpus} x ${doc.machine.cpuModel}, node ${process.version}, ${started.toISOString()}\n\n` +
      markdownTable(rows, rabbit !== null) +
      (cpuRows.length > 1
        ? `\nCPU, % of one core (median of the rounds):\n\n${markdown(cpuRows)}`
        : '') +
      (profileText !== '' ? `\n\`\`\`\n${profileText.trim()}\n\`\`\`\n` : ''),
  );
  process.stdout.write(`\nresults: ${base}.json, ${base}.md\n`);
  const failed = outcomes.some((o) => Object.keys(o.errors).length > 0);
  return failed ? 1 : 0;
}

/** The scenarios to run, in suite order. */
function pickScenarios(only: string[], skip: string[]): ScenarioDef[] {
  return SCENARIOS.filter(
    (sc) => (only.length === 0 || only.includes(sc.id)) && !skip.includes(sc.id),
  );
}

/**
 * Brokers for the memory scenarios, and how the deep-queue scenario restarts them. Warren: a broker of its own (fresh data
 * directory), stopped with SIGTERM and started again on the same directory, then killed with
 * SIGKILL and started once more. RabbitMQ: `rabbitmqctl stop_app` / `start_app` (the node stays
 * up); if anything fails in between, the app is started again so that it is never left stopped.
 */
function dedicatedFactory(
  work: string,
  rabbit: RabbitMq | null,
  management: boolean,
): DedicatedFactory {
  return async (b) => {
    if (b === rabbit) {
      let stopped = false;
      const ensureStarted = (): void => {
        if (!stopped) return;
        try {
          execFileSync('rabbitmqctl', ['start_app'], { stdio: 'ignore', timeout: 300_000 });
          stopped = false;
        } catch {
          process.stderr.write(
            'warren bench suite: could not restart RabbitMQ; run `rabbitmqctl start_app`\n',
          );
        }
      };
      const onSignal = (): void => {
        ensureStarted();
        process.exit(130);
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const control: RestartControl & { dispose(): Promise<void> } = {
        url: () => rabbit.url,
        pid: () => rabbit.pid(),
        stop: async () => {
          stopped = true;
          return rabbit.ctl(['stop_app']);
        },
        start: () => {
          const done = rabbit.ctl(['start_app']).then(() => {
            stopped = false;
          });
          return Promise.resolve({ done });
        },
        dispose: () => {
          ensureStarted();
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          return Promise.resolve();
        },
      };
      return control;
    }
    const dataDir = join(work, `deep-${Date.now().toString(36)}`);
    const w = await WarrenProcess.start({ dataDir, management });
    return {
      url: () => w.url,
      pid: () => w.pid(),
      stop: () => w.stop('SIGTERM'),
      start: async () => {
        await w.spawn();
        return { done: Promise.resolve() };
      },
      crash: async () => {
        await w.stop('SIGKILL');
        await w.spawn();
      },
      dispose: async () => {
        await w.stop();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function aggregate(runs: ScenarioRun[] | undefined, key: string): number | null {
  if (runs === undefined) return null;
  const xs = runs
    .map((r) => r.values[key])
    .filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  return xs.length === 0 ? null : median(xs);
}

function metricRows(scenarios: ScenarioDef[], outcomes: ScenarioOutcome[]): MetricRow[] {
  const rows: MetricRow[] = [];
  for (const sc of scenarios) {
    const o = outcomes.find((x) => x.id === sc.id);
    if (o === undefined) continue;
    for (const m of sc.metrics) {
      const w = aggregate(o.runs.Warren, m.key);
      const r = aggregate(o.runs.RabbitMQ, m.key);
      const ratio = m.noRatio !== true && w !== null && r !== null && r !== 0 ? w / r : null;
      rows.push({
        scenario: sc.id,
        title: sc.title,
        metric: m.key,
        label: m.label,
        unit: m.unit,
        warren: w,
        rabbitmq: r,
        ratio,
        target: m.target ?? null,
        met: judge(m, w, ratio),
      });
    }
  }
  return rows;
}

function judge(m: MetricDef, warren: number | null, ratio: number | null): boolean | null {
  const t = m.target;
  if (t === undefined) return null;
  const v = t.kind === 'ratio' ? ratio : warren;
  if (v === null) return null;
  return t.op === '>=' ? v >= t.value : v <= t.value;
}

export function fmtValue(v: number | null, unit: Unit): string {
  if (v === null) return '-';
  switch (unit) {
    case 'msg/s':
    case 'calls/s':
      return `${fmtInt(v)}/s`;
    case 'us':
      return fmtUs(v);
    case 'ms':
      return fmtUs(v * 1000);
    case 'bytes':
      return Math.abs(v) >= 1048576 ? fmtMiB(v) : `${(v / 1024).toFixed(1)} KiB`;
    case 'x':
      return `${v.toFixed(2)}x`;
  }
}

function fmtTarget(t: Target | null): string {
  if (t === null) return '';
  if (t.kind === 'ratio') return `${t.op} ${t.value}x`;
  return `${t.op} ${fmtUs(t.value * 1000)}`;
}

function tableRows(rows: MetricRow[], withRabbit: boolean): string[][] {
  const head = withRabbit
    ? ['scenario', 'metric', 'Warren', 'RabbitMQ', 'W/R', 'target', 'met']
    : ['scenario', 'metric', 'Warren', 'target', 'met'];
  const out = [head];
  for (const r of rows) {
    const met = r.met === null ? '' : r.met ? 'yes' : 'NO';
    out.push(
      withRabbit
        ? [
            r.scenario,
            r.label,
            fmtValue(r.warren, r.unit),
            fmtValue(r.rabbitmq, r.unit),
            r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`,
            fmtTarget(r.target),
            met,
          ]
        : [r.scenario, r.label, fmtValue(r.warren, r.unit), fmtTarget(r.target), met],
    );
  }
  return out;
}

function resultsTable(rows: MetricRow[], withRabbit: boolean): string {
  return table(tableRows(rows, withRabbit));
}

function markdownTable(rows: MetricRow[], withRabbit: boolean): string {
  return markdown(tableRows(rows, withRabbit));
}

function markdown(rows: string[][]): string {
  const [head, ...body] = rows;
  const line = (r: string[]): string => `| ${r.join(' | ')} |`;
  return (
    [line(head!), line(head!.map((_, i) => (i >= 2 ? '---:' : '---'))), ...body.map(line)].join(
      '\n',
    ) + '\n'
  );
}

function describeRun(sc: ScenarioDef, run: ScenarioRun): string {
  const values = sc.metrics
    .map((m) => `${m.label} ${fmtValue(run.values[m.key] ?? null, m.unit)}`)
    .join(', ');
  const cpu = cpuOf(run);
  return cpu === null
    ? values
    : `${values}; CPU broker ${pct(cpu.broker)}, generator ${pct(cpu.generator)}, other ${pct(cpu.other)}`;
}

interface CpuSplit {
  broker: number | null;
  generator: number;
  /** Machine CPU neither the broker nor the generator used (other processes). */
  other: number | null;
}

/** Where the CPU went in a load run (% of one core), or null for other kinds of runs. */
function cpuOf(run: ScenarioRun): CpuSplit | null {
  const d = run.detail as Partial<LoadResult> | null;
  if (d === null || typeof d !== 'object' || typeof d.generatorCpu !== 'number') return null;
  const broker = d.broker?.cpu ?? null;
  const machine = d.machineCpu ?? null;
  return {
    broker,
    generator: d.generatorCpu,
    other:
      machine !== null && broker !== null ? Math.max(0, machine - broker - d.generatorCpu) : null,
  };
}

function pct(v: number | null): string {
  return v === null ? '-' : `${v.toFixed(0)}%`;
}

/**
 * Median CPU split per scenario and broker: a broker near 100% (Warren is one thread) or using
 * the cores the generator leaves (RabbitMQ), with the generator well below a core, shows that the
 * broker, not the load generator, set the pace.
 */
function cpuTable(outcomes: ScenarioOutcome[], brokers: string[]): string[][] {
  const rows = [['scenario', 'broker', 'broker CPU', 'generator CPU', 'other load']];
  for (const o of outcomes) {
    for (const b of brokers) {
      const splits = (o.runs[b] ?? []).map(cpuOf).filter((c): c is CpuSplit => c !== null);
      if (splits.length === 0) continue;
      const med = (xs: (number | null)[]): number | null => {
        const v = xs.filter((x): x is number => x !== null);
        return v.length === 0 ? null : median(v);
      };
      rows.push([
        o.id,
        b,
        pct(med(splits.map((c) => c.broker))),
        pct(med(splits.map((c) => c.generator))),
        pct(med(splits.map((c) => c.other))),
      ]);
    }
  }
  return rows;
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return null;
  }
}
