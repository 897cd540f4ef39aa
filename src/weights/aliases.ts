// Published checkpoints name some tensors differently from what the loader asks for; this resolves the variants
// once, where a file's tensor list is read, by adding the asked-for name as an alias of the stored tensor:
// - safetensors __metadata__ aliases: torch's shared-tensor saving keeps one copy of a tied matrix (often as
//   lm_head.weight) and records {"model.embed_tokens.weight": "lm_head.weight"} (either direction);
// - tied embeddings stored only under the head's name (embedding = LM head);
// - tensors saved from the bare decoder, without the "model." prefix (embed_tokens.weight, layers.0. ...).
import { EMBED_TENSOR, LM_HEAD_TENSOR } from '../model/config.ts';

/**
 * For each `required` name missing from `tensors`, point it at the stored tensor it stands for, when one exists.
 * `rename(value, name)` makes the alias entry (tensor infos carry their name). Mutates and returns `tensors`.
 */
export function addAliases<T>(
  tensors: Map<string, T>,
  required: readonly string[],
  opts: { metadata?: Record<string, unknown>; tied: boolean; rename: (v: T, name: string) => T },
): Map<string, T> {
  for (const name of required) {
    if (tensors.has(name)) continue;
    const candidates = [
      opts.metadata?.[name],
      name.startsWith('model.') ? name.slice('model.'.length) : undefined,
      opts.tied && name === EMBED_TENSOR ? LM_HEAD_TENSOR : undefined,
    ];
    const target = candidates.find((c): c is string => typeof c === 'string' && tensors.has(c));
    if (target) tensors.set(name, opts.rename(tensors.get(target)!, name));
  }
  return tensors;
}
