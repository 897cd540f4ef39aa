// The machine's read-bandwidth roofline as the CPU engine sees it: a WebAssembly SIMD sum over a large array (far
// bigger than any cache), assembled here with wabt and run wherever the engine runs (Node or the bench page). Decode
// reads every weight once per token, so bytes per token x tokens/s over this figure is the share of the memory
// system a decode uses.
import wabtInit from 'wabt';

/** sum(ptr, bytes): i32x4 sums of the region in four independent chains (so the adds never wait on each other). */
const SUM_WAT = `(module
  (memory (export "memory") 1 65536)
  (func (export "sum") (param $p i32) (param $bytes i32) (result i32)
    (local $end i32) (local $a v128) (local $b v128) (local $c v128) (local $d v128)
    (local.set $end (i32.add (local.get $p) (local.get $bytes)))
    (block $done (loop $loop
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $a (i32x4.add (local.get $a) (v128.load offset=0 (local.get $p))))
      (local.set $b (i32x4.add (local.get $b) (v128.load offset=16 (local.get $p))))
      (local.set $c (i32x4.add (local.get $c) (v128.load offset=32 (local.get $p))))
      (local.set $d (i32x4.add (local.get $d) (v128.load offset=48 (local.get $p))))
      (local.set $p (i32.add (local.get $p) (i32.const 64)))
      (br $loop)))
    (i32x4.extract_lane 0
      (i32x4.add (i32x4.add (local.get $a) (local.get $b)) (i32x4.add (local.get $c) (local.get $d)))))
)`;

/** The sum module's bytes (base64, to hand to a page). */
export async function rooflineWasmBase64(): Promise<string> {
  const wabt = await wabtInit();
  const mod = wabt.parseWat('roofline.wat', SUM_WAT, { simd: true });
  try {
    mod.validate();
    return Buffer.from(mod.toBinary({ log: false }).buffer).toString('base64');
  } finally {
    mod.destroy();
  }
}
