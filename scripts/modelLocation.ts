// Map a --model argument (local folder, http(s) URL, or Hub repo id) to ModelFiles.
import { existsSync } from 'node:fs';
import { httpModelFiles } from '../src/weights/model.ts';
import type { ModelFiles } from '../src/weights/model.ts';
import { localModelFiles } from '../src/weights/localFiles.ts';

export function modelFilesFor(location: string): ModelFiles {
  if (/^https?:\/\//.test(location)) return httpModelFiles(location);
  if (existsSync(location)) return localModelFiles(location);
  return httpModelFiles(location); // a Hub repo id such as HuggingFaceTB/SmolLM2-135M
}
