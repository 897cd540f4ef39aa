// Builds WGSL modules from the static kernel files: the only generated parts are the weight bindings (their WGSL
// type and unpacking depend on the file dtype) and the boolean constants that switch fused steps on and off.
import type { WeightDtype } from '../../weights/types.ts';
import weightF32 from './kernels/weight_f32.wgsl?raw';
import weightF16 from './kernels/weight_f16.wgsl?raw';
import weightBf16 from './kernels/weight_bf16.wgsl?raw';
import weightQ8_0 from './kernels/weight_q8_0.wgsl?raw';
import weightQ4_0 from './kernels/weight_q4_0.wgsl?raw';
import weightQ5_0 from './kernels/weight_q5_0.wgsl?raw';
import weightQ4_K from './kernels/weight_q4_k.wgsl?raw';
import weightQ6_K from './kernels/weight_q6_k.wgsl?raw';

/** Each template defines `NAME_at(i)` (element i of the row-major matrix) and `NAME_at2(i)` (i and i+1, i even). */
const WEIGHT_TEMPLATES: Record<WeightDtype, string> = {
  F32: weightF32,
  F16: weightF16,
  BF16: weightBf16,
  Q8_0: weightQ8_0,
  Q4_0: weightQ4_0,
  Q5_0: weightQ5_0,
  Q4_K: weightQ4_K,
  Q6_K: weightQ6_K,
};

/** Declaration + `NAME_at(i)` / `NAME_at2(i)` loaders for one weight binding in the given dtype. */
export function weightBinding(name: string, binding: number, dtype: WeightDtype): string {
  return WEIGHT_TEMPLATES[dtype].replaceAll('NAME', name).replaceAll('BINDING', String(binding));
}

export interface ShaderParts {
  consts?: Record<string, boolean>;
  weights?: { name: string; binding: number; dtype: WeightDtype }[];
  body: string;
}

export function buildShader(parts: ShaderParts): string {
  const consts = Object.entries(parts.consts ?? {}).map(([k, v]) => `const ${k}: bool = ${v};`);
  const weights = (parts.weights ?? []).map((w) => weightBinding(w.name, w.binding, w.dtype));
  // Directives (enable, diagnostic) must come before any declaration: hoist them from the kernel body.
  const lines = parts.body.split('\n');
  const directives = lines.filter((l) => /^(enable|diagnostic|requires)\b/.test(l));
  const body = lines.filter((l) => !/^(enable|diagnostic|requires)\b/.test(l)).join('\n');
  return [...directives, ...consts, ...weights, body].join('\n');
}
