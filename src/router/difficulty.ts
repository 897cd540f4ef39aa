// Difficulty scorers: p in [0, 1], the predicted chance that a query needs the large model. One interface;
// the small model's own uncertainty is always available, a text classifier (the paper's BERT approach) when
// configured, and callers may plug in their own.
import { ShoalError, errorMessage } from '../errors.ts';
import type { LocalEngine } from './localEngine.ts';

export interface DifficultyScorer {
  readonly name: string;
  /** `text` is the new query, `ids` the whole context through it (the scorer may use either). */
  score(text: string, ids: readonly number[]): Promise<number>;
}

/** Mean next-token entropy of rows (R, vocab) of logits, divided by ln(vocab): 0 = certain, 1 = uniform. */
export function normalisedMeanEntropy(logits: Float32Array, vocabSize: number): number {
  const rows = logits.length / vocabSize;
  if (!Number.isInteger(rows) || rows < 1)
    throw new ShoalError('ERR_BAD_ARGS', `${logits.length} logits are not whole rows of ${vocabSize}`);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const off = r * vocabSize;
    let max = -Infinity;
    for (let i = 0; i < vocabSize; i++) max = Math.max(max, logits[off + i]);
    let z = 0,
      s = 0;
    for (let i = 0; i < vocabSize; i++) {
      const x = logits[off + i] - max;
      const e = Math.exp(x);
      z += e;
      s += e * x;
    }
    total += Math.log(z) - s / z; // H = log Z - E[x] with x shifted by max
  }
  return Math.min(1, Math.max(0, total / rows / Math.log(vocabSize)));
}

/**
 * The small model's own uncertainty over the new query: prefill the context on the local engine (which the
 * small side needs anyway if it answers) and average the entropy of the rows of the query's positions.
 */
export class EntropyScorer implements DifficultyScorer {
  readonly name = 'small-model entropy';
  constructor(private readonly engine: LocalEngine) {}
  async score(_text: string, ids: readonly number[]): Promise<number> {
    const r = await this.engine.prefill(ids, 'all');
    return normalisedMeanEntropy(r.logits!, this.engine.spec.vocabSize);
  }
}

/** A user's own scorer from a function (clamped to [0, 1]; a non-number is an error, not a silent 0). */
export function scorerFrom(
  name: string,
  fn: (text: string, ids: readonly number[]) => number | Promise<number>,
): DifficultyScorer {
  return {
    name,
    async score(text, ids) {
      const p = await fn(text, ids);
      if (typeof p !== 'number' || Number.isNaN(p))
        throw new ShoalError('ERR_BAD_ARGS', `difficulty scorer "${name}" returned ${String(p)}, not a number`);
      return Math.min(1, Math.max(0, p));
    },
  };
}

type TextClassifier = (
  text: string,
  opts: { top_k: null },
) => Promise<{ label: string; score: number }[] | { label: string; score: number }[][]>;

/**
 * A text-classification model through @huggingface/transformers (a Hub id or a local folder with ONNX weights).
 * p is the probability of `largeLabel` (default: the label containing "large", "hard" or "1", else the second).
 * Not exercised by the tests: no classifier model is available offline here.
 */
export class TransformersScorer implements DifficultyScorer {
  readonly name: string;
  private classifier: Promise<TextClassifier> | null = null;
  constructor(
    private readonly modelIdOrFolder: string,
    private readonly largeLabel?: string,
  ) {
    this.name = `classifier ${modelIdOrFolder}`;
  }
  private load(): Promise<TextClassifier> {
    this.classifier ??= import('@huggingface/transformers')
      .then(async (t) => (await t.pipeline('text-classification', this.modelIdOrFolder)) as unknown as TextClassifier)
      .catch((e: unknown) => {
        this.classifier = null;
        throw new ShoalError(
          'ERR_FETCH',
          `could not load the difficulty classifier ${this.modelIdOrFolder}: ${errorMessage(e)}`,
          { cause: e },
        );
      });
    return this.classifier;
  }
  async score(text: string): Promise<number> {
    const out = await (await this.load())(text, { top_k: null });
    const rows = (Array.isArray(out[0]) ? out[0] : out) as { label: string; score: number }[];
    const want = this.largeLabel?.toLowerCase();
    const hit = want
      ? rows.find((r) => r.label.toLowerCase() === want)
      : (rows.find((r) => /large|hard|^label_1$|^1$/i.test(r.label)) ?? rows[1]);
    if (!hit)
      throw new ShoalError(
        'ERR_BAD_ARGS',
        `the classifier's labels (${rows.map((r) => r.label).join(', ')}) ` +
          `do not include ${this.largeLabel ?? 'a "large"/"hard" label'}`,
      );
    return Math.min(1, Math.max(0, hit.score));
  }
}
