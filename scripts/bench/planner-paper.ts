// `npm run bench -- planner-paper`: the CSGO paper's Fig. 3a rebuilt (Table 1, Qwen3-14B, costModel "csgo").
import { planAll } from '../../src/planner/index.ts';
import { PAPER_FIG3A, paperScenario } from '../../src/planner/paper.ts';

const fmt = (x: number) => x.toFixed(2).padStart(6);
console.log(
  [
    'prompt t',
    'DP (ours / paper, diff)',
    'single (ours / paper)',
    'even (ours / paper)',
    'harmonic (ours / paper)',
    'DP plan',
  ].join(' | '),
);
for (const row of PAPER_FIG3A) {
  const all = planAll(paperScenario(row.t));
  const dp = all.csgo.predictedSeconds;
  const diff = ((dp - row.dp) / row.dp) * 100;
  const stages = all.csgo.stages.map((s) => `${s.device}:${s.first}-${s.last}`).join(' ');
  const ours = (s: 'single' | 'even' | 'harmonic') => `${fmt(all[s].predictedSeconds)} / ${fmt(row[s])}`;
  const cells = [
    String(row.t).padStart(8),
    `${fmt(dp)} / ${fmt(row.dp)} ${(diff >= 0 ? '+' : '') + diff.toFixed(1)}%`,
    ours('single'),
    ours('even'),
    ours('harmonic'),
    `${stages} (${all.csgo.method})`,
  ];
  console.log(cells.join(' | '));
}
