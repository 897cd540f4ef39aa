// Node 20's V8 has relaxed SIMD only behind a flag; Chromium has it on. The unit tests (vitest setup) and the Node
// benchmarks import this first, so they run the build the browsers run (the 'relaxed' variant of
// src/backend/cpu/wasmGemm.ts); the plain build is tested by name. A V8 that has shipped the feature ignores the flag.
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--experimental-wasm-relaxed-simd');
