// The pipeline on GGUF models: stage runners in separate "tabs" (in-memory bus, CPU engine) each open the quantized
// file and load only their layers; the chain must produce exactly the reference greedy ids.
import { describe, expect, it } from 'vitest';
import { QUANT_FIXTURE_NAMES } from '../testing/allClose.ts';
import { cpuStageRunner } from '../testing/cpuStage.ts';
import { fixtureCases, fixtureLocation } from '../testing/fixturesNode.ts';
import { Coordinator } from './coordinator.ts';
import { MemoryBus } from './memoryBus.ts';

describe.each(QUANT_FIXTURE_NAMES)('pipeline over 2 tabs on %s', (name) => {
  it('generates the reference greedy ids, each tab holding one quantized layer', async () => {
    const bus = new MemoryBus();
    const errors: string[] = [];
    for (const id of ['a', 'b'])
      cpuStageRunner(bus.transport(id), fixtureLocation(name), {
        onEvent: (e) => void (e.type === 'error' && errors.push(e.message)),
      });
    const coordinator = new Coordinator(bus.transport('a-ui'));
    const stages = [
      { peer: 'b', start: 0, end: 1 },
      { peer: 'a', start: 1, end: 2 },
    ];
    await coordinator.assign('fixture', stages, ['a', 'b'], 64);
    for (const c of fixtureCases(name)) {
      const r = await coordinator.generate(c.input_ids, { maxTokens: c.greedy.length, eos: [] });
      expect(r.tokens).toEqual(c.greedy);
    }
    expect(errors).toEqual([]);
    coordinator.dispose();
  });
});
