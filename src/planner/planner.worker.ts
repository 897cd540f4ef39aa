// The planner in a Web Worker: the same API Node imports, exposed through Comlink (errors keep their code), and
// nothing else.
import { exposePlanner } from './remote.ts';

exposePlanner();
