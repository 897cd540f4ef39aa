// Builds WGSL modules from the static kernel files: the only generated parts are the weight bindings (their WGSL
// type and unpacking depend on the file dtype) and the boolean constants that switch fused steps on and off.
import type { FloatDtype } from '../../weights/types.ts';
import weightF32 from './kernels/weight_f32.wgsl?raw';
import weightF16 from './kernels/weight_f16.wgsl?raw';
import weightBf16 from './kernels/weight_bf16.wgsl?raw';

const WEIGHT_TEMPLATES: Record<FloatDtype, string> = { F32: weightF32, F16: weightF16, BF16: weightBf16 };

/** Declaration + `NAME_at(i)` / `NAME_at2(i)` loaders for one weight binding in the given dtype. */
export function weightBinding(name: string, binding: number, dtype: FloatDtype): string {
  return WEIGHT_TEMPLATES[dtype].replaceAll('NAME', name).replaceAll('BINDING', String(binding));
}

export interface ShaderParts {
  consts?: Record<string, boolean>;
  weights?: { name: string; binding: number; dtype: FloatDtype }[];
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
