// `npm run --silent plan -- --scenario file.json [--strategy NAME|all] --json`: the plan CLI (shared/ARCHITECTURE.md).
import { readFileSync } from 'node:fs';
import { ShoalError, errorMessage, isShoalError } from '../src/errors.ts';
import { plan, planAll, STRATEGIES, type Plan, type Scenario } from '../src/planner/index.ts';
import { parseFlags } from './cli.ts';

const strategies = `${STRATEGIES.join('|')}|all`;
const USAGE = `usage: npm run --silent plan -- --scenario <file.json> [--strategy ${strategies}] [--json]`;

function parseArgs(argv: string[]): { scenario: string; strategy: string; json: boolean } {
  const f = parseFlags(argv, { values: ['scenario', 'strategy'], switches: ['json', 'help'] }, `; ${USAGE}`);
  if (f.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (!f.scenario) throw new ShoalError('ERR_BAD_ARGS', `--scenario is required; ${USAGE}`);
  return { scenario: f.scenario, strategy: f.strategy ?? 'csgo', json: !!f.json };
}

function readScenario(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ShoalError('ERR_BAD_ARGS', `cannot read scenario ${path}: ${errorMessage(e)}`);
  }
  try {
    return JSON.parse(text) as Scenario;
  } catch (e) {
    throw new ShoalError('ERR_BAD_SCENARIO', `scenario ${path} is not valid JSON: ${errorMessage(e)}`);
  }
}

/** The contract's object: predictedSeconds and stages, plus documented extras (method, feasible, ttft, per token). */
function contractView(p: Plan): Record<string, unknown> {
  const { strategy: _strategy, predictedSeconds, stages, ...extras } = p;
  return { predictedSeconds, stages, ...extras };
}

function human(name: string, p: Plan): string {
  const stages = p.stages.map((s) => `${s.device}:${s.first}-${s.last}`).join(' ');
  const notes = [p.method, p.feasible ? '' : 'does not fit memory'].filter(Boolean).join(', ');
  return `${name.padEnd(9)} ${p.predictedSeconds.toFixed(3).padStart(10)} s  ${stages}${notes ? `  (${notes})` : ''}`;
}

try {
  const args = parseArgs(process.argv.slice(2));
  const scenario = readScenario(args.scenario);
  let plans: Record<string, Plan>;
  if (args.strategy === 'all') plans = planAll(scenario);
  else {
    if (!(STRATEGIES as readonly string[]).includes(args.strategy))
      throw new ShoalError(
        'ERR_BAD_ARGS',
        `unknown strategy ${JSON.stringify(args.strategy)} (one of: ${STRATEGIES.join(', ')}, all)`,
      );
    plans = { [args.strategy]: plan(scenario, args.strategy as Plan['strategy']) };
  }
  if (args.json) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(plans)) out[k] = contractView(v);
    console.log(JSON.stringify(out));
  } else for (const [k, v] of Object.entries(plans)) console.log(human(k, v));
} catch (e) {
  // Bad input: one line, no stack. Anything else is a bug: say so, still in one line.
  console.error(isShoalError(e) ? `plan: ${errorMessage(e)}` : `plan: internal error: ${errorMessage(e)}`);
  process.exit(isShoalError(e) ? 2 : 1);
}
