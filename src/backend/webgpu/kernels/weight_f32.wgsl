// Weight binding `NAME` stored as f32 (template: NAME and BINDING are filled in by shaderGen.ts).
@group(0) @binding(BINDING) var<storage, read> NAME: array<f32>;
fn NAME_at(i: u32) -> f32 { return NAME[i]; }
// i must be even.
fn NAME_at2(i: u32) -> vec2<f32> { return vec2<f32>(NAME[i], NAME[i + 1u]); }
